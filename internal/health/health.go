package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// State is a node's health as seen by this process.
type State int32

// Node states, in order of increasing trouble.
const (
	Up      State = iota // answering normally
	Suspect              // the last heartbeat or call failed, or the breaker is probing
	Down                 // the breaker is open: calls are refused without trying
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Suspect:
		return "suspect"
	case Down:
		return "down"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// Sentinel errors.
var (
	// ErrOpen is wrapped (with kerr.Unavailable) by Begin's error when the
	// node's breaker refuses the call.
	ErrOpen = errors.New("node is down (circuit breaker open)")
	// ErrSlow, as the cause of a cancelled context (context.WithCancelCause),
	// makes Call.End count the cancellation against the node: the caller
	// gave up because the node was too slow, not for reasons of its own.
	ErrSlow = errors.New("node too slow")
)

// errExcluded tells the breaker to count a call as neither success nor
// failure.
var errExcluded = errors.New("health: outcome excluded")

// Defaults for Config.
const (
	DefaultInterval  = time.Second
	DefaultTimeout   = time.Second
	DefaultTripAfter = 3
	DefaultOpenFor   = 2 * time.Second
	// DefaultHedgeFloor keeps a fast node's hedge delay above scheduler
	// noise. It is also how long a read waits for a node that stopped
	// answering before going on without it, so it is small: measured on
	// loopback, a 4 MiB GET takes about 16 ms healthy, and a 20 ms floor
	// made the same GET with a SIGSTOPped data node take 40-60 ms.
	DefaultHedgeFloor = 5 * time.Millisecond
	DefaultHedgeCap   = 500 * time.Millisecond
)

// latWindow is how many recent latencies a node keeps for its p95.
const latWindow = 256

// minLatSamples is how many latencies a node needs before its p95 is
// trusted; before that HedgeDelay is HedgeFloor.
const minLatSamples = 8

// Config configures a Tracker. DefaultConfig fills every field but Probe,
// Logger and Registerer.
type Config struct {
	// Probe checks one node, by id, and returns nil if it is healthy. Run
	// calls it with a context carrying the Timeout deadline. nil disables
	// heartbeats: only passive outcomes count.
	Probe func(ctx context.Context, node string) error
	// Interval is the heartbeat period; Timeout bounds one heartbeat.
	Interval, Timeout time.Duration
	// TripAfter consecutive failures (heartbeats or calls) open a node's
	// breaker; after OpenFor it lets one probe through.
	TripAfter int
	OpenFor   time.Duration
	// HedgeFloor and HedgeCap clamp HedgeDelay.
	HedgeFloor, HedgeCap time.Duration

	// Now and After are the clock the tracker reads: latencies, state
	// times and heartbeat rounds (one round, then After(Interval), then
	// the next). nil: time.Now and time.After. A test passes a manual
	// clock's methods to drive heartbeats instead of sleeping through
	// them. The breaker's OpenFor and a heartbeat's Timeout run on the
	// wall clock whatever these are: they bound real waits.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time

	Logger *slog.Logger // nil: discard
	// Registerer receives the tracker's metrics; nil: no metrics.
	Registerer prometheus.Registerer
}

// DefaultConfig returns a Config with the default timings.
func DefaultConfig() Config {
	return Config{
		Interval:   DefaultInterval,
		Timeout:    DefaultTimeout,
		TripAfter:  DefaultTripAfter,
		OpenFor:    DefaultOpenFor,
		HedgeFloor: DefaultHedgeFloor,
		HedgeCap:   DefaultHedgeCap,
	}
}

// Validate reports a Config that New would refuse.
func (c Config) Validate() error {
	const op = "health.Config.Validate"
	var errs []error
	if c.Interval <= 0 || c.Timeout <= 0 {
		errs = append(errs, errors.New("Interval and Timeout must be positive"))
	}
	if c.TripAfter < 1 {
		errs = append(errs, errors.New("TripAfter must be at least 1"))
	}
	if c.OpenFor <= 0 {
		errs = append(errs, errors.New("OpenFor must be positive"))
	}
	if c.HedgeFloor <= 0 || c.HedgeCap < c.HedgeFloor {
		errs = append(errs, errors.New("want 0 < HedgeFloor <= HedgeCap"))
	}
	if len(errs) > 0 {
		return kerr.E(op, kerr.Invalid, errors.Join(errs...))
	}
	return nil
}

// Tracker tracks the health of a set of nodes. It is safe for concurrent
// use.
type Tracker struct {
	cfg Config
	log *slog.Logger
	m   *metrics // nil: no metrics

	mu    sync.Mutex
	nodes map[string]*node

	beat func(id string) // testing hook: a heartbeat of id is done
}

// New returns a Tracker for cfg. It fails if cfg does not validate or its
// metrics cannot be registered (already registered by another Tracker).
func New(cfg Config) (*Tracker, error) {
	const op = "health.New"
	if err := cfg.Validate(); err != nil {
		return nil, kerr.E(op, err)
	}
	t := &Tracker{cfg: cfg, log: cfg.Logger, nodes: make(map[string]*node)}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.cfg.Now == nil {
		t.cfg.Now = time.Now
	}
	if t.cfg.After == nil {
		t.cfg.After = time.After
	}
	if cfg.Registerer != nil {
		m, err := newMetrics(cfg.Registerer)
		if err != nil {
			return nil, kerr.E(op, kerr.Invalid, err)
		}
		t.m = m
		if err := cfg.Registerer.Register(breakerCollector{t}); err != nil {
			return nil, kerr.E(op, kerr.Invalid, err)
		}
	}
	return t, nil
}

// node is one node's health. Lock order: a breaker calls OnStateChange
// with its own lock held, which then takes n.mu; so n.mu is never held
// while calling into the breaker.
type node struct {
	id string
	t  *Tracker
	// cb is the node's breaker. Check replaces it with a closed one when
	// the node answers (gobreaker has no way to close a breaker but a
	// successful call, which an open one does not let through).
	cb atomic.Pointer[gobreaker.TwoStepCircuitBreaker[struct{}]]

	probing  atomic.Bool  // a heartbeat is in flight
	checking *check       // the Check in flight, if any; guarded by mu
	progress atomic.Int64 // unix nanoseconds of the last Progress

	mu      sync.Mutex
	tracked bool // heartbeats are sent
	breaker gobreaker.State
	hbFails int // consecutive failed heartbeats
	fails   int // consecutive failed calls, heartbeats included
	lastErr error
	state   State
	since   time.Time
	down    chan struct{} // closed while state == Down

	lat   window // successful timed calls
	waits window // ObserveWait's waits on shard streams
}

// window holds the last latWindow durations recorded and a quantile of
// them. Sorting the window costs a few microseconds, so the quantile is
// redone only every minLatSamples samples.
type window struct {
	vals [latWindow]time.Duration
	n    int // samples recorded, ever
	q    time.Duration
	qN   int // n when q was computed
}

func (w *window) add(d time.Duration) {
	w.vals[w.n%latWindow] = d
	w.n++
}

// quantile returns the pct-th percentile of the window, 0 with too few
// samples. A window serves one pct.
func (w *window) quantile(pct int) time.Duration {
	if w.n < minLatSamples {
		return 0
	}
	if w.qN == 0 || w.n-w.qN >= minLatSamples {
		k := min(w.n, latWindow)
		s := slices.Clone(w.vals[:k])
		slices.Sort(s)
		w.q = s[(k*pct+99)/100-1]
		w.qN = w.n
	}
	return w.q
}

func (t *Tracker) node(id string) *node {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n, ok := t.nodes[id]; ok {
		return n
	}
	n := &node{id: id, t: t, since: t.cfg.Now(), down: make(chan struct{})}
	n.cb.Store(n.newBreaker())
	t.nodes[id] = n
	t.m.setState(id, Up)
	return n
}

// newBreaker returns a closed breaker for n. Its state changes are n's
// only while it is n's breaker: calls begun before Check replaced it
// still end on it, and must not move the new one's state.
func (n *node) newBreaker() *gobreaker.TwoStepCircuitBreaker[struct{}] {
	t := n.t
	var cb *gobreaker.TwoStepCircuitBreaker[struct{}]
	cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        n.id,
		MaxRequests: 1,
		Timeout:     t.cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= uint32(t.cfg.TripAfter) },
		IsExcluded:  func(err error) bool { return errors.Is(err, errExcluded) },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			n.mu.Lock()
			defer n.mu.Unlock()
			if n.cb.Load() != cb {
				return
			}
			n.breaker = to
			n.update()
		},
	})
	return cb
}

// SetNodes sets the nodes that get heartbeats, by id. Nodes not listed are
// forgotten (a later call to one starts afresh).
func (t *Tracker) SetNodes(ids []string) {
	keep := make(map[string]bool, len(ids))
	for _, id := range ids {
		keep[id] = true
		n := t.node(id)
		n.mu.Lock()
		n.tracked = true
		n.mu.Unlock()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for id := range t.nodes {
		if !keep[id] {
			delete(t.nodes, id)
			t.m.forget(id)
		}
	}
}

// Call is one call to a node allowed by Begin. Exactly one of End or
// EndStream must be called.
type Call struct {
	n     *node
	done  func(error)
	start time.Time
}

// Begin asks node id's breaker whether a call may be made. If not, it
// returns an error of kind kerr.Unavailable wrapping ErrOpen, without
// delay.
func (t *Tracker) Begin(id string) (Call, error) {
	n := t.node(id)
	done, err := n.cb.Load().Allow()
	if err != nil {
		t.m.call(id, "refused")
		return Call{}, kerr.E("health.Begin", kerr.Unavailable, fmt.Errorf("node %s: %w", id, ErrOpen))
	}
	return Call{n: n, done: done, start: t.cfg.Now()}, nil
}

// End records how the call ended and, if it succeeded, how long it took.
// ctx is the context the call ran under: when it was cancelled, the
// outcome counts against the node only if the cause is ErrSlow or a
// deadline.
func (c Call) End(ctx context.Context, err error) { c.end(classify(ctx, err), err, true) }

// EndStream is End for a streaming call, whose duration says more about
// the size of the stream than about the node: only the outcome counts.
func (c Call) EndStream(ctx context.Context, err error) { c.end(classify(ctx, err), err, false) }

// CountsAgainst reports whether a call that ended with err, made under
// ctx, counts against its node, as End would count it.
func CountsAgainst(ctx context.Context, err error) bool { return classify(ctx, err) == failure }

type outcome int

const (
	success outcome = iota
	failure
	excluded
)

// classify decides what a call's end says about the node.
func classify(ctx context.Context, err error) outcome {
	if err == nil {
		return success
	}
	if ctx != nil && ctx.Err() != nil {
		cause := context.Cause(ctx)
		if errors.Is(cause, ErrSlow) || errors.Is(cause, context.DeadlineExceeded) {
			return failure
		}
		return excluded
	}
	switch {
	case errors.Is(err, ErrSlow), errors.Is(err, context.DeadlineExceeded):
		return failure
	case errors.Is(err, context.Canceled):
		return excluded
	}
	switch kerr.KindOf(err) {
	case kerr.Unavailable, kerr.Transient:
		return failure
	}
	// The node answered, if only to say no.
	return success
}

func (c Call) end(o outcome, err error, timed bool) {
	if c.n == nil {
		return
	}
	n := c.n
	switch o {
	case success:
		c.done(nil)
		var lat time.Duration = -1
		if timed {
			lat = n.t.cfg.Now().Sub(c.start)
			n.t.m.observe(n.id, lat)
		}
		n.t.m.call(n.id, "ok")
		n.mu.Lock()
		n.fails = 0
		n.lastErr = nil
		if lat >= 0 {
			n.lat.add(lat)
		}
		n.update()
		n.mu.Unlock()
	case failure:
		c.done(err)
		n.t.m.call(n.id, "failed")
		n.mu.Lock()
		n.fails++
		n.lastErr = err
		n.update()
		n.mu.Unlock()
	default:
		c.done(errExcluded)
		n.t.m.call(n.id, "excluded")
	}
}

// update recomputes n.state and reports a change. REQUIRES: n.mu held.
func (n *node) update() {
	s := Up
	switch {
	case n.breaker == gobreaker.StateOpen:
		s = Down
	case n.breaker == gobreaker.StateHalfOpen, n.hbFails > 0, n.fails > 0:
		s = Suspect
	}
	if s == n.state {
		return
	}
	from := n.state
	n.state, n.since = s, n.t.cfg.Now()
	switch {
	case s == Down:
		close(n.down)
	case from == Down:
		n.down = make(chan struct{})
	}
	n.t.m.transition(n.id, s)
	attrs := []any{"node", n.id, "from", from.String(), "to", s.String(), "breaker", n.breaker.String()}
	if n.lastErr != nil {
		attrs = append(attrs, "err", n.lastErr)
	}
	if s == Down {
		n.t.log.Warn("node state changed", attrs...)
	} else {
		n.t.log.Info("node state changed", attrs...)
	}
}

// State returns node id's state; a node never called is Up.
func (t *Tracker) State(id string) State {
	n := t.node(id)
	n.cb.Load().State() // lets an expired open breaker turn half-open
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state
}

// Available reports whether Begin lets every call to node id through: its
// breaker is closed. A half-open breaker lets one call through at a time
// and refuses the rest, so a node coming back is not available yet: a
// write that counted on it would lose the shard it sends there to a
// heartbeat that got the one slot, and store fewer shards than its code
// was chosen for.
func (t *Tracker) Available(id string) bool {
	return t.node(id).cb.Load().State() == gobreaker.StateClosed
}

// Progress records that a stream to or from node id moved bytes just now.
// On an overloaded machine a heartbeat can miss its deadline behind the
// very work the node is doing: 32 concurrent 64 MiB PUTs on two cores got
// every node of a healthy cluster declared down within seconds, and every
// PUT failed. A heartbeat that times out while the node's streams move is
// therefore not held against it; a node that stops, or dies, stops moving
// bytes too.
func (t *Tracker) Progress(id string) {
	t.node(id).progress.Store(t.cfg.Now().UnixNano())
}

// Down returns a channel that is closed when node id goes down (at once if
// it is down now). Streams to the node watch it to give up without
// waiting for their own timeouts.
func (t *Tracker) Down(id string) <-chan struct{} {
	n := t.node(id)
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.down
}

// HedgeDelay is how long a read from node id may take before the reader
// should ask another node too: the node's recent p95 latency, clamped to
// [HedgeFloor, HedgeCap]; HedgeFloor until enough calls were timed.
func (t *Tracker) HedgeDelay(id string) time.Duration {
	n := t.node(id)
	n.mu.Lock()
	defer n.mu.Unlock()
	return min(max(n.recentP95(), n.recentWaitP99(), t.cfg.HedgeFloor), t.cfg.HedgeCap)
}

// ObserveWait records how long a reader waited on a shard stream from node
// id (its open, or one read) before the node delivered. Waits are what a
// hedge races against: on a machine that is merely busy every node's
// waits grow, and the hedge delay with them, so that hedges, which add
// load, stay rare. Profiles of 1 MiB GETs on a saturated 2-core machine
// showed hedges timed by call latency alone (stats are fast) firing on
// most GETs and costing a fifth of the CPU.
func (t *Tracker) ObserveWait(id string, d time.Duration) {
	n := t.node(id)
	n.mu.Lock()
	n.waits.add(d)
	n.mu.Unlock()
}

// recentP95 returns the p95 of the call latency window, 0 with too few
// samples. REQUIRES: n.mu held.
func (n *node) recentP95() time.Duration { return n.lat.quantile(95) }

// recentWaitP99 returns the p99 of the wait window, 0 with too few
// samples. REQUIRES: n.mu held.
func (n *node) recentWaitP99() time.Duration { return n.waits.quantile(99) }

// Hedged records that a read from node id was hedged and whether the
// hedge won (the other node answered first).
func (t *Tracker) Hedged(id string, won bool) { t.m.hedge(id, won) }

// NodeStatus is one node's health, for status displays.
type NodeStatus struct {
	ID      string
	State   State
	Breaker string // "closed", "half-open" or "open"
	Since   time.Time
	P95     time.Duration // 0 until enough calls were timed
	LastErr string        // the last failure, while failing
}

// Status returns the health of every known node, in id order.
func (t *Tracker) Status() []NodeStatus {
	t.mu.Lock()
	nodes := make([]*node, 0, len(t.nodes))
	for _, n := range t.nodes {
		nodes = append(nodes, n)
	}
	t.mu.Unlock()
	slices.SortFunc(nodes, func(a, b *node) int { return strings.Compare(a.id, b.id) })
	out := make([]NodeStatus, 0, len(nodes))
	for _, n := range nodes {
		n.cb.Load().State() // lets an expired open breaker turn half-open
		n.mu.Lock()
		st := NodeStatus{ID: n.id, State: n.state, Breaker: n.breaker.String(), Since: n.since, P95: n.recentP95()}
		if n.lastErr != nil {
			st.LastErr = n.lastErr.Error()
		}
		n.mu.Unlock()
		out = append(out, st)
	}
	return out
}
