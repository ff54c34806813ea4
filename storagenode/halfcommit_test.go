package storagenode

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestSweepKeepsStagedVersionNewerThanCommitted: Sweep, long past the
// staging grace, keeps a staged shard whose version is newer than the
// key's committed one here (or of a key with none), since another node may
// have committed that version, and removes one that the committed version
// here supersedes, which no commit can take any more.
func TestSweepKeepsStagedVersionNewerThanCommitted(t *testing.T) {
	tn := startNode(t, "", func(c *Config) { c.StagingGrace = time.Hour })
	ctx := context.Background()
	o := encode(t, 9000, 21)
	tn.put(t, "bk", "k", ver(2), o, 0)
	for _, s := range []struct {
		key, version string
	}{{"k", ver(1)}, {"k", ver(3)}, {"fresh", ver(1)}} {
		if _, err := tn.c.Stage(ctx, "bk", s.key, s.version, 1, testBlock, bytes.NewReader(o.shards[1])); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := tn.Sweep(ctx, time.Now().Add(48*time.Hour))
	if err != nil || removed != 1 {
		t.Errorf("Sweep = %d, %v; want 1 (the staged version older than the committed one)", removed, err)
	}
	_, staged, err := tn.db.Key("bk", "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(staged) != 1 || staged[0].Version != ver(3) {
		t.Errorf("k staged after sweep = %+v, want only version 3", staged)
	}
	if ks, err := tn.c.Stat(ctx, "bk", "fresh"); err != nil || len(ks.Staged) != 1 {
		t.Errorf("fresh after sweep = %+v, %v; want its staged shard kept", ks, err)
	}
	// Once committed, the kept shard serves its version.
	m := o.meta("bk", "k", ver(3))
	if rec, err := tn.c.Commit(ctx, m); err != nil || rec.Version != ver(3) {
		t.Fatalf("Commit of the kept shard = %+v, %v", rec, err)
	}
	if got := tn.readAll(t, "bk", "k", ver(3), 1); !bytes.Equal(got, o.shards[1]) {
		t.Error("rolled-forward shard differs")
	}
}
