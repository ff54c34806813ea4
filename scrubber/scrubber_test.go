package scrubber

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// sizes cover an empty object, one short stripe and several stripes.
var sizes = []int{0, 1, 5000, 4*testBlock + 7, 9 * 4 * testBlock}

func TestHealthyPass(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	var total int64
	for i, size := range sizes {
		c.put("bk", fmt.Sprint("obj", i), testData(size, uint64(i)))
		total += int64(size)
	}
	c.del("bk", "gone", nil)
	s := c.scrubber(nil)
	rep := mustRun(t, s)
	want := map[int]int64{6: int64(len(sizes))}
	if rep.Objects != int64(len(sizes)) || rep.Bytes != total || rep.Markers != 1 ||
		rep.ShardsVerified != int64(6*len(sizes)) || rep.ShardsMissing != 0 || rep.ShardsCorrupt != 0 ||
		rep.ShardsRebuilt != 0 || !maps.Equal(rep.Redundancy, want) || !maps.Equal(rep.RedundancyAfter, want) ||
		!rep.Healthy() || rep.Resumed != 0 || rep.Buckets != 1 || rep.Finished.IsZero() {
		t.Errorf("report = %+v", rep)
	}
	var shardBytes int64
	cd, _ := codec.New(4, 2, codec.WithBlockSize(testBlock))
	for _, size := range sizes {
		shardBytes += 6 * cd.Layout(int64(size)).ShardSize()
	}
	if rep.ShardBytes != shardBytes {
		t.Errorf("ShardBytes = %d, want %d", rep.ShardBytes, shardBytes)
	}
	if last := s.LastReport(); last == nil || last.Objects != rep.Objects {
		t.Errorf("LastReport = %+v", last)
	}
	if s.OldestUnverified() <= 0 || s.OldestUnverified() > time.Minute {
		t.Errorf("OldestUnverified = %v", s.OldestUnverified())
	}
}

// TestRepair damages shards in every way a node can lose them, at most p
// per object, and checks that one pass finds each and rebuilds it byte
// for byte.
func TestRepair(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	type damaged struct {
		meta  client.ObjectMeta
		shard int
		orig  []byte
	}
	var all []damaged
	var metas []client.ObjectMeta
	for i, size := range sizes[1:] {
		metas = append(metas, c.put("bk", fmt.Sprint("obj", i), testData(size, uint64(10+i))))
	}
	// obj0: one data shard flipped; obj1: a parity shard flipped and a
	// data shard file deleted; obj2: two parity shards flipped; obj3: a
	// data shard truncated and a parity shard flipped in its digest.
	corrupt := func(m client.ObjectMeta, shard, at int) {
		all = append(all, damaged{m, shard, c.flip(m, shard, at)})
	}
	corrupt(metas[0], 0, 40)
	corrupt(metas[1], 5, 3)
	corrupt(metas[2], 4, 100)
	corrupt(metas[2], 5, 7000)
	corrupt(metas[3], 4, 1)
	path := c.shardPath(c.holder("bk", "obj1", 2), "bk", "obj1", metas[1].Version, 2)
	orig, _ := os.ReadFile(path)
	os.Remove(path)
	all = append(all, damaged{metas[1], 2, orig})
	path = c.shardPath(c.holder("bk", "obj3", 1), "bk", "obj3", metas[3].Version, 1)
	orig, _ = os.ReadFile(path)
	os.WriteFile(path, orig[:len(orig)-5], 0o644)
	all = append(all, damaged{metas[3], 1, orig})

	s := c.scrubber(nil)
	rep := mustRun(t, s)
	if rep.ShardsCorrupt != 6 || rep.ShardsMissing != 1 || rep.ShardsRebuilt != 7 || rep.RepairsFailed != 0 || !rep.Healthy() {
		t.Errorf("report = %+v", rep)
	}
	if want := (map[int]int64{5: 1, 4: 3}); !maps.Equal(rep.Redundancy, want) {
		t.Errorf("Redundancy = %v, want %v", rep.Redundancy, want)
	}
	if want := (map[int]int64{6: 4}); !maps.Equal(rep.RedundancyAfter, want) {
		t.Errorf("RedundancyAfter = %v, want %v", rep.RedundancyAfter, want)
	}
	for _, d := range all {
		p := c.shardPath(c.holder("bk", d.meta.Key, d.shard), "bk", d.meta.Key, d.meta.Version, d.shard)
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, d.orig) {
			t.Errorf("%s shard %d not restored byte for byte (err %v)", d.meta.Key, d.shard, err)
		}
	}
	// Every node's quarantine is empty again, and a second pass finds
	// nothing to do.
	for _, tn := range c.nodes {
		if st, err := tn.c.ScrubStatus(context.Background()); err != nil || st.Quarantined != 0 {
			t.Errorf("node %s quarantine after repair: %+v, %v", tn.id, st, err)
		}
	}
	rep = mustRun(t, s)
	if rep.ShardsCorrupt != 0 || rep.ShardsMissing != 0 || rep.ShardsRebuilt != 0 || rep.Redundancy[6] != 4 {
		t.Errorf("second pass = %+v", rep)
	}
}

func TestUnrecoverable(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	lost := c.put("bk", "lost", testData(20000, 1))
	ok := c.put("bk", "ok", testData(20000, 2))
	for _, sh := range []int{0, 3, 5} {
		c.flip(lost, sh, 50)
	}
	c.flip(ok, 1, 50)
	rep := mustRun(t, c.scrubber(nil))
	if rep.UnrecoverableCount != 1 || len(rep.Unrecoverable) != 1 {
		t.Fatalf("report = %+v", rep)
	}
	u := rep.Unrecoverable[0]
	if u.Bucket != "bk" || u.Key != "lost" || u.Version != lost.Version || u.Healthy != 3 || u.Need != 4 {
		t.Errorf("unrecoverable = %+v", u)
	}
	if rep.ShardsRebuilt != 1 || rep.RedundancyAfter[6] != 1 || rep.RedundancyAfter[3] != 1 || rep.IncompleteCount != 0 {
		t.Errorf("report = %+v", rep)
	}
	if got, err := c.read("bk", "ok"); err != nil || !bytes.Equal(got, testData(20000, 2)) {
		t.Errorf("ok object after repair: %v", err)
	}
}

// TestLostNode wipes a node: one pass puts back every shard and bucket
// record it held.
func TestLostNode(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	const objects = 12
	for i := range objects {
		c.put("bk", fmt.Sprint("k", i), testData(3000*i, uint64(i)))
	}
	c.wipe("n3")
	s := c.scrubber(func(cfg *Config) { cfg.Concurrency = 3 })
	rep := mustRun(t, s)
	if rep.ShardsMissing != objects || rep.ShardsRebuilt != objects || rep.BucketsRepaired != 1 ||
		!maps.Equal(rep.RedundancyAfter, map[int]int64{6: objects}) || !maps.Equal(rep.Redundancy, map[int]int64{5: objects}) {
		t.Errorf("report = %+v", rep)
	}
	if h, err := c.byID["n3"].c.Health(context.Background()); err != nil || h.Objects != objects {
		t.Errorf("wiped node holds %d objects after the pass, want %d (%v)", h.Objects, objects, err)
	}
	if b, err := c.byID["n3"].c.GetBucket(context.Background(), "bk"); err != nil || b.Deleted {
		t.Errorf("wiped node's bucket record: %+v, %v", b, err)
	}
	// Readable with any other two nodes gone... n3 and one more.
	defer c.down("n1")()
	defer c.down("n2")()
	for i := range objects {
		if got, err := c.read("bk", fmt.Sprint("k", i)); err != nil || !bytes.Equal(got, testData(3000*i, uint64(i))) {
			t.Errorf("k%d with n1 and n2 down: %v", i, err)
		}
	}
}

// TestRiskOrder checks that the objects closest to loss are rebuilt
// first, and that hinted objects come before all of them.
func TestRiskOrder(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	var order []string
	var mu sync.Mutex
	rec := &recorder{onCommit: func(m client.ObjectMeta) {
		mu.Lock()
		order = append(order, m.Key)
		mu.Unlock()
	}}
	// Written with shards missing: a, c with one missing, b with two; h
	// with one, and hinted.
	missing := func(k int) func(int) bool { return func(i int) bool { return i >= k } }
	c.write("bk", "a", testData(100, 1), missing(1), nil)
	c.write("bk", "b", testData(100, 2), missing(2), nil)
	c.write("bk", "c", testData(100, 3), missing(1), nil)
	h := c.write("bk", "h", testData(100, 4), missing(1), nil)
	hint := client.Hint{Bucket: "bk", Key: "h", Version: h.Version, Shard: 0, Reason: "missing", Time: time.Now()}
	if err := c.byID[c.holder("bk", "h", 3)].c.AddHints(context.Background(), []client.Hint{hint}); err != nil {
		t.Fatal(err)
	}
	s := c.scrubber(func(cfg *Config) {
		cfg.Concurrency = 1
		cfg.Dial = rec.dial(cfg.Map)
	})
	rep := mustRun(t, s)
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"h", "b", "b", "a", "c"}; !slices.Equal(order, want) {
		t.Errorf("rebuild commits in order %q, want %q", order, want)
	}
	if rep.HintsConsumed != 1 || rep.ShardsRebuilt != 5 || rep.Objects != 4 {
		t.Errorf("report = %+v", rep)
	}
	for _, tn := range c.nodes {
		if hs, _ := tn.c.ListHints(context.Background(), 0); len(hs) != 0 {
			t.Errorf("hints left on %s: %+v", tn.id, hs)
		}
	}
}

// recorder wraps node clients to watch or interfere with calls.
type recorder struct {
	onCommit func(client.ObjectMeta)             // after a successful commit
	onStage  func(id string, bucket, key string) // before a stage
}

func (r *recorder) dial(m *placement.Map) func(placement.Node) client.Node {
	return func(n placement.Node) client.Node { return &recNode{Client: client.New(n.Addr, nil), r: r, id: n.ID} }
}

type recNode struct {
	*client.Client
	r  *recorder
	id string
}

func (n *recNode) Commit(ctx context.Context, m client.ObjectMeta) (client.Record, error) {
	rec, err := n.Client.Commit(ctx, m)
	if err == nil && n.r.onCommit != nil && !m.Deleted {
		n.r.onCommit(m)
	}
	return rec, err
}

func (n *recNode) Stage(ctx context.Context, bucket, key, version string, shard, block int, body io.Reader) (client.StagedRef, error) {
	if n.r.onStage != nil {
		n.r.onStage(n.id, bucket, key)
	}
	return n.Client.Stage(ctx, bucket, key, version, shard, block, body)
}

// TestNoClobber writes a newer version and deletes another object while
// their rebuilds are in flight: the pass must leave both writes standing.
func TestNoClobber(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	one := func(i int) bool { return i >= 1 }
	c.write("bk", "overwritten", testData(9000, 1), one, nil)
	c.write("bk", "deleted", testData(9000, 2), one, nil)
	var once sync.Map
	newer := testData(7000, 3)
	rec := &recorder{onStage: func(id, bucket, key string) {
		if _, done := once.LoadOrStore(key, true); done {
			return
		}
		switch key {
		case "overwritten":
			c.put("bk", key, newer)
		case "deleted":
			c.del("bk", key, nil)
		}
	}}
	rep := mustRun(t, c.scrubber(func(cfg *Config) { cfg.Dial = rec.dial(cfg.Map) }))
	if rep.Changed != 2 || rep.ShardsRebuilt != 0 || rep.UnrecoverableCount != 0 || rep.ShardsCorrupt != 0 {
		t.Errorf("report = %+v", rep)
	}
	if got, err := c.read("bk", "overwritten"); err != nil || !bytes.Equal(got, newer) {
		t.Errorf("overwritten object: newer version lost (err %v)", err)
	}
	if _, err := c.read("bk", "deleted"); err == nil {
		t.Error("deleted object came back")
	}
	for id, r := range c.stat("bk", "deleted") {
		if r == nil || !r.Deleted {
			t.Errorf("node %s: %+v, want the delete marker", id, r)
		}
	}
}

func TestRollForward(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	data := testData(30000, 5)
	// The writer staged everywhere and died after two commits.
	m := c.write("bk", "k", data, nil, func(i int) bool { return i < 2 })
	rep := mustRun(t, c.scrubber(nil))
	if rep.RolledForward != 4 || rep.ShardsRebuilt != 0 || rep.Redundancy[6] != 1 {
		t.Errorf("report = %+v", rep)
	}
	for id, r := range c.stat("bk", "k") {
		if r == nil || r.Version != m.Version {
			t.Errorf("node %s holds %+v, want version %s", id, r, m.Version)
		}
	}
	// Too few commits and stages to read: never acknowledged, not loss.
	c.write("bk", "half", data, func(i int) bool { return i < 3 }, func(i int) bool { return i < 1 })
	rep = mustRun(t, c.scrubber(nil))
	if rep.Unacknowledged != 1 || rep.UnrecoverableCount != 0 || rep.RolledForward != 0 {
		t.Errorf("report with an unacknowledged version = %+v", rep)
	}
}

func TestDeleteMarkers(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	c.put("bk", "k", testData(1000, 1))
	// A delete that reached half the nodes; the others still hold the
	// object.
	marker := c.del("bk", "k", func(i int) bool { return i < 3 })
	rep := mustRun(t, c.scrubber(nil))
	if rep.MarkersRepaired != 3 || rep.MarkersRemoved != 0 || rep.Markers != 1 || rep.Objects != 0 {
		t.Errorf("report = %+v", rep)
	}
	for id, r := range c.stat("bk", "k") {
		if r == nil || r.Version != marker.Version {
			t.Errorf("node %s: %+v, want the marker", id, r)
		}
	}
	// Old enough, held everywhere: dropped everywhere, and the key stays
	// gone.
	later := func(cfg *Config) {
		cfg.MarkerGrace = time.Hour
		cfg.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	}
	// Something staged for the key keeps the marker.
	c.write("bk", "k2", testData(10, 1), nil, nil)
	c.del("bk", "k2", nil)
	c.write("bk", "k2", testData(10, 1), func(i int) bool { return i == 0 }, func(int) bool { return false })
	rep = mustRun(t, c.scrubber(later))
	if rep.MarkersRemoved != 1 || rep.Markers != 2 {
		t.Errorf("report = %+v", rep)
	}
	for id, r := range c.stat("bk", "k") {
		if r != nil {
			t.Errorf("node %s still holds %+v", id, r)
		}
	}
	if _, err := c.read("bk", "k"); err == nil {
		t.Error("deleted key readable after its marker was dropped")
	}
	for id, r := range c.stat("bk", "k2") {
		if r == nil || !r.Deleted {
			t.Errorf("k2 on %s: %+v, want its marker kept", id, r)
		}
	}
}

// TestManifests: a multipart object's manifest has no shards; the pass
// copies it where missing and checks its parts as the objects they are.
func TestManifests(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	p1 := c.put("bk", ".uploads/u1/00001.a", testData(20000, 1))
	p2 := c.put("bk", ".uploads/u1/00002.b", testData(3000, 2))
	c.flip(p2, 4, 10)
	m := client.ObjectMeta{
		Bucket: "bk", Key: "big", Version: ulid.Make().String(), Size: 23000, Modified: time.Now().UTC(),
		Parts: []client.PartRef{
			{Number: 1, Key: p1.Key, Version: p1.Version, Size: 20000},
			{Number: 2, Key: p2.Key, Version: p2.Version, Size: 3000},
		},
	}
	placed := c.m.PlaceKey("bk", "big")
	for _, n := range placed[:3] { // the writer died after three commits
		if _, err := c.byID[n.ID].c.Commit(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	rep := mustRun(t, c.scrubber(nil))
	if rep.Manifests != 1 || rep.ManifestsRepaired != 3 || rep.Objects != 2 || rep.ShardsRebuilt != 1 ||
		rep.UnrecoverableCount != 0 || !rep.Healthy() {
		t.Errorf("report = %+v", rep)
	}
	for _, n := range placed {
		ks, err := c.byID[n.ID].c.Stat(context.Background(), "bk", "big")
		if err != nil || ks.Committed == nil || ks.Committed.Version != m.Version || len(ks.Committed.Parts) != 2 {
			t.Errorf("node %s: %+v, %v; want the manifest", n.ID, ks.Committed, err)
		}
	}
}

func TestDanglingStaged(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	// A writer staged everywhere and died before committing anywhere.
	dead := c.write("bk", "dead", testData(20000, 1), nil, func(int) bool { return false })
	// And one that committed once: rolled forward, never swept.
	c.write("bk", "live", testData(20000, 2), nil, func(i int) bool { return i == 0 })
	var staged int64
	for _, tn := range c.nodes {
		l, _ := tn.c.ListStaged(context.Background(), 0)
		for _, s := range l {
			if s.Key == "dead" {
				staged += s.Size
			}
		}
	}
	// Young staged data is left alone.
	rep := mustRun(t, c.scrubber(func(cfg *Config) { cfg.StagingGrace = time.Hour }))
	if rep.StagedAborted != 0 || rep.RolledForward != 5 {
		t.Errorf("report = %+v", rep)
	}
	rep = mustRun(t, c.scrubber(func(cfg *Config) { cfg.StagingGrace = time.Nanosecond }))
	if rep.StagedAborted != 6 || rep.StagedBytes != staged {
		t.Errorf("report = %+v, want 6 shards, %d bytes aborted", rep, staged)
	}
	for _, tn := range c.nodes {
		if l, _ := tn.c.ListStaged(context.Background(), 0); len(l) != 0 {
			t.Errorf("node %s still has staged %+v", tn.id, l)
		}
		if ks, _ := tn.c.Stat(context.Background(), "bk", "dead"); ks.Committed != nil || len(ks.Staged) != 0 {
			t.Errorf("node %s: dead version %s left: %+v", tn.id, dead.Version, ks)
		}
	}
}

func TestDryRun(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	m := c.put("bk", "k", testData(9000, 1))
	c.flip(m, 2, 9)
	c.wipe(c.holder("bk", "k", 4))
	c.write("bk", "dead", testData(10, 1), nil, func(int) bool { return false })
	rep := mustRun(t, c.scrubber(func(cfg *Config) {
		cfg.DryRun = true
		cfg.StagingGrace = time.Nanosecond
		cfg.StateDir = t.TempDir() // ignored by a dry run
	}))
	if !rep.DryRun || rep.ShardsCorrupt != 1 || rep.ShardsMissing != 1 || rep.ShardsRebuilt != 0 ||
		rep.BucketsRepaired != 0 || rep.StagedAborted != 0 || rep.RedundancyAfter[4] != 1 {
		t.Errorf("report = %+v", rep)
	}
	if h, _ := c.byID[c.holder("bk", "k", 4)].c.Health(context.Background()); h.Objects != 0 {
		t.Error("dry run wrote to the wiped node")
	}
}

// TestResume interrupts a pass in its walk and checks that the next Run
// resumes from the checkpoint and ends with the same report as a pass
// that ran through.
func TestResume(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	const objects = 40
	for i := range objects {
		c.put("bk", fmt.Sprintf("k%02d", i), testData(1000+i, uint64(i)))
	}
	m := c.put("bk", "k99", testData(5000, 99))
	c.flip(m, 1, 0)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	s := c.scrubber(func(cfg *Config) {
		cfg.StateDir = dir
		cfg.Concurrency = 1
		cfg.Progress = func(p Progress) {
			if p.Phase == PhaseWalk && p.Objects >= 20 {
				cancel()
			}
		}
	})
	rep, err := s.Run(ctx)
	if err == nil || rep.Objects >= objects {
		t.Fatalf("interrupted Run = %+v, %v", rep, err)
	}
	s.Close()

	s = c.scrubber(func(cfg *Config) { cfg.StateDir = dir })
	rep = mustRun(t, s)
	if rep.Resumed != 1 || rep.ResumedFrom == nil || rep.ResumedFrom.Phase != PhaseWalk || rep.ResumedFrom.Key == "" {
		t.Errorf("resumed report = %+v", rep)
	}
	if rep.Objects != objects+1 || rep.RunObjects >= objects || rep.ShardsVerified != 6*(objects+1) ||
		rep.ShardsCorrupt != 1 || rep.ShardsRebuilt != 1 || rep.RedundancyAfter[6] != objects+1 {
		t.Errorf("resumed report = %+v", rep)
	}
	// The pass is done: the next one starts afresh.
	rep = mustRun(t, s)
	if rep.Resumed != 0 || rep.RunObjects != objects+1 {
		t.Errorf("next pass = %+v", rep)
	}
	if _, err := s.Run(ctx); err == nil {
		t.Error("Run with a cancelled ctx succeeded")
	}
}

func TestUnreachableNode(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	c.put("bk", "k", testData(9000, 1))
	defer c.down("n4")()
	rep := mustRun(t, c.scrubber(nil))
	if rep.IncompleteCount == 0 || rep.UnrecoverableCount != 0 || rep.Healthy() {
		t.Errorf("report with a node down = %+v", rep)
	}
}

// TestHungNode: a node that answers nothing is skipped after a few
// timeouts instead of being waited for on every object.
func TestHungNode(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	const objects = 30
	for i := range objects {
		c.put("bk", fmt.Sprint("k", i), testData(100, uint64(i)))
	}
	var calls atomic.Int64
	defer c.hang("n2", &calls)()
	rep := mustRun(t, c.scrubber(func(cfg *Config) { cfg.CallTimeout = 200 * time.Millisecond }))
	if rep.UnrecoverableCount != 0 || rep.IncompleteCount == 0 || rep.Objects != 0 {
		t.Errorf("report = %+v", rep)
	}
	// Without the breaker: two stats per object (a retry) and more.
	if n := calls.Load(); n > 2*breakerTrip+2 {
		t.Errorf("the hung node got %d calls", n)
	}
}

func TestLevels(t *testing.T) {
	got := Levels(map[int]int64{6: 10, 5: 2, 3: 1, 1: 1, 8: 4}, 4, 6)
	want := []Level{{"above 6", 4}, {"6", 10}, {"5", 2}, {"4", 0}, {"below 4", 2}}
	if !slices.Equal(got, want) {
		t.Errorf("Levels = %+v, want %+v", got, want)
	}
}

func TestNewConfig(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	for _, cfg := range []Config{
		{},
		{Map: &placement.Map{}},
		{Map: c.m, Concurrency: -1},
		{Map: c.m, Rate: -1},
	} {
		if s, err := New(cfg); err == nil {
			s.Close()
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	// One state directory, one scrubber.
	dir := t.TempDir()
	s := c.scrubber(func(cfg *Config) { cfg.StateDir = dir })
	if _, err := New(Config{Map: c.m, StateDir: dir}); err == nil {
		t.Error("two scrubbers opened one state directory")
	}
	s.Close()
}
