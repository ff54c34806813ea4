package proctest

import (
	"bufio"
	"fmt"
	"io"
	"sync"
	"time"
)

// Kind is what an operation of a History does to its key.
type Kind uint8

// Kinds of operations.
const (
	Put Kind = iota + 1
	Delete
	Get
)

func (k Kind) String() string {
	switch k {
	case Put:
		return "put"
	case Delete:
		return "delete"
	case Get:
		return "get"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Outcome is how an operation of a History ended.
type Outcome uint8

// Outcomes. An operation that has not ended yet is Pending; Check takes
// it as ended with an error.
const (
	Pending Outcome = iota
	// OK: a write was acknowledged, or a read answered (bytes or
	// absent).
	OK
	// Failed: the operation returned an error or timed out. A failed
	// write may or may not take effect, then or at any later time; a
	// failed read tells nothing.
	Failed
)

// Absent is the Value a Get reads when the key does not exist, and the
// value a Delete writes.
const Absent = 0

// Op is one recorded operation on one key.
type Op struct {
	Client int // who ran it, from 0; clients run one operation at a time
	Key    string
	Kind   Kind
	// Value is what a Put wrote or what a Get read: a number the History
	// gave the Put's body, or Absent.
	Value   int
	Outcome Outcome
	// Call and Return are when the client sent it and had its answer,
	// on the test process's monotonic clock, since the History began.
	// Return is meaningless for a Failed write: it may take effect
	// whenever.
	Call, Return time.Duration
	Note         string // where it ran, e.g. the gateway: for reports only
}

// History records the PUT, GET and DELETE operations that clients run
// against a store, with their times and outcomes, so that Check can
// decide whether the store behaved as one register per key would
// (linearizability). Record an operation by calling Put, Delete or Get
// just before sending it and then exactly one method of the returned
// Call once its answer is in. A History is safe for concurrent use.
type History struct {
	start time.Time

	mu     sync.Mutex
	ops    []Op
	values map[string]map[[32]byte]int // key -> body digest -> value
	next   int                         // last value handed out
}

// NewHistory returns an empty History whose clock starts now.
func NewHistory() *History {
	return &History{start: time.Now(), values: map[string]map[[32]byte]int{}}
}

// Time is the wall-clock time of d on the History's clock.
func (h *History) Time(d time.Duration) time.Time { return h.start.Add(d) }

// Since is the History's clock now.
func (h *History) Since() time.Duration { return time.Since(h.start) }

// Call is a recorded operation waiting for its outcome.
type Call struct {
	h *History
	i int
}

// Put records the start of a PUT of key whose body has sha256 sum, and
// names the value it writes.
//
// REQUIRES: no two PUTs of one key carry the same body: a read must tell
// which of them it saw.
func (h *History) Put(client int, key string, sum [32]byte, note string) *Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	vs := h.values[key]
	if vs == nil {
		vs = map[[32]byte]int{}
		h.values[key] = vs
	}
	if _, dup := vs[sum]; dup {
		panic(fmt.Sprintf("proctest: two PUTs of %s with the same body", key))
	}
	h.next++
	vs[sum] = h.next
	return h.beginLocked(Op{Client: client, Key: key, Kind: Put, Value: h.next, Note: note})
}

// Delete records the start of a DELETE of key.
func (h *History) Delete(client int, key, note string) *Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.beginLocked(Op{Client: client, Key: key, Kind: Delete, Value: Absent, Note: note})
}

// Get records the start of a GET of key.
func (h *History) Get(client int, key, note string) *Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.beginLocked(Op{Client: client, Key: key, Kind: Get, Note: note})
}

func (h *History) beginLocked(op Op) *Call {
	op.Call = time.Since(h.start)
	h.ops = append(h.ops, op)
	return &Call{h: h, i: len(h.ops) - 1}
}

func (c *Call) end(out Outcome, value int) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	op := &c.h.ops[c.i]
	if op.Outcome != Pending {
		panic(fmt.Sprintf("proctest: %s of %s ended twice", op.Kind, op.Key))
	}
	op.Return = time.Since(c.h.start)
	op.Outcome = out
	if op.Kind == Get {
		op.Value = value
	}
}

// Ack records that a write was acknowledged.
func (c *Call) Ack() { c.end(OK, 0) }

// Fail records that the operation returned an error or timed out.
func (c *Call) Fail() { c.end(Failed, 0) }

// Absent records that a GET answered that the key does not exist.
func (c *Call) Absent() { c.end(OK, Absent) }

// Read records that a GET returned a body with sha256 sum. The body must
// be one that a PUT of the key sent: if it is not, Read records the GET
// as failed and returns an error naming the wrong bytes.
func (c *Call) Read(sum [32]byte) error {
	c.h.mu.Lock()
	key := c.h.ops[c.i].Key
	v, ok := c.h.values[key][sum]
	c.h.mu.Unlock()
	if !ok {
		c.end(Failed, 0)
		return fmt.Errorf("%s: read %x, the bytes of no PUT of the key", key, sum[:6])
	}
	c.end(OK, v)
	return nil
}

// Ops returns a copy of the operations recorded so far, in the order they
// started.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// Writes returns the writes of key recorded so far, in the order they
// started.
func (h *History) Writes(key string) []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Op
	for _, op := range h.ops {
		if op.Key == key && op.Kind != Get {
			out = append(out, op)
		}
	}
	return out
}

// Dump writes the operations recorded so far, one a line in the order
// they started, for reading after a failed run.
func (h *History) Dump(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, op := range h.Ops() {
		value, ret := "", fmt.Sprintf("%.3fs", op.Return.Seconds())
		switch {
		case op.Kind == Put || op.Kind == Get && op.Outcome == OK:
			value = valueName(op.Value)
		}
		outcome := map[Outcome]string{Pending: "pending", OK: "ok", Failed: "failed"}[op.Outcome]
		if op.Outcome == Pending {
			ret = "?"
		}
		fmt.Fprintf(bw, "c%d %s %s %s [%.3fs, %s] %s %s\n", op.Client, op.Kind, op.Key, value, op.Call.Seconds(), ret, outcome, op.Note)
	}
	return bw.Flush()
}
