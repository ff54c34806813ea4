package nodeaccess

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// statNode answers every Stat with err and counts the calls; its other
// methods are never called.
type statNode struct {
	client.Node
	err   error
	calls atomic.Int32
}

func (n *statNode) Stat(ctx context.Context, bucket, key string) (client.KeyState, error) {
	n.calls.Add(1)
	return client.KeyState{}, n.err
}

const tripAfter = 3

func newTracker(t *testing.T) *health.Tracker {
	t.Helper()
	cfg := health.DefaultConfig()
	cfg.TripAfter = tripAfter
	cfg.OpenFor = time.Hour // never half-opens within a test
	h, err := health.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func cancelledCtx(cause error) context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	return ctx
}

// TestBreakerRule pins down which outcomes count against a node: TripAfter
// of them in a row open its breaker, and any number of the others leave it
// closed.
func TestBreakerRule(t *testing.T) {
	stale := kerr.E("client.Stat", kerr.Conflict, &client.StaleMapError{Epoch: 1, Map: &placement.Map{Epoch: 2}})
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		err   error
		trips bool
	}{
		{"ok", context.Background(), nil, false},
		{"not found", context.Background(), kerr.E("t", kerr.NotExist, errors.New("no such key")), false},
		{"wrong shard", context.Background(), kerr.E("t", kerr.NotExist, client.ErrWrongShard), false},
		{"exists", context.Background(), kerr.E("t", kerr.Exist, errors.New("bucket exists")), false},
		{"conflict", context.Background(), kerr.E("t", kerr.Conflict, errors.New("newer version")), false},
		{"stale map", context.Background(), stale, false},
		{"invalid", context.Background(), kerr.E("t", kerr.Invalid, errors.New("bad key")), false},
		{"corrupt", context.Background(), kerr.E("t", kerr.Corrupt, errors.New("digest mismatch")), false},
		{"too large", context.Background(), kerr.E("t", kerr.TooLarge, errors.New("disk full")), false},
		{"caller cancelled", cancelledCtx(context.Canceled), kerr.E("t", kerr.Unavailable, context.Canceled), false},
		{"caller moved on", cancelledCtx(errors.New("a newer map")), kerr.E("t", kerr.Transient, context.Canceled), false},
		{"cancelled error", context.Background(), kerr.E("t", kerr.Transient, context.Canceled), false},
		{"unavailable", context.Background(), kerr.E("t", kerr.Unavailable, errors.New("connection refused")), true},
		{"transient", context.Background(), kerr.E("t", kerr.Transient, errors.New("connection reset")), true},
		{"deadline", context.Background(), fmt.Errorf("stat: %w", context.DeadlineExceeded), true},
		{"too slow", cancelledCtx(health.ErrSlow), kerr.E("t", kerr.Transient, context.Canceled), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTracker(t)
			n := &statNode{err: tc.err}
			g := Guard(n, "n1", h)
			for range tripAfter + 2 {
				if _, err := g.Stat(tc.ctx, "b", "k"); err != tc.err && !errors.Is(err, health.ErrOpen) {
					t.Fatalf("Stat = %v, want the node's %v", err, tc.err)
				}
			}
			if got := !h.Available("n1"); got != tc.trips {
				t.Errorf("breaker open = %v, want %v (state %v)", got, tc.trips, h.State("n1"))
			}
			want := int32(tripAfter + 2)
			if tc.trips {
				want = tripAfter
			}
			if got := n.calls.Load(); got != want {
				t.Errorf("node got %d calls, want %d", got, want)
			}
		})
	}
}

// TestOpenBreaker: an open breaker refuses at once with kerr.Unavailable
// wrapping health.ErrOpen, unless the call bypasses breakers.
func TestOpenBreaker(t *testing.T) {
	h := newTracker(t)
	n := &statNode{err: kerr.E("t", kerr.Unavailable, errors.New("connection refused"))}
	g := Guard(n, "n1", h)
	ctx := context.Background()
	for range tripAfter {
		g.Stat(ctx, "b", "k")
	}
	n.err = nil
	_, err := g.Stat(ctx, "b", "k")
	if !errors.Is(err, health.ErrOpen) || !kerr.Is(kerr.Unavailable, err) {
		t.Fatalf("Stat through an open breaker = %v, want kerr.Unavailable wrapping health.ErrOpen", err)
	}
	if got := n.calls.Load(); got != tripAfter {
		t.Fatalf("node got %d calls, want %d", got, tripAfter)
	}
	if Bypassed(g) {
		t.Error("Bypassed(Guard(...)) = true")
	}
	b := Bypass(g)
	if !Bypassed(b) {
		t.Error("Bypassed(Bypass(...)) = false")
	}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		n    client.Node
	}{{"Bypass", ctx, b}, {"WithBypass", WithBypass(ctx), g}} {
		before := n.calls.Load()
		if _, err := tc.n.Stat(tc.ctx, "b", "k"); err != nil {
			t.Errorf("%s: Stat = %v", tc.name, err)
		}
		if n.calls.Load() != before+1 {
			t.Errorf("%s: the call did not reach the node", tc.name)
		}
	}
	// A bypassing call through an open breaker reports nothing: the
	// breaker learns from its own probes.
	if h.Available("n1") {
		t.Error("a bypassing call closed the breaker")
	}
	if Bypass(n) != client.Node(n) || Bypassed(n) {
		t.Error("Bypass changed an unguarded node")
	}
}

func TestGuardWithoutTracker(t *testing.T) {
	n := &statNode{}
	if Guard(n, "n1", nil) != client.Node(n) {
		t.Error("Guard without a tracker wrapped the node")
	}
}

func TestPool(t *testing.T) {
	var dials atomic.Int32
	p := NewPool(func(placement.Node) client.Node { dials.Add(1); return &statNode{} }, newTracker(t))
	a := placement.Node{ID: "n1", Addr: "a:1"}
	c := p.Get(a)
	if p.Get(a) != c || dials.Load() != 1 {
		t.Errorf("a second Get of one node dialled again (%d dials)", dials.Load())
	}
	if _, ok := c.(guarded); !ok {
		t.Errorf("Get returned %T, want a guarded node", c)
	}
	moved := a
	moved.Addr = "a:2"
	if p.Get(moved) == c || dials.Load() != 2 {
		t.Error("a node at a new address kept its old client")
	}
}

func TestLiveNodes(t *testing.T) {
	m := &placement.Map{Nodes: []placement.Node{
		{ID: "n1", State: placement.StateActive},
		{ID: "n2", State: placement.StateRemoved},
		{ID: "n3", State: placement.StateDraining},
	}}
	var ids []string
	for _, n := range LiveNodes(m) {
		ids = append(ids, n.ID)
	}
	if fmt.Sprint(ids) != "[n1 n3]" {
		t.Errorf("LiveNodes = %v, want [n1 n3]", ids)
	}
}
