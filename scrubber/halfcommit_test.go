package scrubber

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/storagenode"
)

// TestHalfCommittedOverwriteStaysReadable: a writer stages v2 of an
// acknowledged key on all six nodes, commits it on three and dies. Long
// after every grace, each node sweeps and a scrubber pass runs (its clock
// past the staging grace too): the key must read back as v2 or v1, byte
// for byte, and the pass must have done something about the half-done
// commit rather than call the key healthy or unacknowledged.
func TestHalfCommittedOverwriteStaysReadable(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	v1 := testData(30000, 1)
	c.put("bk", "k", v1)
	v2 := testData(30000, 2)
	c.write("bk", "k", v2, nil, func(i int) bool { return i < 3 })

	later := time.Now().Add(storagenode.DefaultStagingGrace + storagenode.DefaultSupersededGrace + time.Hour)
	for _, tn := range c.nodes {
		if _, err := tn.Storage().Sweep(context.Background(), later); err != nil {
			t.Fatalf("Sweep on %s: %v", tn.id, err)
		}
	}
	rep := mustRun(t, c.scrubber(func(cfg *Config) { cfg.Now = func() time.Time { return later } }))

	got, err := c.read("bk", "k")
	if err != nil {
		t.Fatalf("key unreadable after sweeps and a scrub: %v (report %+v)", err, rep)
	}
	if !bytes.Equal(got, v2) && !bytes.Equal(got, v1) {
		t.Fatalf("key reads back %d bytes matching neither version", len(got))
	}
	if rep.RolledForward == 0 && rep.UnrecoverableCount == 0 {
		t.Errorf("the pass neither rolled the half-committed version forward nor reported it: %+v", rep)
	}
}

// TestUnacknowledgedOverwriteOfLostVersionReported: v2 of a key is
// committed on three nodes and its staged shards elsewhere are gone (its
// writer staged only there, say, and those nodes were wiped), so it can
// neither be read nor rolled forward and readers fall back to v1. But v1
// lost its shards on those three nodes to the overwrite: three are left,
// fewer than d. The pass must report the key, not count it as an
// unacknowledged write that readers simply skip.
func TestUnacknowledgedOverwriteOfLostVersionReported(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	c.put("bk", "k", testData(30000, 1))
	first3 := func(i int) bool { return i < 3 }
	c.write("bk", "k", testData(30000, 2), first3, first3)
	rep := mustRun(t, c.scrubber(nil))
	if rep.UnrecoverableCount != 1 || rep.Unacknowledged != 0 {
		t.Errorf("report = unrecoverable %d %v, unacknowledged %d; want the key reported unrecoverable",
			rep.UnrecoverableCount, rep.Unrecoverable, rep.Unacknowledged)
	}
}

// TestUnderwrittenOverwriteOfLostVersionHeld: as above, but v2 was staged
// on five nodes (the stage to the sixth failed, so v2 names no node for
// that shard), and the two nodes holding it only staged were then wiped.
// The nodes that committed v2 hold v1's shards for their underwritten
// hold and report them, so v1 is readable: the pass counts v2 as
// unacknowledged, reports nothing unrecoverable, and rebuilds nothing
// (v1's missing shards would go to nodes whose committed version is
// newer), the same on a second pass.
func TestUnderwrittenOverwriteOfLostVersionHeld(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	c.reconfigure(func(cfg *storagenode.Config) { cfg.UnderwrittenHold = storagenode.DefaultUnderwrittenHold })
	c.put("bk", "k", testData(30000, 1))
	c.underwrite("bk", "k", testData(30000, 2), func(i int) bool { return i < 5 }, func(i int) bool { return i < 3 })
	c.wipe(c.holder("bk", "k", 3))
	c.wipe(c.holder("bk", "k", 4))
	c.createBucket("bk")
	for pass := range 2 {
		rep := mustRun(t, c.scrubber(nil))
		if rep.UnrecoverableCount != 0 || rep.Unacknowledged != 1 || rep.ShardsRebuilt != 0 || rep.RepairsFailed != 0 {
			t.Errorf("pass %d: unrecoverable %d %v, unacknowledged %d, rebuilt %d, failed %d; want v2 unacknowledged only",
				pass, rep.UnrecoverableCount, rep.Unrecoverable, rep.Unacknowledged, rep.ShardsRebuilt, rep.RepairsFailed)
		}
	}
}
