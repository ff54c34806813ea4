package scrubber

import (
	"testing"
)

// A writer committed v2 on two nodes and died with it staged on three
// more; then v3 was committed on the sixth node alone (its stages swept):
// v3 was never acknowledged and readers skip it. v2 is the version they
// finish and serve, so the pass must finish it too, not stop at v3.
func TestRollForwardUnderUnacknowledgedVersion(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	c.put("bk", "k", testData(20000, 1))
	v2 := c.write("bk", "k", testData(20000, 2), func(i int) bool { return i < 5 }, func(i int) bool { return i < 2 })
	v3 := c.write("bk", "k", testData(20000, 3), func(i int) bool { return i == 5 }, nil)
	rep := mustRun(t, c.scrubber(nil))
	if rep.RolledForward != 3 || rep.Unacknowledged != 1 || rep.UnrecoverableCount != 0 {
		t.Errorf("report = %+v, want 3 shards rolled forward and v3 unacknowledged", rep)
	}
	placed := c.m.PlaceKey("bk", "k")
	held := c.stat("bk", "k")
	for i, n := range placed {
		want := v2.Version
		if i == 5 {
			want = v3.Version
		}
		if r := held[n.ID]; r == nil || r.Version != want {
			t.Errorf("shard %d's node %s holds %+v, want version %s", i, n.ID, r, want)
		}
	}
}

// A delete marker committed on one node only (below the write quorum)
// over a readable version: readers serve the version on every path, so
// the pass leaves the marker where it is and counts it unacknowledged,
// rather than spread it and change what readers answer.
func TestUnacknowledgedMarkerLeftAsReadersSeeIt(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	m := c.put("bk", "k", testData(20000, 1))
	c.del("bk", "k", func(i int) bool { return i == 4 })
	rep := mustRun(t, c.scrubber(nil))
	if rep.Unacknowledged != 1 || rep.MarkersRepaired != 0 || rep.Markers != 0 {
		t.Errorf("report = %+v, want the marker unacknowledged and left alone", rep)
	}
	placed := c.m.PlaceKey("bk", "k")
	held := c.stat("bk", "k")
	for i, n := range placed {
		if r := held[n.ID]; i != 4 && (r == nil || r.Version != m.Version) {
			t.Errorf("shard %d's node %s holds %+v, want version %s", i, n.ID, r, m.Version)
		}
	}
}
