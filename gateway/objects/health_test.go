package objects

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// healthCluster is a cluster whose Store tracks node health, with
// heartbeats that ask the fake nodes (a node down or stalled for every
// operation fails them). Heartbeats go out when the test says so
// (waitState), or on real timers once heartbeats is called.
type healthCluster struct {
	*cluster
	h       *health.Tracker
	openFor time.Duration
}

func newHealthCluster(t testing.TB, nodes, d, p int, opts ...func(*Config)) *healthCluster {
	t.Helper()
	return newHealthClusterWith(t, nil, nodes, d, p, opts...)
}

// newHealthClusterWith is newHealthCluster with the tracker's Config
// changed by hcfg (if not nil) before it is made.
func newHealthClusterWith(t testing.TB, hcfg func(*health.Config), nodes, d, p int, opts ...func(*Config)) *healthCluster {
	t.Helper()
	hc := &healthCluster{}
	cfg := health.DefaultConfig()
	cfg.Interval = 10 * time.Millisecond
	cfg.Timeout = 200 * time.Millisecond
	cfg.OpenFor = 200 * time.Millisecond
	cfg.HedgeCap = 200 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.Probe = func(ctx context.Context, id string) error {
		_, err := hc.nodes[id].Health(ctx)
		return err
	}
	if hcfg != nil {
		hcfg(&cfg)
	}
	h, err := health.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hc.h, hc.openFor = h, cfg.OpenFor
	opts = append(opts, func(c *Config) { c.Health = h })
	hc.cluster = newCluster(t, nodes, d, p, opts...)
	return hc
}

// heartbeats sends heartbeats every Interval on the wall clock until the
// test ends, for tests of heartbeats that hang until their Timeout while
// an operation runs.
func (hc *healthCluster) heartbeats() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { hc.h.Run(ctx); close(done) }()
	hc.t.Cleanup(func() { cancel(); <-done })
}

// waitState runs heartbeat rounds until node id is in state want. An open
// breaker lets a probe through only OpenFor after it opened, timed on the
// wall clock (gobreaker reads time.Now), so leaving Down waits that long.
func (hc *healthCluster) waitState(id string, want health.State) {
	hc.t.Helper()
	for round := 0; hc.h.State(id) != want; round++ {
		if round == 10 {
			hc.t.Fatalf("node %s is %v after %d heartbeat rounds, want %v", id, hc.h.State(id), round, want)
		}
		if hc.h.State(id) == health.Down {
			time.Sleep(hc.openFor)
		}
		hc.h.Heartbeat(context.Background())
	}
}

// pollState waits up to 5s for node id to reach want, while heartbeats
// run on their own (heartbeats): for states a heartbeat in flight holds.
func (hc *healthCluster) pollState(id string, want health.State) {
	hc.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for hc.h.State(id) != want {
		if time.Now().After(deadline) {
			hc.t.Fatalf("node %s is %v after 5s, want %v", id, hc.h.State(id), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBreakerSkipsDeadNode: once a dead node's breaker opens, reads and
// writes do not call it at all; when it returns, the breaker closes and it
// takes writes again.
func TestBreakerSkipsDeadNode(t *testing.T) {
	c := newHealthCluster(t, 7, 4, 2)
	data := payload(3*4*testBlock+17, 1)
	c.put("k", data)
	dead := c.shardNode("k", 1)
	dead.SetDown("*", true)
	c.waitState(dead.ID(), health.Down)

	before := dead.Calls("stat") + dead.Calls("read") + dead.Calls("stage") + dead.Calls("commit")
	for range 5 {
		c.mustGet("k", data)
	}
	info := c.put("k", data)
	after := dead.Calls("stat") + dead.Calls("read") + dead.Calls("stage") + dead.Calls("commit")
	if after != before {
		t.Fatalf("the dead node was called %d times while its breaker was open", after-before)
	}
	if rec := c.shardNode("k", 0).Committed(testBucket, "k"); rec == nil || rec.Version != info.Version || rec.Nodes[1] != "" {
		t.Fatalf("record %+v: want version %s without shard 1", rec, info.Version)
	}

	dead.SetDown("*", false)
	c.waitState(dead.ID(), health.Up)
	info = c.put("k", data)
	if rec := dead.Committed(testBucket, "k"); rec == nil || rec.Version != info.Version {
		t.Fatalf("recovered node holds %+v, want version %s", rec, info.Version)
	}
	c.mustGet("k", data)
}

// TestHedgedRead: a data shard's node that stalls (on open or mid-stream)
// costs a read about one hedge delay, not the stall timeout: a parity
// shard is asked for and wins. The hedged shard is not reported as
// damaged.
func TestHedgedRead(t *testing.T) {
	tests := []struct {
		name  string
		fault func(n *nodetest.State)
		clear func(n *nodetest.State)
	}{
		{"open stalls", func(n *nodetest.State) { n.Stall["read"] = true }, func(n *nodetest.State) { n.Stall["read"] = false }},
		{"stream stalls", func(n *nodetest.State) { n.StallAfter = 2*(codec.DigestSize+testBlock) + 5 }, func(n *nodetest.State) { n.StallAfter = 0 }},
	}
	c := newHealthCluster(t, 6, 4, 2)
	data := payload(6*4*testBlock, 3)
	c.put("k", data)
	c.mustGet("k", data)
	c.allHints()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slow := c.shardNode("k", 2)
			slow.Edit(tt.fault)
			defer slow.Edit(tt.clear)
			start := time.Now()
			c.mustGet("k", data)
			// The stall timeout is 5s; a hedge costs at most HedgeCap.
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("read with a stalled data shard took %v", d)
			}
			if hints := c.allHints(); len(hints) != 0 {
				t.Fatalf("a hedged shard was reported as damaged: %v", hints)
			}
		})
	}
}

// TestHedgeLosesToFastNode: a data node that answers within its hedge
// delay is read normally, with no parity read at all.
func TestHedgeLosesToFastNode(t *testing.T) {
	c := newHealthCluster(t, 6, 4, 2)
	data := payload(4*4*testBlock, 5)
	c.put("k", data)
	var parityReads int
	for i := 4; i < 6; i++ {
		parityReads += c.shardNode("k", i).Calls("read")
	}
	for range 10 {
		c.mustGet("k", data)
	}
	for i := 4; i < 6; i++ {
		parityReads -= c.shardNode("k", i).Calls("read")
	}
	if parityReads != 0 {
		t.Fatalf("%d parity reads on a healthy cluster", -parityReads)
	}
}

// TestWriteSkipsHalfOpenNode: a node coming back, its breaker half-open
// and spending its one call on a heartbeat, would refuse a write's shard.
// The write must code around it as around a down node (3+3 here), not
// send 4+2 and store only five shards, one failure short of what the code
// promises.
func TestWriteSkipsHalfOpenNode(t *testing.T) {
	hc := newHealthCluster(t, 6, 4, 2)
	c := hc.cluster
	back := c.shardNode("k", 3)
	back.SetDown("*", true)
	hc.waitState(back.ID(), health.Down)
	// Heartbeats now hang until their timeout: each half-open probe holds
	// the breaker's one slot and then fails, so the node never closes.
	back.Edit(func(n *nodetest.State) { n.Slow["health"] = time.Hour })
	back.SetDown("*", false)
	hc.heartbeats()
	hc.pollState(back.ID(), health.Suspect)

	data := payload(5*4*testBlock+333, 11)
	c.put("k", data)
	rec := c.shardNode("k", 0).Committed(testBucket, "k")
	if rec == nil || rec.Data != 3 || rec.Parity != 3 || rec.Nodes[3] != "" {
		t.Fatalf("record %+v: want 3+3 without shard 3", rec)
	}
	c.shardNode("k", 0).SetDown("*", true)
	c.shardNode("k", 5).SetDown("*", true)
	got, err := c.get("k")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get after 2 further failures: %d bytes, %v", len(got), err)
	}
}

// TestDegradedWriteRaisesParity is the invariant for writes taken while a
// node is down: the object is coded d-1+p+1 on the nodes that are up, so
// after the down node returns empty-handed and two others fail, it still
// reads back exact. Without health tracking (the node is not known to be
// down) the write finds it down when its stage fails and writes its kept
// body again, raised; a body the Store does not keep is committed 4+2
// short of that shard, and the same sequence loses it.
func TestDegradedWriteRaisesParity(t *testing.T) {
	for _, tc := range []struct {
		name          string
		tracked, kept bool
	}{
		{"tracked", true, true},
		{"untracked", false, true},
		{"untracked, body not kept", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tracked := tc.tracked
			keep := func(cfg *Config) {
				if !tc.kept {
					cfg.KeptBodies = -1
				}
			}
			var c *cluster
			if tracked {
				hc := newHealthCluster(t, 6, 4, 2, keep)
				c = hc.cluster
				defer func() { _ = hc }()
				down := c.shardNode("k", 3)
				down.SetDown("*", true)
				hc.waitState(down.ID(), health.Down)
			} else {
				c = newCluster(t, 6, 4, 2, keep)
				c.shardNode("k", 3).SetDown("*", true)
			}
			down := c.shardNode("k", 3)
			data := payload(5*4*testBlock+333, 9)
			info := c.put("k", data)
			rec := c.shardNode("k", 0).Committed(testBucket, "k")
			wantD, wantP := 4, 2
			if tc.kept {
				wantD, wantP = 3, 3
			}
			if rec == nil || rec.Data != wantD || rec.Parity != wantP || rec.Nodes[3] != "" {
				t.Fatalf("record %+v: want %d+%d without shard 3", rec, wantD, wantP)
			}
			hints := c.allHints()
			want := client.Hint{Bucket: testBucket, Key: "k", Version: info.Version, Shard: 3, NodeID: down.ID(), Reason: "missing", Time: testNow}
			if len(hints) != 5 {
				t.Fatalf("hints %v", hints)
			}
			for id, hs := range hints {
				if len(hs) != 1 || hs[0] != want {
					t.Fatalf("node %s: hints %+v, want %+v", id, hs, want)
				}
			}

			down.SetDown("*", false)
			c.shardNode("k", 0).SetDown("*", true)
			c.shardNode("k", 5).SetDown("*", true)
			got, err := c.get("k")
			if !tc.kept {
				wantErr(t, err, ErrQuorum, kerr.Unavailable)
				return
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("get after 2 further failures: %d bytes, %v", len(got), err)
			}
		})
	}
}

// TestPutFailsFastWithTooManyDown: with more than p of a key's nodes
// known down, a PUT fails at once without streaming anything.
func TestPutFailsFastWithTooManyDown(t *testing.T) {
	c := newHealthCluster(t, 6, 4, 2)
	for _, i := range []int{0, 3, 4} {
		n := c.shardNode("k", i)
		n.SetDown("*", true)
		c.waitState(n.ID(), health.Down)
	}
	data := payload(100, 1)
	_, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: 100, Body: bytes.NewReader(data)})
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
	for _, n := range c.list {
		if got := n.Calls("stage"); got != 0 {
			t.Fatalf("node %s got %d stages", n.ID(), got)
		}
	}
}

// TestStragglersNotAwaited: a node that stalls on metadata calls (stat,
// commit, bucket) does not hold GET, PUT or DELETE for the call timeout.
// A commit it never answered is reported for repair once it fails.
func TestStragglersNotAwaited(t *testing.T) {
	const callTimeout = 2 * time.Second
	c := newHealthCluster(t, 6, 4, 2, func(cfg *Config) {
		cfg.CallTimeout = callTimeout
		cfg.CommitTimeout = callTimeout
		cfg.BucketCacheTTL = -1
	})
	data := payload(2*4*testBlock, 4)
	c.put("k", data)
	slow := c.shardNode("k", 5)
	for _, op := range []string{"stat", "commit", "bucket"} {
		slow.SetStall(op, true)
	}
	timed := func(what string, f func()) {
		t.Helper()
		start := time.Now()
		f()
		if d := time.Since(start); d > callTimeout/2 {
			t.Fatalf("%s took %v with a straggler", what, d)
		}
	}
	timed("get", func() { c.mustGet("k", data) })
	var info ObjectInfo
	timed("put", func() { info = c.put("k", data) })
	timed("get after put", func() { c.mustGet("k", data) })
	timed("delete", func() {
		if err := c.s.DeleteObject(context.Background(), testBucket, "k"); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := c.get("k"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("get after delete: %v", err)
	}
	// The late commit of the put failed after the commit timeout and was
	// reported then.
	hints := c.allHints()
	found := false
	for _, hs := range hints {
		for _, h := range hs {
			if h.Version == info.Version && h.Shard == 5 && h.NodeID == slow.ID() && h.Reason == "missing" {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("no hint for the straggler's shard 5 of %s: %v", info.Version, hints)
	}
}

// TestStageCutOffWhenNodeGoesDown: a node that stalls mid-stage is cut off
// as soon as its breaker opens, long before the stall timeout.
func TestStageCutOffWhenNodeGoesDown(t *testing.T) {
	c := newHealthCluster(t, 6, 4, 2) // stall timeout 5s
	c.heartbeats()
	slow := c.shardNode("k", 2)
	slow.Edit(func(n *nodetest.State) {
		n.StallAfter = 2 * (codec.DigestSize + testBlock)
		n.Stall["health"] = true
	})
	data := payload(40*4*testBlock, 8)
	start := time.Now()
	info := c.put("k", data)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("put took %v with a node going down mid-stream", d)
	}
	slow.Edit(func(n *nodetest.State) { n.StallAfter, n.Stall = 0, map[string]bool{} })
	if rec := c.shardNode("k", 0).Committed(testBucket, "k"); rec == nil || rec.Version != info.Version || rec.Nodes[2] != "" {
		t.Fatalf("record %+v: want version %s without shard 2", rec, info.Version)
	}
	c.mustGet("k", data)
}

// TestReadsFindShardsOfOlderEpochs: after two map changes a shard that has
// not moved sits on a node placed by neither the current nor the previous
// map; readers find it through the node list in the version's metadata.
func TestReadsFindShardsOfOlderEpochs(t *testing.T) {
	c := newCluster(t, 8, 4, 2)
	setStates := func(epoch uint64, states map[string]string) {
		m := *c.s.Map()
		m.Epoch = epoch
		m.Nodes = slices.Clone(m.Nodes)
		for i := range m.Nodes {
			m.Nodes[i].State = placement.StateActive
			if st, ok := states[m.Nodes[i].ID]; ok {
				m.Nodes[i].State = st
			}
		}
		c.s.SetMap(&m)
	}
	setStates(2, map[string]string{"n6": placement.StateDraining, "n7": placement.StateDraining})
	data := payload(3*4*testBlock+5, 6)
	c.put("k", data)
	ids := c.nodeIDs("k")
	// Drain two holders, one map change at a time.
	setStates(3, map[string]string{ids[5]: placement.StateDraining, "n7": placement.StateDraining})
	setStates(4, map[string]string{ids[5]: placement.StateDraining, ids[4]: placement.StateDraining})
	// Two of the other holders fail: reading needs both drained ones, and
	// ids[5] is placed by neither map.
	c.nodes[ids[0]].SetDown("*", true)
	c.nodes[ids[1]].SetDown("*", true)
	c.mustGet("k", data)
}

// slowStat delays Stat calls to the nodes named by slow.
type slowStat struct {
	client.Node
	id   string
	slow *atomic.Value // []string
}

func (s slowStat) Stat(ctx context.Context, bucket, key string) (client.KeyState, error) {
	if ids, _ := s.slow.Load().([]string); slices.Contains(ids, s.id) {
		select {
		case <-time.After(300 * time.Millisecond):
		case <-ctx.Done():
			return client.KeyState{}, kerr.E("slow.Stat", kerr.Transient, ctx.Err())
		}
	}
	return s.Node.Stat(ctx, bucket, key)
}

// TestStragglerAfterMapChange: after a node joins and a dead one leaves,
// readers ask the new node although it holds nothing yet; slow holders
// must then still be waited for, since without them the answers do not
// hold d shards.
func TestStragglerAfterMapChange(t *testing.T) {
	var slow atomic.Value
	slow.Store([]string(nil))
	c := newHealthCluster(t, 7, 4, 2, func(cfg *Config) {
		dial := cfg.Dial
		cfg.Dial = func(n placement.Node) client.Node { return slowStat{dial(n), n.ID, &slow} }
	})
	setStates := func(epoch uint64, states map[string]string) {
		m := *c.s.Map()
		m.Epoch = epoch
		m.Nodes = slices.Clone(m.Nodes)
		for i := range m.Nodes {
			m.Nodes[i].State = placement.StateActive
			if st, ok := states[m.Nodes[i].ID]; ok {
				m.Nodes[i].State = st
			}
		}
		c.s.SetMap(&m)
	}
	setStates(2, map[string]string{"n6": placement.StateDraining})
	data := payload(2*4*testBlock+9, 3)
	c.put("k", data)
	ids := c.nodeIDs("k")
	// The first holder dies and is removed; n6 takes its place.
	c.nodes[ids[0]].SetDown("*", true)
	setStates(3, map[string]string{ids[0]: placement.StateDraining})
	setStates(4, map[string]string{ids[0]: placement.StateRemoved})
	if !slices.Contains(c.nodeIDs("k"), "n6") {
		t.Fatalf("n6 not placed for k: %v", c.nodeIDs("k"))
	}
	slow.Store([]string{ids[1], ids[2]})
	got, err := c.get("k")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %d bytes, %v", len(got), err)
	}
}

// TestGetThroughStaleBreakers: nodes that were down and are back, but whose
// breakers have not closed yet, still serve a GET that could not be served
// without them, instead of a 503.
func TestGetThroughStaleBreakers(t *testing.T) {
	c := newHealthCluster(t, 6, 4, 2)
	data := payload(20000, 7)
	c.put("k", data)
	c.staleBreakers("k", 3)
	got, err := c.get("k")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get with 3 nodes behind stale breakers: %d bytes, %v", len(got), err)
	}
}

// TestQuickResolveCutoffIsNotAFailure: a read that stops waiting for a
// slow data node after a hedge (and asks every node instead) must not
// count that against the node. Counted, a burst of GETs on a busy node
// opened its breaker, and listings and writes then refused a node that
// answered every call.
func TestQuickResolveCutoffIsNotAFailure(t *testing.T) {
	hc := newHealthCluster(t, 6, 4, 2)
	c := hc.cluster
	data := payload(3000, 5)
	c.put("k", data)
	slow := c.shardNode("k", 0)
	// Heartbeats answer too, but seldom enough that concurrent reads can
	// be cut off several times in a row between two of them.
	slow.Edit(func(n *nodetest.State) {
		n.Slow["stat"] = 100 * time.Millisecond
		n.Slow["health"] = 150 * time.Millisecond
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 4 {
				got, err := c.get("k")
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("get: %d bytes, %v", len(got), err)
				}
				if s := hc.h.State(slow.ID()); s == health.Down {
					t.Errorf("the slow node is %v", s)
				}
			}
		})
	}
	wg.Wait()
}

// TestListThroughStaleBreakers: nodes back from an outage whose breakers
// are still open serve a listing that could not be served without them.
func TestListThroughStaleBreakers(t *testing.T) {
	c := newHealthCluster(t, 6, 4, 2)
	for _, k := range []string{"a", "b", "c"} {
		c.put(k, payload(100, 1))
	}
	c.staleBreakers("a", 3)
	res, err := c.s.ListObjects(context.Background(), testBucket, ListOptions{})
	if err != nil || len(res.Objects) != 3 {
		t.Fatalf("list with 3 nodes behind stale breakers: %+v, %v", res, err)
	}
}

// staleBreakers takes down the nodes of key's first n shards until their
// breakers open, then brings them back with the breakers still open.
func (hc *healthCluster) staleBreakers(key string, n int) {
	hc.t.Helper()
	var back []*fakeNode
	for i := range n {
		node := hc.shardNode(key, i)
		node.SetDown("*", true)
		hc.waitState(node.ID(), health.Down)
		back = append(back, node)
	}
	for _, node := range back {
		node.SetDown("*", false)
	}
	for _, node := range back {
		if hc.s.available(node.ID()) {
			hc.t.Fatalf("node %s: breaker closed already; the test needs it open", node.ID())
		}
	}
}
