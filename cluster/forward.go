package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Forwarding a change to the leader.
//
// A forwarded change must never apply after its sender gave up on it: the
// sender then tells the admin the change failed or that its outcome is
// unknown, and a change that lands minutes later, after a partition heals,
// breaks "a change needs a quorum and otherwise changes nothing". A
// request can sit in two queues: the sender's kernel (the link is down and
// TCP keeps retransmitting) and the receiver's (its process has not read
// it yet). Two measures, one per queue:
//
//   - Each forward has a connection of its own, never pooled, closed with
//     SO_LINGER 0 when its attempt ends: the close resets the connection
//     and the kernel discards what it had not sent. A pooled keep-alive
//     connection that a partition has cut would otherwise hold the request
//     and deliver it after the heal. This needs no clock.
//   - The forward names its deadline as an absolute time
//     (headerDeadline), and the leader refuses, changing nothing, a
//     forward that reaches it after that deadline plus deadlineSkew. This
//     also covers a queue on the receiver's side, but trusts the hosts'
//     clocks to agree within deadlineSkew: a leader whose clock runs late
//     by d accepts a forward up to d+deadlineSkew after its sender gave
//     up. A deadline relative to the receipt would not do: the receiver
//     cannot tell how long the bytes waited before it saw them.
//
// The reset is what a partition needs and is exact; the deadline is the
// backstop. An attempt is bounded by forwardAttempt. When it ends with no
// answer the request may have reached the leader, so it is sent again only
// to a different leader, and pinned to the epoch the map had before the
// first attempt: if the first attempt did apply (it reached the old leader
// in time and its entry survived into the new leader's log), the retry
// conflicts instead of applying twice, and the caller is told the outcome
// is unknown.
const (
	headerDeadline = "X-Kintsugi-Deadline" // RFC 3339 with nanoseconds, UTC
	// headerTimeout is how long the caller waits for the answer, in
	// milliseconds from the moment it sent the request: it bounds the
	// node's wait for a leader, so that the caller hears a clear answer
	// before it gives up. Relative, so it needs no agreement of clocks.
	headerTimeout = "X-Kintsugi-Timeout"
	// forwardAttempt bounds one forward to the leader.
	forwardAttempt = 3 * time.Second
	// deadlineSkew is how far the hosts' clocks may disagree before a
	// leader refuses forwards that are on time.
	deadlineSkew = 2 * time.Second
)

// ErrExpired is the answer of a leader to a forwarded change that reached
// it after its deadline: it changed nothing.
var ErrExpired = errors.New("the forwarded change reached the Raft leader after its sender gave up on it, and was not applied")

// OutcomeUnknownError is a change whose fate the member could not learn:
// it is applied everywhere or nowhere, and the map's epoch tells which.
type OutcomeUnknownError struct {
	Change string
	Err    error
}

func (e *OutcomeUnknownError) Error() string {
	if e.Change == "" {
		return e.Err.Error() // as another node worded it
	}
	return fmt.Sprintf("outcome unknown: %s: %v; it is applied everywhere or nowhere: run `kintsugi admin map show` to see whether it applied", e.Change, e.Err)
}

func (e *OutcomeUnknownError) Unwrap() error { return e.Err }

// forwardHTTP returns the HTTP client forwards use: base's transport (its
// TLS settings) with no connection reuse, each connection reset when
// closed.
func forwardHTTP(base *http.Client) *http.Client {
	t, ok := base.Transport.(*http.Transport)
	if !ok {
		t = defaultHTTP.Transport.(*http.Transport)
	}
	t = t.Clone()
	t.DisableKeepAlives = true
	t.MaxIdleConnsPerHost = -1
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 2 * time.Second}).DialContext
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		// A connection that cannot be made in a few seconds leads
		// nowhere: the leader is cut off, and the next one may take it.
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			// Closing resets the connection and discards unsent bytes.
			if err := tc.SetLinger(0); err != nil {
				c.Close()
				return nil, err
			}
		}
		return c, nil
	}
	return &http.Client{Transport: t}
}

// neverSent reports whether err is a failure to connect: the request
// never left.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &op) && op.Op == "dial" ||
		errors.As(err, new(*notSentError))
}

// notSentError is a forward that failed before net/http had a connection
// ready for it: the dial failed, or the TLS handshake did (a node that
// closes the connection during the handshake answers EOF, like one that
// closes it after reading the request). net/http writes no byte of a
// request before that, and when the caller's time runs out during the
// dial it answers with the context's error, losing the dial's; so the
// forward notes the connection itself.
type notSentError struct{ err error }

func (e *notSentError) Error() string {
	return "could not connect to the Raft leader's node, nothing sent: " + e.err.Error()
}

func (e *notSentError) Unwrap() error { return e.err }

// changedNothing reports whether err is an answer that proves the change
// was not applied and may be sent again.
func changedNothing(err error) bool {
	var nl *NotLeaderError
	return neverSent(err) || errors.As(err, &nl) || errors.Is(err, ErrExpired)
}

// setDeadline names ctx's deadline on a request: the absolute time for a
// leader to check, and the time left for a node to bound its wait by.
func setDeadline(hdr http.Header, ctx context.Context, forwarded bool) {
	dl, ok := ctx.Deadline()
	if !ok {
		return
	}
	hdr.Set(headerTimeout, strconv.FormatInt(max(time.Until(dl).Milliseconds(), 1), 10))
	if forwarded {
		hdr.Set(headerDeadline, dl.UTC().Format(time.RFC3339Nano))
	}
}

// requestBounds reads the headers setDeadline set: the sender's deadline
// (zero if none) and how long it waits for an answer (0: not said).
func requestBounds(r *http.Request) (deadline time.Time, wait time.Duration, err error) {
	if s := r.Header.Get(headerDeadline); s != "" {
		if deadline, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return time.Time{}, 0, invalidf("%s: %v", headerDeadline, err)
		}
	}
	if s := r.Header.Get(headerTimeout); s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil || ms <= 0 {
			return time.Time{}, 0, invalidf("%s: %q is not a positive number of milliseconds", headerTimeout, s)
		}
		wait = time.Duration(ms) * time.Millisecond
	}
	return deadline, wait, nil
}

// forward sends c to the leader's node at addr, bounded by forwardAttempt.
func (h *handler) forward(ctx context.Context, addr string, c placement.Change) (*placement.Map, error) {
	ctx, cancel := context.WithTimeout(ctx, forwardAttempt)
	defer cancel()
	opts := client.Options{HTTPClient: h.fwd}
	if h.opts != nil {
		opts.Secret = h.opts.Secret
	}
	// GotConn comes before net/http writes any of the request, once the
	// connection is dialled and past its TLS handshake.
	var connected atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected.Store(true) },
	})
	m, err := NewClient(addr, &opts).apply(ctx, c, true)
	if err != nil && !connected.Load() {
		return nil, &notSentError{err}
	}
	return m, err
}
