package storagenode

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// inlineMax keeps shards of up to two frames at testBlock inline.
const inlineMax = 2 * (codec.DigestSize + testBlock)

func startInlineNode(t *testing.T, dir string, edit func(*Config)) *testNode {
	t.Helper()
	return startNode(t, dir, func(c *Config) {
		c.InlineMax = inlineMax
		if edit != nil {
			edit(c)
		}
	})
}

// blob returns the inline file rel, failing the test if there is none.
func (tn *testNode) blob(t *testing.T, rel string) []byte {
	t.Helper()
	b, ok, err := tn.db.Blob(rel)
	if err != nil || !ok {
		t.Fatalf("inline file %s: ok=%v err=%v", rel, ok, err)
	}
	return b
}

func (tn *testNode) hasBlob(t *testing.T, rel string) bool {
	t.Helper()
	ok, err := tn.db.HasBlob(rel)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestInlineThreshold: a shard stream up to InlineMax bytes stays in the
// index, staged and committed, with no file; one byte more is a file. Both
// read back exact, also after a restart.
func TestInlineThreshold(t *testing.T) {
	dir := t.TempDir()
	tn := startInlineNode(t, dir, nil)
	// A 2-stripe object has 2-frame shards: exactly inlineMax when both
	// stripes are full; a 3-stripe one is over.
	small := encode(t, 2*4*testBlock, 61)
	large := encode(t, 2*4*testBlock+1, 62)
	if got := len(small.shards[2]); got != inlineMax {
		t.Fatalf("small shard = %d bytes, want %d", got, inlineMax)
	}
	tn.put(t, "bk", "small", ver(1), small, 2)
	tn.put(t, "bk", "large", ver(1), large, 2)

	if got := files(t, dir, stagingDir); len(got) != 0 {
		t.Errorf("staging files left: %v", got)
	}
	want := []string{shardFile("bk", "large", ver(1), 2)}
	if got := files(t, dir, shardsDir); !slices.Equal(got, want) {
		t.Errorf("shard files = %v, want only the large one %v", got, want)
	}
	if !bytes.Equal(tn.blob(t, shardFile("bk", "small", ver(1), 2)), small.shards[2]) {
		t.Error("inline shard holds different bytes")
	}
	if tn.hasBlob(t, shardFile("bk", "large", ver(1), 2)) {
		t.Error("large shard also inline")
	}
	check := func(tn *testNode) {
		t.Helper()
		if got := tn.readAll(t, "bk", "small", ver(1)); !bytes.Equal(got, small.shards[2]) {
			t.Error("inline shard reads back different bytes")
		}
		if got := tn.readAll(t, "bk", "large", ver(1)); !bytes.Equal(got, large.shards[2]) {
			t.Error("file shard reads back different bytes")
		}
		// A range inside the inline shard.
		rc, err := tn.c.ReadShard(context.Background(), "bk", "small", ver(1), 10, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		got.ReadFrom(rc)
		rc.Close()
		if !bytes.Equal(got.Bytes(), small.shards[2][10:110]) {
			t.Error("inline range reads back different bytes")
		}
	}
	check(tn)
	tn.stop()
	check(startInlineNode(t, dir, nil))
}

// TestInlineStageRejectsBadFrames: a damaged or cut inline-sized stream
// is refused like a file-sized one, and nothing is recorded.
func TestInlineStageRejectsBadFrames(t *testing.T) {
	tn := startInlineNode(t, "", nil)
	o := encode(t, 4*testBlock, 63)
	ctx := context.Background()
	bad := bytes.Clone(o.shards[0])
	bad[codec.DigestSize+1] ^= 1
	_, err := tn.c.Stage(ctx, "bk", "k", ver(1), 0, testBlock, bytes.NewReader(bad))
	wantKind(t, err, kerr.Corrupt)
	_, err = tn.c.Stage(ctx, "bk", "k", ver(1), 0, testBlock, bytes.NewReader(o.shards[0][:20]))
	wantKind(t, err, kerr.Invalid)
	if ks, err := tn.c.Stat(ctx, "bk", "k"); err != nil || len(ks.Staged) != 0 {
		t.Fatalf("Stat after refused stages = %+v, %v", ks, err)
	}
}

// TestInlineSupersededGrace: an overwritten inline shard stays readable for
// the grace, then Sweep removes it; the new one stays.
func TestInlineSupersededGrace(t *testing.T) {
	tn := startInlineNode(t, "", func(c *Config) { c.SupersededGrace = time.Minute })
	ctx := context.Background()
	o1, o2 := encode(t, 100, 64), encode(t, 200, 65)
	tn.put(t, "bk", "k", ver(1), o1, 1)
	tn.put(t, "bk", "k", ver(2), o2, 1)
	if got := tn.readAll(t, "bk", "k", ver(1)); !bytes.Equal(got, o1.shards[1]) {
		t.Error("superseded inline shard not served within its grace")
	}
	if removed, err := tn.Sweep(ctx, time.Now().Add(time.Minute+time.Second)); err != nil || removed != 1 {
		t.Fatalf("Sweep past grace = %d, %v; want 1", removed, err)
	}
	if tn.hasBlob(t, shardFile("bk", "k", ver(1), 1)) {
		t.Error("superseded inline shard kept past its grace")
	}
	_, err := tn.c.ReadShard(ctx, "bk", "k", ver(1), 0, -1)
	wantKind(t, err, kerr.NotExist)
	if got := tn.readAll(t, "bk", "k", ver(2)); !bytes.Equal(got, o2.shards[1]) {
		t.Error("current inline shard changed by sweep")
	}
}

// TestInlineVerifyQuarantineRepair: rot in an inline shard is found,
// quarantined (reads refuse it), and a rebuilt shard repairs it.
func TestInlineVerifyQuarantineRepair(t *testing.T) {
	tn := startInlineNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 3*testBlock, 66)
	v := ver(1)
	tn.put(t, "bk", "k", v, o, 4)
	ref := client.ShardRef{Bucket: "bk", Key: "k", Version: v}
	if res := verifyOne(t, tn, ref); res.Status != client.VerifyOK {
		t.Fatalf("Verify healthy = %+v", res)
	}
	rel := shardFile("bk", "k", v, 4)
	rotten := bytes.Clone(o.shards[4])
	rotten[len(rotten)-1] ^= 0x40
	if err := tn.db.WriteBlob(rel, rotten); err != nil {
		t.Fatal(err)
	}
	if res := verifyOne(t, tn, ref); res.Status != client.VerifyCorrupt {
		t.Fatalf("Verify rotten = %+v, want corrupt", res)
	}
	if tn.hasBlob(t, rel) {
		t.Error("rotten inline shard still in place")
	}
	_, err := tn.c.ReadShard(ctx, "bk", "k", v, 0, -1)
	wantKind(t, err, kerr.Corrupt)

	if _, err := tn.c.Stage(ctx, "bk", "k", v, 4, testBlock, bytes.NewReader(o.shards[4])); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.c.Commit(ctx, o.meta("bk", "k", v)); err != nil {
		t.Fatal(err)
	}
	if got := tn.readAll(t, "bk", "k", v); !bytes.Equal(got, o.shards[4]) {
		t.Fatal("repaired inline shard reads back different bytes")
	}
	if res := verifyOne(t, tn, ref); res.Status != client.VerifyOK {
		t.Fatalf("Verify repaired = %+v", res)
	}
	// The quarantined bytes go once nothing owes them.
	tn.put(t, "bk", "k", ver(2), o, 4)
	if _, err := tn.sweepQuarantine(ctx); err != nil {
		t.Fatal(err)
	}
	if tn.hasBlob(t, quarantineFile("bk", "k", v, 4)) {
		t.Error("quarantined inline bytes kept after the version was superseded")
	}
}

// TestInlineLostAndRepaired: an inline shard that vanished is reported
// missing and a rebuilt one fills the gap.
func TestInlineLostAndRepaired(t *testing.T) {
	tn := startInlineNode(t, "", nil)
	o := encode(t, 2*testBlock+3, 67)
	v := ver(1)
	tn.put(t, "bk", "k", v, o, 0)
	if ok, err := tn.db.DeleteBlob(shardFile("bk", "k", v, 0)); err != nil || !ok {
		t.Fatalf("DeleteBlob = %v, %v", ok, err)
	}
	if res := verifyOne(t, tn, client.ShardRef{Bucket: "bk", Key: "k", Version: v}); res.Status != client.VerifyMissing {
		t.Fatalf("Verify = %+v, want missing", res)
	}
	tn.put(t, "bk", "k", v, o, 0)
	if got := tn.readAll(t, "bk", "k", v); !bytes.Equal(got, o.shards[0]) {
		t.Fatal("restored inline shard reads back different bytes")
	}
}

// TestInlineSweepAbortDrop: staged inline data goes with an abort or a
// sweep, and a dropped copy's inline shard goes with the drop.
func TestInlineSweepAbortDrop(t *testing.T) {
	tn := startInlineNode(t, "", func(c *Config) { c.StagingGrace = time.Hour })
	ctx := context.Background()
	o := encode(t, 500, 68)
	for _, k := range []string{"aborted", "swept"} {
		if _, err := tn.c.Stage(ctx, "bk", k, ver(1), 3, testBlock, bytes.NewReader(o.shards[3])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tn.c.Abort(ctx, "bk", "aborted", ver(1)); err != nil {
		t.Fatal(err)
	}
	if removed, err := tn.Sweep(ctx, time.Now().Add(2*time.Hour)); err != nil || removed != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", removed, err)
	}
	tn.put(t, "bk", "moved", ver(2), o, 3)
	if dropped, err := tn.c.DropShard(ctx, "bk", "moved", ver(2), 3); err != nil || !dropped {
		t.Fatalf("DropShard = %v, %v", dropped, err)
	}
	if _, err := tn.Sweep(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	var left []string
	err := tn.db.ScanBlobs(func(path string) { left = append(left, path) })
	if err != nil || len(left) != 0 {
		t.Fatalf("inline files left = %v, %v; want none", left, err)
	}
}

// TestStatData: Stat with a limit returns the committed data shard whole
// when it fits, inline or in a file, and nothing for parity shards, larger
// shards, quarantined shards or delete markers.
func TestStatData(t *testing.T) {
	for _, inline := range []bool{false, true} {
		tn := startNode(t, "", func(c *Config) {
			if inline {
				c.InlineMax = inlineMax
			}
		})
		ctx := context.Background()
		o := encode(t, 2*4*testBlock, 69) // 2-frame shards
		size := int64(len(o.shards[0]))
		tn.put(t, "bk", "data", ver(1), o, 1)
		tn.put(t, "bk", "parity", ver(1), o, 4)
		tn.put(t, "bk", "rotten", ver(1), o, 2)
		if _, err := tn.c.Commit(ctx, client.ObjectMeta{Bucket: "bk", Key: "gone", Version: ver(2), Deleted: true}); err != nil {
			t.Fatal(err)
		}
		rel := shardFile("bk", "rotten", ver(1), 2)
		if inline {
			tn.db.WriteBlob(rel, []byte("rot"))
		} else {
			damage(t, tn.abs(rel), func(b []byte) []byte { b[40] ^= 1; return b })
		}
		if res := verifyOne(t, tn, client.ShardRef{Bucket: "bk", Key: "rotten", Version: ver(1)}); res.Status != client.VerifyCorrupt {
			t.Fatalf("verify rotten = %+v", res)
		}
		for _, tc := range []struct {
			key   string
			limit int64
			want  []byte
		}{
			{"data", size, o.shards[1]},
			{"data", size - 1, nil},
			{"data", 0, nil},
			{"parity", size, nil},
			{"rotten", size, nil},
			{"gone", size, nil},
			{"never", size, nil},
		} {
			ks, err := tn.c.StatData(ctx, "bk", tc.key, tc.limit)
			if err != nil {
				t.Fatalf("inline=%v StatData(%s, %d): %v", inline, tc.key, tc.limit, err)
			}
			if !bytes.Equal(ks.Data, tc.want) {
				t.Errorf("inline=%v StatData(%s, %d) = %d bytes, want %d", inline, tc.key, tc.limit, len(ks.Data), len(tc.want))
			}
			if tc.key != "never" && ks.Committed == nil {
				t.Errorf("inline=%v StatData(%s) lost the record", inline, tc.key)
			}
		}
	}
}
