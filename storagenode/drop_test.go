package storagenode

import (
	"bytes"
	"context"
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

func TestDropShard(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 3*testBlock+5, 48)
	tn.put(t, "bk", "moved", ver(2), o, 3)
	tn.put(t, "bk", "kept", ver(2), o, 1)
	if _, err := tn.c.Commit(ctx, client.ObjectMeta{Bucket: "bk", Key: "gone", Version: ver(4), Deleted: true}); err != nil {
		t.Fatal(err)
	}
	// A staged copy of the dropped shard goes with it; a staged shard of
	// another index (the one the node is to hold next) stays.
	for _, i := range []int{3, 0} {
		if _, err := tn.c.Stage(ctx, "bk", "moved", ver(2), i, testBlock, bytes.NewReader(o.shards[i])); err != nil {
			t.Fatal(err)
		}
	}
	if h, _ := tn.c.Health(ctx); h.Objects != 2 {
		t.Fatalf("Objects = %d before drops", h.Objects)
	}
	for _, tc := range []struct {
		key, version string
		shard        int
		dropped      bool
	}{
		{"moved", ver(1), 3, false},  // an older version
		{"moved", ver(3), 3, false},  // a newer one
		{"moved", ver(2), 2, false},  // another shard index
		{"moved", ver(2), -1, false}, // the version has a shard
		{"missing", ver(2), 3, false},
		{"gone", ver(4), 0, false}, // a marker has no shard 0
		{"moved", ver(2), 3, true},
		{"moved", ver(2), 3, false}, // already dropped
		{"gone", ver(4), -1, true},
	} {
		got, err := tn.c.DropShard(ctx, "bk", tc.key, tc.version, tc.shard)
		if err != nil || got != tc.dropped {
			t.Errorf("DropShard(%s, %s, %d) = %v, %v; want %v", tc.key, tc.version, tc.shard, got, err, tc.dropped)
		}
	}
	if ks, err := tn.c.Stat(ctx, "bk", "gone"); err != nil || ks.Committed != nil || len(ks.Staged) != 0 {
		t.Errorf("Stat(gone) after drop = %+v, %v", ks, err)
	}
	ks, err := tn.c.Stat(ctx, "bk", "moved")
	if err != nil || ks.Committed != nil || len(ks.Staged) != 1 || ks.Staged[0].Shard != 0 || ks.Staged[0].Version != ver(2) {
		t.Errorf("Stat(moved) after drop = %+v, %v", ks, err)
	}
	if got := tn.readAll(t, "bk", "kept", ver(2), 1); !bytes.Equal(got, o.shards[1]) {
		t.Error("the other key's shard changed")
	}
	_, err = tn.c.ReadShard(ctx, "bk", "moved", ver(2), 3, 0, -1)
	wantKind(t, err, kerr.NotExist)
	if h, _ := tn.c.Health(ctx); h.Objects != 1 {
		t.Errorf("Objects = %d after drops, want 1", h.Objects)
	}
	// The dropped shard's file and its staged copy are gone at once; the
	// kept key's file is all that is left, and one staged file.
	want := []string{shardFile("bk", "kept", ver(2), 1)}
	if got := files(t, tn.cfg.Dir, shardsDir); len(got) != 1 || got[0] != want[0] {
		t.Errorf("shard files = %v, want %v", got, want)
	}
	if got := files(t, tn.cfg.Dir, stagingDir); len(got) != 1 {
		t.Errorf("staging = %v", got)
	}

	// A commit of the version now installs the staged shard: the node
	// swapped shard 3 for shard 0.
	if rec, err := tn.c.Commit(ctx, o.meta("bk", "moved", ver(2))); err != nil || rec.Shard != 0 || rec.Version != ver(2) {
		t.Errorf("Commit after drop = %+v, %v", rec, err)
	}
	if got := tn.readAll(t, "bk", "moved", ver(2), 0); !bytes.Equal(got, o.shards[0]) {
		t.Error("swapped-in shard reads back different bytes")
	}
	if ok, err := tn.c.DropShard(ctx, "bk", "moved", ver(2), 0); err != nil || !ok {
		t.Errorf("DropShard of the swapped-in shard = %v, %v", ok, err)
	}

	// A quarantined copy is dropped with its quarantine entry.
	tn.put(t, "bk", "rot", ver(5), o, 2)
	damage(t, tn.shardPath("bk", "rot", ver(5), 2), func(b []byte) []byte { b[9] ^= 1; return b })
	if res := verifyOne(t, tn, client.ShardRef{Bucket: "bk", Key: "rot", Version: ver(5), Shard: 2}); res.Status != client.VerifyCorrupt {
		t.Fatalf("Verify = %+v", res)
	}
	if ok, err := tn.c.DropShard(ctx, "bk", "rot", ver(5), 2); err != nil || !ok {
		t.Fatalf("DropShard of a quarantined shard = %v, %v", ok, err)
	}
	if st, err := tn.c.ScrubStatus(ctx); err != nil || st.Quarantined != 0 {
		t.Errorf("quarantine after drop = %+v, %v", st, err)
	}
	if got := files(t, tn.cfg.Dir, quarantineDir); len(got) != 0 {
		t.Errorf("quarantine files after drop = %v", got)
	}

	for _, shard := range []int{-2, client.MaxShards} {
		_, err := tn.c.DropShard(ctx, "bk", "kept", ver(2), shard)
		wantKind(t, err, kerr.Invalid)
	}
	_, err = tn.c.DropShard(ctx, "bk", "kept", "not-a-version", 1)
	wantKind(t, err, kerr.Invalid)
}
