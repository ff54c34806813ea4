package scrubber

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/kintsugi-store/kintsugi/placement"
)

// noMapHandler serves a node but refuses every map pushed to it: a node
// that stays on the old map.
type noMapHandler struct{ h http.Handler }

func (n noMapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut && r.URL.Path == "/v1/map" {
		http.Error(w, "refusing maps for the test", http.StatusConflict)
		return
	}
	n.h.ServeHTTP(w, r)
}

// A moved shard's old copy is dropped only once every node of the key's
// old and new placement holds the new map: until then a gateway still on
// the old map could be served by the nodes of its placement that have not
// heard of the change and find the shard gone. The move itself goes on.
func TestRebalanceKeepsOldCopyUntilEveryNodeHoldsNewEpoch(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 6, 4, 2)
	versions := make(map[string]string)
	data := make(map[string][]byte)
	for i := range 12 {
		key := fmt.Sprintf("obj%02d", i)
		data[key] = testData(3*testBlock+i, uint64(300+i))
		versions[key] = c.put("bk", key, data[key]).Version
	}
	s := c.scrubber(nil)
	mustRun(t, s)

	old := c.m
	n7 := c.addNode("n7", "z6")
	c.m = c.nextMap(func(m *placement.Map) { m.Nodes = append(m.Nodes, n7) })
	var want int64
	for key := range data {
		want += int64(len(placement.Moves(old, c.m, "bk", key)))
	}
	if want == 0 {
		t.Fatal("adding a node moved nothing")
	}
	// n1 is on every key's placement (six nodes, six shards) and cannot
	// be told of the new map.
	restore := c.byID["n1"].Wrap(func(h http.Handler) http.Handler { return noMapHandler{h} })
	s.SetMap(c.m)
	// Moves whose new node holds another shard of the version wait for
	// that one to be dropped, so not all of them happen; none drops.
	first := mustRun(t, s)
	if first.MovesDone == 0 || first.CopiesDropped != 0 {
		t.Fatalf("pass with n1 on the old map: %d moves done, %d copies dropped; want some moves, nothing dropped",
			first.MovesDone, first.CopiesDropped)
	}
	ctx := context.Background()
	for key, v := range versions {
		for _, mv := range placement.Moves(old, c.m, "bk", key) {
			ks, err := c.byID[mv.From.ID].c.Stat(ctx, "bk", key)
			if err != nil || ks.Committed == nil || ks.Committed.Version != v || ks.Committed.Shard != mv.Shard {
				t.Fatalf("%s: old copy of shard %d on %s: %+v, %v; want it kept", key, mv.Shard, mv.From.ID, ks.Committed, err)
			}
		}
	}

	// Once n1 takes the map, the next pass finishes the moves and drops
	// every old copy.
	restore()
	rep := mustRun(t, s)
	if first.MovesDone+rep.MovesDone != want || rep.CopiesDropped != want || !rep.Healthy() {
		t.Fatalf("pass with every node on the new map: %d+%d moves, %d copies dropped, want %d of each: %+v",
			first.MovesDone, rep.MovesDone, rep.CopiesDropped, want, rep)
	}
	for key, v := range versions {
		c.checkPlaced(key, v, data[key])
	}
	if h, err := c.byID["n1"].c.Health(ctx); err != nil || h.Epoch != c.m.Epoch {
		t.Fatalf("n1 health %+v, %v; want map epoch %d", h, err, c.m.Epoch)
	}
}

// A pass working from an older map than the nodes hold is refused by
// them; it installs the map they send and resumes under it, so it never
// moves or drops anything by a placement the cluster has left.
func TestRunUnderOlderMapInstallsNodesMapAndResumes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 6, 4, 2)
	for i := range 4 {
		c.put("bk", fmt.Sprintf("k%d", i), testData(5000+i, uint64(i)))
	}
	s := c.scrubber(nil)
	next := c.nextMap(func(m *placement.Map) {})
	ctx := context.Background()
	for _, tn := range c.nodes {
		if err := tn.c.PutMap(ctx, next); err != nil {
			t.Fatal(err)
		}
	}
	rep := mustRun(t, s)
	if got := s.Map().Epoch; got != next.Epoch {
		t.Fatalf("scrubber map epoch %d after a pass refused by every node, want %d", got, next.Epoch)
	}
	if rep.MapEpoch != next.Epoch || rep.Objects != 4 || !rep.Healthy() {
		t.Fatalf("pass = %+v; want every object checked under epoch %d", rep, next.Epoch)
	}
}
