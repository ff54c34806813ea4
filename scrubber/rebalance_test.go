package scrubber

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/clock"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// addNode starts one more node, known to the cluster's helpers but not in
// its map, and returns its map entry.
func (c *cluster) addNode(id, zone string) placement.Node {
	c.t.Helper()
	entry := c.tc.Add(id, zone)
	c.track(c.tc.Node(id))
	// A node added after the buckets were made learns them from the pass.
	return entry
}

// nextMap returns the cluster's map with edit applied and the next epoch.
func (c *cluster) nextMap(edit func(m *placement.Map)) *placement.Map {
	c.t.Helper()
	m := c.m.WithDefaults()
	edit(m)
	m.Epoch++
	if err := m.Validate(); err != nil {
		c.t.Fatal(err)
	}
	return m.WithDefaults()
}

// shardSize is the framed size of one shard of an object of size bytes.
func (c *cluster) shardSize(size int) int64 {
	cd, err := codec.New(c.m.DataShards, c.m.ParityShards, codec.WithBlockSize(c.m.BlockSize))
	if err != nil {
		c.t.Fatal(err)
	}
	return cd.Layout(int64(size)).ShardSize()
}

// checkPlaced checks that exactly the nodes the cluster's map places the
// key on hold version v, each the shard of its index, byte for byte as
// the encoder made them, with metadata naming those nodes, and that every
// other node holds nothing of the key; and that the object reads back.
func (c *cluster) checkPlaced(key string, v string, data []byte) {
	c.t.Helper()
	ctx := context.Background()
	want := make(map[string]int)
	for i, n := range c.m.PlaceKey("bk", key) {
		want[n.ID] = i
	}
	shards, _ := c.encode(data)
	for id, rec := range c.stat("bk", key) {
		i, ok := want[id]
		switch {
		case !ok && rec != nil:
			c.t.Errorf("%s: node %s, placed on none of its shards, holds %s shard %d", key, id, rec.Version, rec.Shard)
		case !ok:
		case rec == nil || rec.Version != v || rec.Shard != i:
			c.t.Errorf("%s: node %s holds %+v, want version %s shard %d", key, id, rec, v, i)
		default:
			rc, err := c.byID[id].c.ReadShard(ctx, "bk", key, v, i, 0, -1)
			if err != nil {
				c.t.Errorf("%s: reading shard %d on %s: %v", key, i, id, err)
				continue
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, shards[i]) {
				c.t.Errorf("%s: shard %d on %s differs from the encoded one (err %v)", key, i, id, err)
			}
			// Copies the rebalancer wrote name the new placement; the
			// others were written where they are.
			if i >= len(rec.Nodes) || rec.Nodes[i] != id {
				c.t.Errorf("%s: node %s holds metadata naming %v for shard %d", key, id, rec.Nodes, i)
			}
		}
	}
	if got, err := c.read("bk", key); err != nil || !bytes.Equal(got, data) {
		c.t.Errorf("%s: read back %d bytes, err %v; want %d exact bytes", key, len(got), err, len(data))
	}
}

// verifyAll has every node verify every shard the map places on it.
func (c *cluster) verifyAll(keys map[string]string) {
	c.t.Helper()
	for key, v := range keys {
		for i, n := range c.m.PlaceKey("bk", key) {
			rs, err := c.byID[n.ID].c.Verify(context.Background(), []client.ShardRef{{Bucket: "bk", Key: key, Version: v, Shard: i}})
			if err != nil || rs[0].Status != client.VerifyOK || rs[0].Shard != i {
				c.t.Errorf("%s shard %d on %s: verify %+v, %v", key, i, n.ID, rs, err)
			}
		}
	}
}

// TestRebalanceAddNode adds a seventh node to six: one pass moves every
// shard whose slot now names it there (and the knock-on moves), verified,
// drops the old copies, and leaves every object whole, byte for byte.
func TestRebalanceAddNode(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 6, 4, 2)
	const objects = 24
	data := make(map[string][]byte)
	versions := make(map[string]string)
	for i := range objects {
		key := fmt.Sprintf("obj%02d", i)
		data[key] = testData([]int{0, 1, 5000, 4*testBlock + 7, 3 * 4 * testBlock}[i%5], uint64(100+i))
		versions[key] = c.put("bk", key, data[key]).Version
	}
	s := c.scrubber(nil)
	if rep := mustRun(t, s); rep.MovesPlanned != 0 || rep.CopiesDropped != 0 || rep.MapEpoch != 1 || !rep.Healthy() {
		t.Fatalf("pass before the change = %+v", rep)
	}

	old := c.m
	n7 := c.addNode("n7", "z6")
	c.m = c.nextMap(func(m *placement.Map) { m.Nodes = append(m.Nodes, n7) })
	s.SetMap(c.m)
	if got := s.Map().Epoch; got != 2 {
		t.Fatalf("Map().Epoch = %d after SetMap", got)
	}
	var want, wantBytes int64
	for key := range data {
		for _, mv := range placement.Moves(old, c.m, "bk", key) {
			if mv.From.ID == "" || mv.To.ID == "" {
				t.Fatalf("%s: slot %d unfilled in a map", key, mv.Shard)
			}
			want++
			wantBytes += c.shardSize(len(data[key]))
		}
	}
	if want == 0 {
		t.Fatal("adding a node moved nothing")
	}

	// A dry run counts the moves and makes none.
	dry := mustRun(t, c.scrubber(func(cfg *Config) { cfg.Map, cfg.DryRun = c.m, true }))
	if dry.MovesPlanned != want || dry.MovesDone != 0 || dry.CopiesDropped != 0 {
		t.Errorf("dry run = %+v; want %d moves planned", dry, want)
	}
	if h, err := c.byID["n7"].c.Health(context.Background()); err != nil || h.Objects != 0 {
		t.Fatalf("n7 after the dry run: %+v, %v", h, err)
	}

	rep := mustRun(t, s)
	if rep.MovesPlanned != want || rep.MovesDone != want || rep.MovesFailed != 0 || rep.BytesMoved != wantBytes ||
		rep.CopiesDropped != want || rep.MapEpoch != 2 || rep.MapChanged || !rep.Healthy() ||
		!maps.Equal(rep.RedundancyAfter, map[int]int64{6: objects}) || rep.ShardsRebuilt != 0 || rep.Objects != objects {
		t.Errorf("rebalance pass = %+v; want %d moves of %d bytes", rep, want, wantBytes)
	}
	for key, v := range versions {
		c.checkPlaced(key, v, data[key])
	}
	c.verifyAll(versions)
	if h, err := c.byID["n7"].c.Health(context.Background()); err != nil || h.Objects == 0 {
		t.Errorf("n7 health = %+v, %v", h, err)
	}

	// Nothing is left to do.
	rep = mustRun(t, s)
	if rep.MovesPlanned != 0 || rep.CopiesDropped != 0 || rep.MovesDone != 0 || !rep.Healthy() ||
		!maps.Equal(rep.Redundancy, map[int]int64{6: objects}) {
		t.Errorf("pass after the rebalance = %+v", rep)
	}
	if st := s.Stats(); st.ShardsMoved != want || st.CopiesDropped != want || st.BytesMoved != wantBytes || st.MovesInFlight != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// TestRebalanceDrain drains a node: its shards move to the nodes the map
// now names, and it ends holding nothing at all, not even older versions
// or delete markers of keys it no longer serves.
func TestRebalanceDrain(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 7, 4, 2)
	data := make(map[string][]byte)
	versions := make(map[string]string)
	for i := range 16 {
		key := fmt.Sprintf("k%02d", i)
		data[key] = testData(3*testBlock+i, uint64(200+i))
		versions[key] = c.put("bk", key, data[key]).Version
	}
	// A key whose newest version skipped n3 (it has the older one) and a
	// key deleted everywhere.
	const drained = "n3"
	var stale string
	for i := 0; stale == ""; i++ {
		key := fmt.Sprintf("stale%d", i)
		if slices.ContainsFunc(c.m.PlaceKey("bk", key), func(n placement.Node) bool { return n.ID == drained }) {
			stale = key
		}
	}
	c.put("bk", stale, testData(5000, 1))
	data[stale] = testData(6000, 2)
	versions[stale] = c.write("bk", stale, data[stale], func(i int) bool { return c.holder("bk", stale, i) != drained }, nil).Version
	c.put("bk", "gone", testData(100, 3))
	c.del("bk", "gone", nil)
	if h, _ := c.byID[drained].c.Health(context.Background()); h.Objects == 0 {
		t.Fatalf("%s holds nothing before the drain", drained)
	}

	old := c.m
	c.m = c.nextMap(func(m *placement.Map) {
		for i := range m.Nodes {
			if m.Nodes[i].ID == drained {
				m.Nodes[i].State = placement.StateDraining
			}
		}
	})
	var want int64
	for key := range versions {
		for _, mv := range placement.Moves(old, c.m, "bk", key) {
			if key != stale || mv.From.ID != drained {
				want++ // stale's shard on n3 was never written: rebuilt
			}
		}
	}
	s := c.scrubber(func(cfg *Config) { cfg.Map = c.m })
	rep := mustRun(t, s)
	if rep.MovesDone != want || rep.MovesPlanned != want || rep.MovesFailed != 0 || rep.ShardsRebuilt != 1 ||
		rep.RepairsFailed != 0 || !rep.Healthy() || rep.RedundancyAfter[6] != int64(len(versions)) {
		t.Errorf("drain pass = %+v; want %d moves and 1 rebuild", rep, want)
	}
	for key, v := range versions {
		c.checkPlaced(key, v, data[key])
	}
	ctx := context.Background()
	dn := c.byID[drained].c
	if h, err := dn.Health(ctx); err != nil || h.Objects != 0 {
		t.Errorf("%s after the drain: %+v, %v", drained, h, err)
	}
	if page, err := dn.List(ctx, "bk", "", "", 100); err != nil || len(page.Records) != 0 {
		t.Errorf("%s still lists %+v, %v", drained, page.Records, err)
	}
	for id, r := range c.stat("bk", "gone") {
		placed := slices.ContainsFunc(c.m.PlaceKey("bk", "gone"), func(n placement.Node) bool { return n.ID == id })
		if placed != (r != nil && r.Deleted) {
			t.Errorf("gone on %s (placed %v): %+v", id, placed, r)
		}
	}
	if rep := mustRun(t, s); rep.MovesPlanned != 0 || rep.CopiesDropped != 0 || !rep.Healthy() {
		t.Errorf("pass after the drain = %+v", rep)
	}
}

// TestRebalanceResume cancels a rebalance in the middle of its moves: a
// new scrubber on the same state resumes the pass, remembers the previous
// map, and finishes with every shard on its node and no copy left over.
func TestRebalanceResume(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 6, 4, 2)
	data := make(map[string][]byte)
	versions := make(map[string]string)
	for i := range 20 {
		key := fmt.Sprintf("r%02d", i)
		data[key] = testData(2*testBlock+i, uint64(300+i))
		versions[key] = c.put("bk", key, data[key]).Version
	}
	dir := t.TempDir()
	old := c.m
	first, err := New(Config{Map: old, StateDir: dir, Concurrency: 2, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	n7 := c.addNode("n7", "z6")
	c.m = c.nextMap(func(m *placement.Map) { m.Nodes = append(m.Nodes, n7) })
	first.SetMap(c.m)
	var want int64
	for key := range data {
		want += int64(len(placement.Moves(old, c.m, "bk", key)))
	}

	ctx, cancel := context.WithCancel(context.Background())
	first.cfg.Progress = func(p Progress) {
		if p.MovesDone >= 3 {
			cancel()
		}
	}
	if _, err := first.Run(ctx); err == nil {
		t.Fatal("cancelled pass returned no error")
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	moved := 0
	for key := range data {
		if c.stat("bk", key)["n7"] != nil {
			moved++
		}
	}
	if moved == 0 || int64(moved) >= want {
		t.Fatalf("%d shards on n7 after the cancel, want some of %d", moved, want)
	}

	// The file still names the old map: the state remembers the newer one.
	second, err := New(Config{Map: old, StateDir: dir, Concurrency: 2, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if second.Map().Epoch != 2 {
		t.Fatalf("resumed scrubber works from epoch %d", second.Map().Epoch)
	}
	rep := mustRun(t, second)
	if rep.Resumed != 1 || rep.MovesPlanned != want || rep.MovesDone > want || rep.MovesFailed != 0 || rep.MapChanged ||
		!rep.Healthy() || rep.RedundancyAfter[6] != int64(len(data)) {
		t.Errorf("resumed pass = %+v; want %d moves planned", rep, want)
	}
	for key, v := range versions {
		c.checkPlaced(key, v, data[key])
	}
	if rep := mustRun(t, second); rep.MovesPlanned != 0 || rep.CopiesDropped != 0 || !rep.Healthy() {
		t.Errorf("pass after the resumed one = %+v", rep)
	}
}

// hookNode lets a test act before a node's stage or shard drop.
type hookNode struct {
	*client.Client
	id      string
	onStage func(id, key string)
	onDrop  func(id, key, version string)
}

func (n *hookNode) Stage(ctx context.Context, bucket, key, version string, shard, block int, body io.Reader) (client.StagedRef, error) {
	if n.onStage != nil {
		n.onStage(n.id, key)
	}
	return n.Client.Stage(ctx, bucket, key, version, shard, block, body)
}

func (n *hookNode) DropShard(ctx context.Context, bucket, key, version string, shard int) (bool, error) {
	if n.onDrop != nil {
		n.onDrop(n.id, key, version)
	}
	return n.Client.DropShard(ctx, bucket, key, version, shard)
}

// TestRebalanceNoClobber lands writes in the middle of moves: on the new
// node while the move stages there, and on the old holder (from a gateway
// still on the old map) just before its copy is dropped. Newest wins
// everywhere: no write is clobbered, and the next pass puts the newest
// versions in place.
func TestRebalanceNoClobber(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 6, 4, 2)
	old := c.m
	n7 := c.addNode("n7", "z6")
	next := c.nextMap(func(m *placement.Map) { m.Nodes = append(m.Nodes, n7) })
	// Two keys with a shard moving to n7.
	var keys []string
	for i := 0; len(keys) < 2; i++ {
		key := fmt.Sprint("key", i)
		if slices.ContainsFunc(placement.Moves(old, next, "bk", key), func(mv placement.Move) bool { return mv.To.ID == "n7" }) {
			keys = append(keys, key)
		}
	}
	atStage, atDrop := keys[0], keys[1]
	for i, key := range keys {
		c.put("bk", key, testData(9000, uint64(i)))
	}
	newer := map[string][]byte{atStage: testData(7000, 10), atDrop: testData(8000, 11)}
	versions := make(map[string]string)
	// The hooks run on the pass's goroutines, one write per key.
	var mu sync.Mutex
	var fired atomic.Int32
	once := func(key string, write func()) {
		mu.Lock()
		defer mu.Unlock()
		if _, done := versions[key]; !done {
			write()
			fired.Add(1)
		}
	}
	s := c.scrubber(func(cfg *Config) {
		cfg.Map = old
		cfg.Dial = func(n placement.Node) client.Node {
			return &hookNode{Client: client.New(n.Addr, nil), id: n.ID,
				onStage: func(id, key string) {
					if key == atStage && id == "n7" {
						// A gateway on the new map overwrites the key.
						once(key, func() {
							c.m = next
							versions[key] = c.put("bk", key, newer[key]).Version
						})
					}
				},
				onDrop: func(id, key, version string) {
					if key == atDrop {
						// A gateway still on the old map overwrites the
						// key, on the node about to drop its old copy.
						once(key, func() {
							c.m = old
							versions[key] = c.put("bk", key, newer[key]).Version
							c.m = next
						})
					}
				},
			}
		}
	})
	s.SetMap(next)
	rep := mustRun(t, s)
	c.m = next
	if fired.Load() != 2 {
		t.Fatalf("%d of the 2 writes happened during moves", fired.Load())
	}
	if rep.Changed != 2 || rep.MovesFailed != 0 || rep.UnrecoverableCount != 0 || rep.RepairsFailed != 0 {
		t.Errorf("pass with writes under the moves = %+v", rep)
	}
	for _, key := range keys {
		if got, err := c.read("bk", key); err != nil || !bytes.Equal(got, newer[key]) {
			t.Errorf("%s: the newer write was lost (err %v)", key, err)
		}
	}
	// The newer writes stand on every node they landed on.
	for key, m := range map[string]*placement.Map{atStage: next, atDrop: old} {
		stat := c.stat("bk", key)
		for _, n := range m.PlaceKey("bk", key) {
			if r := stat[n.ID]; r == nil || r.Version != versions[key] {
				t.Errorf("%s on %s: %+v, want the newer version %s", key, n.ID, r, versions[key])
			}
		}
	}
	// The next pass puts them in place.
	rep = mustRun(t, s)
	if rep.MovesFailed != 0 || !rep.Healthy() || rep.Changed != 0 {
		t.Errorf("pass after = %+v", rep)
	}
	for _, key := range keys {
		c.checkPlaced(key, versions[key], newer[key])
	}
}

// TestRebalanceSwap raises a node's weight in a cluster of as many nodes
// as shards: every object's shards are permuted among the same nodes, so
// no move can go first (each node must give up its shard to take
// another). The cycles are swapped, and every shard ends on its node,
// verified, byte for byte, without a rebuild.
func TestRebalanceSwap(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 6, 4, 2)
	data := make(map[string][]byte)
	versions := make(map[string]string)
	for i := range 8 {
		key := fmt.Sprintf("s%02d", i)
		data[key] = testData(4*testBlock+i, uint64(400+i))
		versions[key] = c.put("bk", key, data[key]).Version
	}
	old := c.m
	c.m = c.nextMap(func(m *placement.Map) { m.Nodes[2].Weight = 3 })
	var want int64
	cycles := 0
	for key := range data {
		mvs := placement.Moves(old, c.m, "bk", key)
		want += int64(len(mvs))
		if len(mvs) > 0 && !slices.ContainsFunc(mvs, func(mv placement.Move) bool {
			return !slices.ContainsFunc(mvs, func(o placement.Move) bool { return o.From.ID == mv.To.ID })
		}) {
			cycles++ // every target gives up a shard: no move can go first
		}
	}
	if cycles == 0 {
		t.Fatal("the weight change made no cycle of moves")
	}
	s := c.scrubber(func(cfg *Config) { cfg.Map = old })
	s.SetMap(c.m)
	rep := mustRun(t, s)
	if rep.MovesPlanned != want || rep.MovesDone != want || rep.MovesFailed != 0 || rep.ShardsRebuilt != 0 ||
		rep.CopiesDropped != want || !rep.Healthy() || rep.RedundancyAfter[6] != int64(len(data)) {
		t.Errorf("swap pass = %+v; want %d moves", rep, want)
	}
	for key, v := range versions {
		c.checkPlaced(key, v, data[key])
	}
	c.verifyAll(versions)
	if rep := mustRun(t, s); rep.MovesPlanned != 0 || rep.CopiesDropped != 0 || !rep.Healthy() {
		t.Errorf("pass after the swaps = %+v", rep)
	}
}

// TestDaemonNewMap gives a running daemon a new map in the middle of a
// pass: the pass is interrupted (not counted failed), resumes under the
// new map, and a whole pass follows at once that leaves every shard on
// the node the new map names.
func TestDaemonNewMap(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 6, 4, 2)
	data := make(map[string][]byte)
	versions := make(map[string]string)
	for i := range 12 {
		key := fmt.Sprintf("d%02d", i)
		data[key] = testData(testBlock+i, uint64(500+i))
		versions[key] = c.put("bk", key, data[key]).Version
	}
	old := c.m
	n7 := c.addNode("n7", "z6")
	next := c.nextMap(func(m *placement.Map) { m.Nodes = append(m.Nodes, n7) })
	clk := clock.NewManual(time.Now())
	var s *Scrubber
	var once sync.Once
	s = c.scrubber(func(cfg *Config) {
		cfg.Map = old
		cfg.StateDir = t.TempDir()
		cfg.Concurrency = 1
		cfg.Now, cfg.After = clk.Now, clk.After
		cfg.Progress = func(p Progress) {
			if p.Phase == PhaseWalk && p.Objects >= 3 {
				once.Do(func() { s.SetMap(next) })
			}
		}
	})
	d := NewDaemon(s, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	// The passes under the new map run back to back; then the daemon
	// waits out its hour.
	clk.BlockUntil(1)
	if st := d.Status(); st.Running || st.LastPass == nil || st.LastPass.MapEpoch != 2 || st.LastPass.MapChanged {
		t.Fatalf("no whole pass under the new map: %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Daemon.Run = %v", err)
	}
	st := s.Stats()
	if st.PassesFailed != 0 || st.PassesOK != 2 || st.MovesFailed != 0 || st.ShardsMoved == 0 {
		t.Errorf("stats = %+v; want the interrupted pass finished under the new map, then one more", st)
	}
	if status := d.Status(); status.MapEpoch != 2 || status.LastError != "" || status.LastPass.MovesPlanned != 0 {
		t.Errorf("status = %+v", status)
	}
	c.m = next
	for key, v := range versions {
		c.checkPlaced(key, v, data[key])
	}
}

// TestRebalanceForcedRemove removes a dead node by force: its shards are
// rebuilt on the nodes the map now names, and where such a node held a
// later shard of the object (the knock-on of the slot it took), that
// shard moves on first to make room.
func TestRebalanceForcedRemove(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 7, 4, 2)
	data := make(map[string][]byte)
	versions := make(map[string]string)
	for i := range 16 {
		key := fmt.Sprintf("f%02d", i)
		data[key] = testData(2*testBlock+i, uint64(600+i))
		versions[key] = c.put("bk", key, data[key]).Version
	}
	const dead = "n5"
	c.wipe(dead)
	old := c.m
	c.m = c.nextMap(func(m *placement.Map) {
		for i := range m.Nodes {
			if m.Nodes[i].ID == dead {
				m.Nodes[i].State = placement.StateRemoved
			}
		}
	})
	var rebuilds, moves int64
	knockOn := false
	for key := range data {
		for _, mv := range placement.Moves(old, c.m, "bk", key) {
			if mv.From.ID == dead {
				rebuilds++
				continue
			}
			moves++
			knockOn = knockOn || slices.ContainsFunc(placement.Moves(old, c.m, "bk", key), func(o placement.Move) bool {
				return o.From.ID == dead && o.To.ID == mv.From.ID
			})
		}
	}
	if !knockOn {
		t.Fatal("no rebuild target held another shard of its object")
	}
	s := c.scrubber(func(cfg *Config) { cfg.Map = old })
	s.SetMap(c.m)
	rep := mustRun(t, s)
	if rep.ShardsRebuilt != rebuilds || rep.RepairsFailed != 0 || rep.MovesDone != moves || rep.MovesFailed != 0 ||
		!rep.Healthy() || rep.RedundancyAfter[6] != int64(len(data)) {
		t.Errorf("pass after the forced removal = %+v; want %d rebuilds and %d moves", rep, rebuilds, moves)
	}
	for key, v := range versions {
		c.checkPlaced(key, v, data[key])
	}
	if rep := mustRun(t, s); rep.MovesPlanned != 0 || rep.ShardsMissing != 0 || !rep.Healthy() {
		t.Errorf("pass after the rebuilds = %+v", rep)
	}
}

// TestRebalanceSwapNeedsParity: with one parity shard, a cycle of three
// or more moves is not swapped (two shards would be in flight at once)
// but reported; a cycle of two is. Nothing is lost either way.
func TestRebalanceSwapNeedsParity(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 4, 3, 1)
	data := make(map[string][]byte)
	versions := make(map[string]string)
	old := c.m
	next := c.nextMap(func(m *placement.Map) { m.Nodes[1].Weight = 4 })
	// With as many nodes as shards the moves permute the nodes: count
	// the moves on cycles of two and on longer ones.
	var swapped, refused int64
	for i := 0; swapped == 0 || refused == 0; i++ {
		if i == 200 {
			t.Fatalf("no keys with both kinds of cycle: %d, %d", swapped, refused)
		}
		key := fmt.Sprintf("p%03d", i)
		to := make(map[string]string)
		for _, mv := range placement.Moves(old, next, "bk", key) {
			to[mv.From.ID] = mv.To.ID
		}
		if len(to) == 0 {
			continue
		}
		seen := make(map[string]bool)
		for from := range to {
			n := int64(0)
			for x := from; !seen[x]; x = to[x] {
				seen[x] = true
				n++
			}
			if n == 2 {
				swapped += n
			} else {
				refused += n
			}
		}
		data[key] = testData(testBlock+i, uint64(700+i))
		versions[key] = c.put("bk", key, data[key]).Version
	}
	s := c.scrubber(func(cfg *Config) { cfg.Map = old })
	s.SetMap(next)
	c.m = next
	rep := mustRun(t, s)
	if rep.MovesDone != swapped || rep.MovesFailed != refused || rep.ShardsRebuilt != 0 || rep.IncompleteCount != refused ||
		rep.UnrecoverableCount != 0 {
		t.Errorf("pass = %+v; want %d moves swapped, %d refused", rep, swapped, refused)
	}
	for key := range data {
		if got, err := c.read("bk", key); err != nil || !bytes.Equal(got, data[key]) {
			t.Errorf("%s: read back err %v", key, err)
		}
		held := 0
		for _, r := range c.stat("bk", key) {
			if r != nil && r.Version == versions[key] {
				held++
			}
		}
		if held != 4 {
			t.Errorf("%s: %d nodes hold it, want 4", key, held)
		}
	}
}
