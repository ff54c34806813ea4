package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kintsugi-store/kintsugi/internal/clock"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// syncBuffer is a log sink safe for the tracker's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fastConfig returns timings short enough for tests yet long enough for a
// loaded machine under the race detector.
func fastConfig() Config {
	c := DefaultConfig()
	c.Interval = 10 * time.Millisecond
	c.Timeout = 100 * time.Millisecond
	c.OpenFor = 100 * time.Millisecond
	return c
}

func newTracker(t *testing.T, cfg Config) (*Tracker, *syncBuffer, *prometheus.Registry) {
	t.Helper()
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	cfg.Registerer = reg
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr, logs, reg
}

// driven is a tracker whose heartbeat rounds run one at a time, on a
// manual clock the test moves.
type driven struct {
	t     *testing.T
	tr    *Tracker
	clk   *clock.Manual
	beats chan string
	every time.Duration
}

// newDriven returns a driven tracker for cfg, its log and its metrics.
func newDriven(t *testing.T, cfg Config) (*driven, *syncBuffer, *prometheus.Registry) {
	t.Helper()
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg.Now, cfg.After = clk.Now, clk.After
	tr, logs, reg := newTracker(t, cfg)
	d := &driven{t: t, tr: tr, clk: clk, beats: make(chan string, 64), every: cfg.Interval}
	tr.beat = func(id string) { d.beats <- id }
	return d, logs, reg
}

// run starts the tracker's heartbeats until the test ends and returns once
// the first round is done.
func (d *driven) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.tr.Run(ctx); close(done) }()
	d.t.Cleanup(func() { cancel(); <-done })
	d.wait()
}

// round moves the clock one Interval, once Run waits for it, and returns
// when every heartbeat of the round it starts is done.
func (d *driven) round() {
	d.clk.BlockUntil(1)
	d.clk.Advance(d.every)
	d.wait()
}

func (d *driven) wait() {
	for range d.tr.tracked() {
		<-d.beats
	}
}

// waitState waits up to 5s for node id to reach want, for heartbeats
// that end on their real Timeout.
func waitState(t *testing.T, tr *Tracker, id string, want State) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for tr.State(id) != want {
		if time.Now().After(deadline) {
			t.Fatalf("node %s: state %v after 5s, want %v (status %+v)", id, tr.State(id), want, tr.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricValue returns the value of the series name{labels}, or -1.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			return value(m)
		}
	}
	return -1
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

// TestBreakerFollowsHeartbeats kills a node (its probe starts failing):
// the breaker opens, calls are refused at once, Down fires; the node comes
// back: a half-open heartbeat closes the breaker.
func TestBreakerFollowsHeartbeats(t *testing.T) {
	var alive atomic.Bool
	alive.Store(true)
	var probes atomic.Int32
	cfg := fastConfig()
	cfg.Probe = func(ctx context.Context, id string) error {
		probes.Add(1)
		if id == "n2" && !alive.Load() {
			return kerr.E("probe", kerr.Unavailable, errors.New("connection refused"))
		}
		return nil
	}
	d, logs, reg := newDriven(t, cfg)
	tr := d.tr
	tr.SetNodes([]string{"n1", "n2"})
	d.run()
	d.round()
	if n := probes.Load(); n != 4 {
		t.Fatalf("%d probes after two rounds, want 4", n)
	}
	if s := tr.State("n2"); s != Up {
		t.Fatalf("healthy node is %v", s)
	}
	down := tr.Down("n2")
	alive.Store(false)
	for i := 1; i <= cfg.TripAfter; i++ {
		if s := tr.State("n2"); s == Down {
			t.Fatalf("down after %d failed heartbeats, want %d", i-1, cfg.TripAfter)
		}
		d.round()
	}
	if s := tr.State("n2"); s != Down {
		t.Fatalf("%v after %d failed heartbeats, want down", s, cfg.TripAfter)
	}
	select {
	case <-down:
	default:
		t.Fatal("Down channel not closed for a down node")
	}
	if tr.Available("n2") {
		t.Fatal("Available reports a node with an open breaker")
	}
	start := time.Now()
	_, err := tr.Begin("n2")
	if !errors.Is(err, ErrOpen) || !kerr.Is(kerr.Unavailable, err) {
		t.Fatalf("Begin on a down node: %v, want ErrOpen with kind Unavailable", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Fatalf("a refused call took %v", d)
	}
	if got := metricValue(t, reg, "kintsugi_node_state", map[string]string{"node": "n2"}); got != float64(Down) {
		t.Fatalf("kintsugi_node_state{node=n2} = %v, want %v", got, float64(Down))
	}
	if tr.State("n1") != Up {
		t.Fatalf("n1 is %v while only n2 failed", tr.State("n1"))
	}

	alive.Store(true)
	// The breaker times OpenFor on the wall clock (gobreaker reads
	// time.Now), so that much real time must pass before a probe.
	time.Sleep(cfg.OpenFor)
	d.round()
	if s := tr.State("n2"); s != Up {
		t.Fatalf("%v after a successful half-open heartbeat, want up", s)
	}
	select {
	case <-tr.Down("n2"):
		t.Fatal("Down channel closed for a node that is up")
	default:
	}
	if _, err := tr.Begin("n2"); err != nil {
		t.Fatalf("Begin after recovery: %v", err)
	}
	if got := metricValue(t, reg, "kintsugi_node_state_changes_total", map[string]string{"node": "n2", "state": "down"}); got != 1 {
		t.Fatalf("down transitions = %v, want 1", got)
	}
	if got := metricValue(t, reg, "kintsugi_node_state", map[string]string{"node": "n2"}); got != float64(Up) {
		t.Fatalf("kintsugi_node_state{node=n2} = %v after recovery", got)
	}
	log := logs.String()
	for _, want := range []string{
		`level=WARN msg="node state changed" node=n2 from=suspect to=down breaker=open`,
		`msg="node state changed" node=n2 from=down to=suspect breaker=half-open`,
		`msg="node state changed" node=n2 from=suspect to=up breaker=closed`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// TestPassiveOutcomes trips the breaker with real calls' outcomes alone:
// only failures that are the node's count.
func TestPassiveOutcomes(t *testing.T) {
	unavailable := kerr.E("c", kerr.Unavailable, errors.New("refused"))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	slow, cancelSlow := context.WithCancelCause(context.Background())
	cancelSlow(fmt.Errorf("stalled: %w", ErrSlow))
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelExpired()
	bg := context.Background()
	tests := []struct {
		name  string
		ctx   context.Context
		err   error
		trips bool
	}{
		{"connection refused", bg, unavailable, true},
		{"timeout", bg, kerr.E("c", kerr.Transient, context.DeadlineExceeded), true},
		{"5xx", bg, kerr.E("c", kerr.Transient, errors.New("503 Service Unavailable")), true},
		{"not found", bg, kerr.E("c", kerr.NotExist, errors.New("404")), false},
		{"corrupt", bg, kerr.E("c", kerr.Corrupt, errors.New("422")), false},
		{"disk full", bg, kerr.E("c", kerr.TooLarge, errors.New("507")), false},
		{"cancelled by the caller", canceled, kerr.E("c", kerr.Transient, context.Canceled), false},
		{"cancelled as too slow", slow, kerr.E("c", kerr.Transient, context.Canceled), true},
		{"deadline of the call", expired, kerr.E("c", kerr.Transient, context.DeadlineExceeded), true},
		{"success", bg, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fastConfig()
			cfg.OpenFor = time.Hour
			tr, _, _ := newTracker(t, cfg)
			for range cfg.TripAfter {
				c, err := tr.Begin("n1")
				if err != nil {
					t.Fatal(err)
				}
				c.End(tt.ctx, tt.err)
			}
			if got := tr.State("n1") == Down; got != tt.trips {
				t.Fatalf("after %d calls ending in %v: down = %v, want %v", cfg.TripAfter, tt.err, got, tt.trips)
			}
		})
	}
}

// TestHalfOpenLetsOneProbe: after OpenFor one call goes through; its
// success closes the breaker, its failure opens it again.
func TestHalfOpenLetsOneProbe(t *testing.T) {
	fail := kerr.E("c", kerr.Unavailable, errors.New("refused"))
	for _, recovers := range []bool{true, false} {
		t.Run(fmt.Sprintf("recovers=%v", recovers), func(t *testing.T) {
			cfg := fastConfig()
			tr, _, _ := newTracker(t, cfg)
			for range cfg.TripAfter {
				c, _ := tr.Begin("n1")
				c.End(context.Background(), fail)
			}
			if tr.State("n1") != Down {
				t.Fatal("breaker did not open")
			}
			time.Sleep(cfg.OpenFor + 20*time.Millisecond)
			probe, err := tr.Begin("n1")
			if err != nil {
				t.Fatalf("no half-open probe after OpenFor: %v", err)
			}
			if tr.State("n1") != Suspect {
				t.Fatalf("half-open node is %v, want suspect", tr.State("n1"))
			}
			if _, err := tr.Begin("n1"); !errors.Is(err, ErrOpen) {
				t.Fatalf("second call while probing: %v, want ErrOpen", err)
			}
			if tr.Available("n1") {
				t.Fatal("Available reports a half-open node, which refuses all calls but one")
			}
			if recovers {
				probe.End(context.Background(), nil)
				if s := tr.State("n1"); s != Up {
					t.Fatalf("after a good probe: %v", s)
				}
				if !tr.Available("n1") {
					t.Fatal("Available is false after a good probe closed the breaker")
				}
			} else {
				probe.End(context.Background(), fail)
				if s := tr.State("n1"); s != Down {
					t.Fatalf("after a failed probe: %v", s)
				}
			}
		})
	}
}

func TestSuspectAfterOneFailure(t *testing.T) {
	tr, _, _ := newTracker(t, fastConfig())
	c, _ := tr.Begin("n1")
	c.End(context.Background(), kerr.E("c", kerr.Transient, errors.New("reset")))
	if s := tr.State("n1"); s != Suspect {
		t.Fatalf("after one failure: %v, want suspect", s)
	}
	c, _ = tr.Begin("n1")
	c.End(context.Background(), nil)
	if s := tr.State("n1"); s != Up {
		t.Fatalf("after a success: %v, want up", s)
	}
}

func TestHedgeDelay(t *testing.T) {
	ms := time.Millisecond
	ramp := func(n int) []time.Duration {
		var out []time.Duration
		for i := 1; i <= n; i++ {
			out = append(out, time.Duration(i)*ms)
		}
		return out
	}
	tests := []struct {
		name    string
		samples []time.Duration
		want    time.Duration
	}{
		{"no samples: floor", nil, DefaultHedgeFloor},
		{"too few samples: floor", []time.Duration{400 * ms, 400 * ms}, DefaultHedgeFloor},
		{"fast node: floor", repeat(10, ms), DefaultHedgeFloor},
		{"p95 of 1..10ms", ramp(10), 10 * ms},
		{"p95 of 1..100ms", ramp(100), 95 * ms},
		{"slow node: cap", []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second}, 500 * ms},
		// Only the last latWindow samples count: 300 slow ones, then a
		// window's worth of 30ms ones.
		{"window forgets", append(repeat(300, 400*ms), repeat(latWindow, 30*ms)...), 30 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, _, _ := newTracker(t, DefaultConfig())
			n := tr.node("n1")
			for _, s := range tt.samples {
				n.mu.Lock()
				n.lat.add(s)
				n.mu.Unlock()
			}
			if got := tr.HedgeDelay("n1"); got != tt.want {
				t.Fatalf("HedgeDelay = %v, want %v", got, tt.want)
			}
		})
	}
}

func repeat(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestLatencyRecordedOnlyForTimedCalls(t *testing.T) {
	tr, _, reg := newTracker(t, DefaultConfig())
	for range 3 {
		c, _ := tr.Begin("n1")
		c.End(context.Background(), nil)
		c, _ = tr.Begin("n1")
		c.EndStream(context.Background(), nil)
	}
	if got := metricValue(t, reg, "kintsugi_node_call_seconds", map[string]string{"node": "n1"}); got != 3 {
		t.Fatalf("latency samples %v, want 3 (streams are not timed)", got)
	}
	if got := metricValue(t, reg, "kintsugi_node_calls_total", map[string]string{"node": "n1", "outcome": "ok"}); got != 6 {
		t.Fatalf("ok calls %v, want 6", got)
	}
}

func TestSetNodesForgets(t *testing.T) {
	tr, _, reg := newTracker(t, fastConfig())
	tr.SetNodes([]string{"a", "b"})
	tr.Hedged("b", true)
	tr.SetNodes([]string{"a", "c"})
	var ids []string
	for _, st := range tr.Status() {
		ids = append(ids, st.ID)
	}
	if got := strings.Join(ids, ","); got != "a,c" {
		t.Fatalf("nodes %s, want a,c", got)
	}
	if got := metricValue(t, reg, "kintsugi_hedged_reads_total", map[string]string{"node": "b"}); got != -1 {
		t.Fatalf("series of a forgotten node kept: %v", got)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"zero interval", func(c *Config) { c.Interval = 0 }, false},
		{"zero trip", func(c *Config) { c.TripAfter = 0 }, false},
		{"zero open", func(c *Config) { c.OpenFor = 0 }, false},
		{"cap below floor", func(c *Config) { c.HedgeCap = c.HedgeFloor / 2 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			_, err := New(c)
			if (err == nil) != tt.ok {
				t.Fatalf("New: %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !kerr.Is(kerr.Invalid, err) {
				t.Fatalf("kind %v, want invalid", kerr.KindOf(err))
			}
		})
	}
	reg := prometheus.NewRegistry()
	c := DefaultConfig()
	c.Registerer = reg
	if _, err := New(c); err != nil {
		t.Fatal(err)
	}
	if _, err := New(c); err == nil {
		t.Fatal("two trackers registered the same metrics")
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Up: "up", Suspect: "suspect", Down: "down", 7: "State(7)"} {
		if s.String() != want {
			t.Errorf("%d: %q, want %q", int32(s), s.String(), want)
		}
	}
}

// TestHedgeDelayFollowsWaits: the hedge delay is the larger of the calls'
// p95 and the stream waits' p99, so that a busy machine, whose every wait
// grows, does not hedge most reads.
func TestHedgeDelayFollowsWaits(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name         string
		calls, waits []time.Duration
		want         time.Duration
	}{
		{"fast calls, no waits: floor", repeat(20, ms), nil, DefaultHedgeFloor},
		{"fast calls, slow waits", repeat(20, ms), append(repeat(98, 20*ms), 40*ms, 40*ms), 40 * ms},
		{"p99 of waits 1..100ms", repeat(20, ms), func() (out []time.Duration) {
			for i := 1; i <= 100; i++ {
				out = append(out, time.Duration(i)*ms)
			}
			return out
		}(), 99 * ms},
		{"slow calls win", repeat(20, 60*ms), repeat(20, 30*ms), 60 * ms},
		{"too few waits", repeat(20, ms), repeat(3, 300*ms), DefaultHedgeFloor},
		{"waits capped", nil, repeat(20, 3*time.Second), DefaultHedgeCap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, _, _ := newTracker(t, DefaultConfig())
			n := tr.node("n1")
			for _, s := range tt.calls {
				n.mu.Lock()
				n.lat.add(s)
				n.mu.Unlock()
			}
			for _, w := range tt.waits {
				tr.ObserveWait("n1", w)
			}
			if got := tr.HedgeDelay("n1"); got != tt.want {
				t.Fatalf("HedgeDelay = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestProgressExcusesSlowHeartbeats: heartbeats that time out while the
// node's streams keep moving bytes do not take the node down; once the
// streams stop too, the same heartbeats do.
func TestProgressExcusesSlowHeartbeats(t *testing.T) {
	cfg := fastConfig()
	cfg.Probe = func(ctx context.Context, id string) error {
		<-ctx.Done() // every heartbeat misses its deadline
		return ctx.Err()
	}
	tr, _, _ := newTracker(t, cfg)
	tr.SetNodes([]string{"n1"})
	moving := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-moving:
				return
			case <-tick.C:
				tr.Progress("n1")
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// Ten heartbeat timeouts, over three times TripAfter.
	for end := time.Now().Add(10 * cfg.Timeout); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if s := tr.State("n1"); s == Down || !tr.Available("n1") {
			t.Fatalf("node went %v while its streams moved", s)
		}
	}
	close(moving)
	<-stopped
	waitState(t, tr, "n1", Down)
}

// TestHeartbeatRound: each Heartbeat is one finished round, so TripAfter
// of them take a failing node down and not one fewer.
func TestHeartbeatRound(t *testing.T) {
	cfg := fastConfig()
	var probes atomic.Int32
	cfg.Probe = func(ctx context.Context, id string) error {
		probes.Add(1)
		if id == "bad" {
			return kerr.E("probe", kerr.Unavailable, errors.New("refused"))
		}
		return nil
	}
	tr, _, _ := newTracker(t, cfg)
	tr.SetNodes([]string{"good", "bad"})
	for i := 1; i <= cfg.TripAfter; i++ {
		if s := tr.State("bad"); s == Down {
			t.Fatalf("down after %d rounds, want %d", i-1, cfg.TripAfter)
		}
		tr.Heartbeat(context.Background())
		if n := probes.Load(); n != int32(2*i) {
			t.Fatalf("%d probes after %d rounds, want %d", n, i, 2*i)
		}
	}
	if s, g := tr.State("bad"), tr.State("good"); s != Down || g != Up {
		t.Fatalf("after %d rounds: bad %v, good %v; want down, up", cfg.TripAfter, s, g)
	}
}

// TestCheck: a node marked down that answers a Check is up at once, its
// breaker closed, without waiting for OpenFor; one that does not answer
// stays down, and the Check ends with its ctx.
func TestCheck(t *testing.T) {
	fail := kerr.E("c", kerr.Unavailable, errors.New("refused"))
	tests := []struct {
		name  string
		probe func(ctx context.Context) error
		want  bool
		state State
	}{
		{"answers", func(context.Context) error { return nil }, true, Up},
		{"refuses", func(context.Context) error { return fail }, false, Down},
		{"hangs", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, false, Down},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fastConfig()
			cfg.OpenFor = time.Hour
			var probes atomic.Int32
			cfg.Probe = func(ctx context.Context, id string) error {
				probes.Add(1)
				return tt.probe(ctx)
			}
			tr, _, _ := newTracker(t, cfg)
			for range cfg.TripAfter {
				c, _ := tr.Begin("n1")
				c.End(context.Background(), fail)
			}
			down := tr.Down("n1")
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if got := tr.Check(ctx, "n1"); got != tt.want {
				t.Fatalf("Check = %v, want %v", got, tt.want)
			}
			if s := tr.State("n1"); s != tt.state {
				t.Fatalf("state %v, want %v", s, tt.state)
			}
			if tr.Available("n1") != tt.want {
				t.Fatalf("Available = %v, want %v", tr.Available("n1"), tt.want)
			}
			if _, err := tr.Begin("n1"); (err == nil) != tt.want {
				t.Fatalf("Begin after the check: %v", err)
			}
			if probes.Load() != 1 {
				t.Fatalf("%d probes, want 1", probes.Load())
			}
			if tt.want {
				select {
				case <-tr.Down("n1"):
					t.Fatal("Down is closed for a node that is up")
				default:
				}
			} else if tr.Down("n1") != down {
				t.Fatal("Down changed for a node still down")
			}
		})
	}
}

// TestCheckShared: concurrent Checks of a node make one probe; a node
// whose breaker is closed is not probed at all; a call begun on the
// half-open breaker a Check replaced, failing after it, does not reopen
// the new one.
func TestCheckShared(t *testing.T) {
	fail := kerr.E("c", kerr.Unavailable, errors.New("refused"))
	cfg := fastConfig()
	var probes atomic.Int32
	release := make(chan struct{})
	cfg.Probe = func(ctx context.Context, id string) error {
		probes.Add(1)
		<-release
		return nil
	}
	tr, _, _ := newTracker(t, cfg)
	if !tr.Check(context.Background(), "n1") || probes.Load() != 0 {
		t.Fatalf("a closed breaker's node: %d probes, want 0", probes.Load())
	}
	for range cfg.TripAfter {
		c, _ := tr.Begin("n1")
		c.End(context.Background(), fail)
	}
	time.Sleep(cfg.OpenFor + 20*time.Millisecond)
	stale, err := tr.Begin("n1") // holds the half-open breaker's one slot
	if err != nil {
		t.Fatalf("no half-open call after OpenFor: %v", err)
	}
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range 5 {
		wg.Go(func() {
			if tr.Check(context.Background(), "n1") {
				ok.Add(1)
			}
		})
	}
	for probes.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the other Checks join the one in flight
	close(release)
	wg.Wait()
	if ok.Load() != 5 || probes.Load() != 1 {
		t.Fatalf("%d of 5 Checks answered true with %d probes, want 5 with 1", ok.Load(), probes.Load())
	}
	stale.End(context.Background(), fail)
	if !tr.Available("n1") || tr.State("n1") == Down {
		t.Fatalf("a call begun before the Check reopened the breaker: %+v", tr.Status())
	}
}

// TestCheckAfterStaleProbe: a Check that finds a probe in flight, begun
// before it was asked, and sees that probe fail, probes the node again
// rather than answering for it with what the node was (a probe sent
// while the link was down fails after the link is back). The Check that
// began the failed probe still reports its own answer.
func TestCheckAfterStaleProbe(t *testing.T) {
	fail := kerr.E("c", kerr.Unavailable, errors.New("no route to host"))
	cfg := fastConfig()
	cfg.OpenFor = time.Hour
	var probes atomic.Int32
	release := make(chan struct{})
	cfg.Probe = func(ctx context.Context, id string) error {
		if probes.Add(1) == 1 {
			<-release
			return fail
		}
		return nil
	}
	tr, _, _ := newTracker(t, cfg)
	for range cfg.TripAfter {
		c, _ := tr.Begin("n1")
		c.End(context.Background(), fail)
	}
	first := make(chan bool)
	go func() { first <- tr.Check(context.Background(), "n1") }()
	for probes.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(5 * time.Millisecond) // asked after the first probe began
	second := make(chan bool)
	go func() { second <- tr.Check(context.Background(), "n1") }()
	time.Sleep(20 * time.Millisecond) // the second Check joins the first probe
	close(release)
	if <-first {
		t.Fatal("the Check whose probe failed reported the node up")
	}
	if !<-second {
		t.Fatal("a Check joining a stale probe that failed reported the node down without asking it")
	}
	if probes.Load() != 2 || !tr.Available("n1") {
		t.Fatalf("%d probes, node available %v; want 2 probes and the node up", probes.Load(), tr.Available("n1"))
	}
}

// TestHeartbeatPastHeldSlot: a half-open breaker whose one call slot is
// held by a call that hangs (begun while the node was cut off) refuses
// the heartbeat's own call; the heartbeat then asks the node with Check,
// so a node that answers is up after that round, not when the hanging
// call times out.
func TestHeartbeatPastHeldSlot(t *testing.T) {
	fail := kerr.E("c", kerr.Unavailable, errors.New("refused"))
	cfg := fastConfig()
	var probes atomic.Int32
	cfg.Probe = func(ctx context.Context, id string) error {
		probes.Add(1)
		return nil
	}
	tr, _, _ := newTracker(t, cfg)
	tr.SetNodes([]string{"n1"})
	for range cfg.TripAfter {
		c, _ := tr.Begin("n1")
		c.End(context.Background(), fail)
	}
	time.Sleep(cfg.OpenFor + 20*time.Millisecond)
	held, err := tr.Begin("n1") // the half-open breaker's one slot
	if err != nil {
		t.Fatalf("no half-open call after OpenFor: %v", err)
	}
	if tr.Available("n1") {
		t.Fatal("a half-open node counts as available")
	}
	tr.Heartbeat(context.Background())
	if !tr.Available("n1") || tr.State("n1") != Up || probes.Load() != 1 {
		t.Fatalf("after a heartbeat the node answered: available %v, state %v, %d probes; want up after 1 probe",
			tr.Available("n1"), tr.State("n1"), probes.Load())
	}
	held.End(context.Background(), fail)
	if !tr.Available("n1") {
		t.Fatal("the held call, failing after the node was seen up, reopened its breaker")
	}
}
