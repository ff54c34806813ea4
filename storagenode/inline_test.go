package storagenode

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/pack"
)

// inlineMax keeps shards of up to two frames at testBlock inline.
const inlineMax = 2 * (codec.DigestSize + testBlock)

// kinds of shard storage in the index: bytes inline, or a pack location.
var kinds = []string{"inline", "packed"}

// startBlobNode starts a node keeping shards of up to inlineMax bytes in
// the index, inline or packed. Packs are small, so that tests rotate them.
func startBlobNode(t *testing.T, kind, dir string, edit func(*Config)) *testNode {
	t.Helper()
	return startNode(t, dir, func(c *Config) {
		if kind == "packed" {
			c.PackMax, c.PackFileSize = inlineMax, 3*inlineMax
		} else {
			c.InlineMax = inlineMax
		}
		if edit != nil {
			edit(c)
		}
	})
}

// forKinds runs f as a subtest for each kind.
func forKinds(t *testing.T, f func(t *testing.T, kind string)) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) { f(t, kind) })
	}
}

// blob returns the bytes of the index-held shard rel, failing the test if
// there is none or it is not of the kind.
func (tn *testNode) blob(t *testing.T, kind, rel string) []byte {
	t.Helper()
	b, ok, err := tn.db.Blob(rel)
	if err != nil || !ok || b.Packed != (kind == "packed") {
		t.Fatalf("%s file %s: ok=%v packed=%v err=%v", kind, rel, ok, b.Packed, err)
	}
	f, _, err := tn.openData(rel)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// flipByte damages byte i of the index-held shard rel where it lies.
func (tn *testNode) flipByte(t *testing.T, rel string, i int64) {
	t.Helper()
	b, ok, err := tn.db.Blob(rel)
	if err != nil || !ok {
		t.Fatalf("no index-held shard %s: %v", rel, err)
	}
	if !b.Packed {
		b.Data[i] ^= 0x40
		if err := tn.db.WriteBlob(rel, b.Data); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := os.OpenFile(filepath.Join(tn.dir, packsDir, fmt.Sprintf("%08d.pack", b.Loc.Pack)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	one := make([]byte, 1)
	if _, err := f.ReadAt(one, b.Loc.Off+i); err != nil {
		t.Fatal(err)
	}
	one[0] ^= 0x40
	if _, err := f.WriteAt(one, b.Loc.Off+i); err != nil {
		t.Fatal(err)
	}
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
func TestInlineThreshold(t *testing.T) { forKinds(t, testInlineThreshold) }

func testInlineThreshold(t *testing.T, kind string) {
	dir := t.TempDir()
	tn := startBlobNode(t, kind, dir, nil)
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
	if !bytes.Equal(tn.blob(t, kind, shardFile("bk", "small", ver(1), 2)), small.shards[2]) {
		t.Error("inline shard holds different bytes")
	}
	if tn.hasBlob(t, shardFile("bk", "large", ver(1), 2)) {
		t.Error("large shard also inline")
	}
	check := func(tn *testNode) {
		t.Helper()
		if got := tn.readAll(t, "bk", "small", ver(1), 2); !bytes.Equal(got, small.shards[2]) {
			t.Error("inline shard reads back different bytes")
		}
		if got := tn.readAll(t, "bk", "large", ver(1), 2); !bytes.Equal(got, large.shards[2]) {
			t.Error("file shard reads back different bytes")
		}
		// A range inside the inline shard.
		rc, err := tn.c.ReadShard(context.Background(), "bk", "small", ver(1), 2, 10, 100)
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
	check(startBlobNode(t, kind, dir, nil))
}

// TestInlineStageRejectsBadFrames: a damaged or cut inline-sized stream
// is refused like a file-sized one, and nothing is recorded.
func TestInlineStageRejectsBadFrames(t *testing.T) { forKinds(t, testInlineStageRejectsBadFrames) }

func testInlineStageRejectsBadFrames(t *testing.T, kind string) {
	tn := startBlobNode(t, kind, "", nil)
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
func TestInlineSupersededGrace(t *testing.T) { forKinds(t, testInlineSupersededGrace) }

func testInlineSupersededGrace(t *testing.T, kind string) {
	tn := startBlobNode(t, kind, "", func(c *Config) { c.SupersededGrace = time.Minute })
	ctx := context.Background()
	o1, o2 := encode(t, 100, 64), encode(t, 200, 65)
	tn.put(t, "bk", "k", ver(1), o1, 1)
	tn.put(t, "bk", "k", ver(2), o2, 1)
	if got := tn.readAll(t, "bk", "k", ver(1), 1); !bytes.Equal(got, o1.shards[1]) {
		t.Error("superseded inline shard not served within its grace")
	}
	if removed, err := tn.Sweep(ctx, time.Now().Add(time.Minute+time.Second)); err != nil || removed != 1 {
		t.Fatalf("Sweep past grace = %d, %v; want 1", removed, err)
	}
	if tn.hasBlob(t, shardFile("bk", "k", ver(1), 1)) {
		t.Error("superseded inline shard kept past its grace")
	}
	_, err := tn.c.ReadShard(ctx, "bk", "k", ver(1), 1, 0, -1)
	wantKind(t, err, kerr.NotExist)
	if got := tn.readAll(t, "bk", "k", ver(2), 1); !bytes.Equal(got, o2.shards[1]) {
		t.Error("current inline shard changed by sweep")
	}
}

// TestInlineVerifyQuarantineRepair: rot in an inline shard is found,
// quarantined (reads refuse it), and a rebuilt shard repairs it.
func TestInlineVerifyQuarantineRepair(t *testing.T) { forKinds(t, testInlineVerifyQuarantineRepair) }

func testInlineVerifyQuarantineRepair(t *testing.T, kind string) {
	tn := startBlobNode(t, kind, "", nil)
	ctx := context.Background()
	o := encode(t, 3*testBlock, 66)
	v := ver(1)
	tn.put(t, "bk", "k", v, o, 4)
	ref := client.ShardRef{Bucket: "bk", Key: "k", Version: v, Shard: 4}
	if res := verifyOne(t, tn, ref); res.Status != client.VerifyOK {
		t.Fatalf("Verify healthy = %+v", res)
	}
	rel := shardFile("bk", "k", v, 4)
	tn.flipByte(t, rel, int64(len(o.shards[4])-1))
	if res := verifyOne(t, tn, ref); res.Status != client.VerifyCorrupt {
		t.Fatalf("Verify rotten = %+v, want corrupt", res)
	}
	if tn.hasBlob(t, rel) {
		t.Error("rotten inline shard still in place")
	}
	_, err := tn.c.ReadShard(ctx, "bk", "k", v, 4, 0, -1)
	wantKind(t, err, kerr.Corrupt)

	if _, err := tn.c.Stage(ctx, "bk", "k", v, 4, testBlock, bytes.NewReader(o.shards[4])); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.c.Commit(ctx, o.meta("bk", "k", v)); err != nil {
		t.Fatal(err)
	}
	if got := tn.readAll(t, "bk", "k", v, 4); !bytes.Equal(got, o.shards[4]) {
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
func TestInlineLostAndRepaired(t *testing.T) { forKinds(t, testInlineLostAndRepaired) }

func testInlineLostAndRepaired(t *testing.T, kind string) {
	tn := startBlobNode(t, kind, "", nil)
	o := encode(t, 2*testBlock+3, 67)
	v := ver(1)
	tn.put(t, "bk", "k", v, o, 0)
	if ok, err := tn.db.DeleteBlob(shardFile("bk", "k", v, 0)); err != nil || !ok {
		t.Fatalf("DeleteBlob = %v, %v", ok, err)
	}
	if res := verifyOne(t, tn, client.ShardRef{Bucket: "bk", Key: "k", Version: v, Shard: 0}); res.Status != client.VerifyMissing {
		t.Fatalf("Verify = %+v, want missing", res)
	}
	tn.put(t, "bk", "k", v, o, 0)
	if got := tn.readAll(t, "bk", "k", v, 0); !bytes.Equal(got, o.shards[0]) {
		t.Fatal("restored inline shard reads back different bytes")
	}
}

// TestInlineSweepAbortDrop: staged inline data goes with an abort or a
// sweep, and a dropped copy's inline shard goes with the drop.
func TestInlineSweepAbortDrop(t *testing.T) { forKinds(t, testInlineSweepAbortDrop) }

func testInlineSweepAbortDrop(t *testing.T, kind string) {
	tn := startBlobNode(t, kind, "", func(c *Config) { c.StagingGrace = time.Hour })
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
	// A newer version committed here makes the staged one dead: only then
	// may age alone sweep it.
	if _, err := tn.c.Commit(ctx, client.ObjectMeta{Bucket: "bk", Key: "swept", Version: ver(2), Deleted: true}); err != nil {
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
	for _, kind := range []string{"file", "inline", "packed"} {
		inline := kind != "file"
		tn := startBlobNode(t, kind, "", func(c *Config) {
			if !inline {
				c.InlineMax, c.PackMax = 0, 0
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
			tn.flipByte(t, rel, 40)
		} else {
			damage(t, tn.abs(rel), func(b []byte) []byte { b[40] ^= 1; return b })
		}
		if res := verifyOne(t, tn, client.ShardRef{Bucket: "bk", Key: "rotten", Version: ver(1), Shard: 2}); res.Status != client.VerifyCorrupt {
			t.Fatalf("verify rotten = %+v", res)
		}
		for _, tc := range []struct {
			key    string
			limit  int64
			parity bool
			want   []byte
		}{
			{"data", size, false, o.shards[1]},
			{"data", size, true, o.shards[1]},
			{"data", size - 1, false, nil},
			{"data", 0, false, nil},
			{"parity", size, false, nil},
			{"parity", size, true, o.shards[4]},
			{"rotten", size, true, nil},
			{"gone", size, true, nil},
			{"never", size, true, nil},
		} {
			ks, err := tn.c.StatData(ctx, "bk", tc.key, tc.limit, tc.parity)
			if err != nil {
				t.Fatalf("%s StatData(%s, %d, %v): %v", kind, tc.key, tc.limit, tc.parity, err)
			}
			if !bytes.Equal(ks.Data, tc.want) {
				t.Errorf("%s StatData(%s, %d, %v) = %d bytes, want %d", kind, tc.key, tc.limit, tc.parity, len(ks.Data), len(tc.want))
			}
			if tc.key != "never" && ks.Committed == nil {
				t.Errorf("%s StatData(%s) lost the record", kind, tc.key)
			}
		}
	}
}

// TestPackCompaction: once most shards in a pack are overwritten or
// deleted, Sweep copies the live ones to the active pack and removes the
// file; every live shard still reads back exact, also after a restart.
func TestPackCompaction(t *testing.T) {
	dir := t.TempDir()
	tn := startBlobNode(t, "packed", dir, func(c *Config) { c.SupersededGrace, c.PackFileSize = 0, 10_000 })
	ctx := context.Background()
	const keys = 12
	objs := make([]object, keys)
	for i := range keys {
		objs[i] = encode(t, 4*testBlock+i, uint64(70+i))
		tn.put(t, "bk", fmt.Sprint("k", i), ver(1), objs[i], 0)
	}
	packsBefore := len(tn.packs.Packs())
	if packsBefore < 4 {
		t.Fatalf("%d packs for %d shards of ~%d bytes, want rotation", packsBefore, keys, inlineMax/2)
	}
	// Overwrite two in three keys, delete one in six: most packed bytes
	// of the first packs are now garbage.
	for i := range keys {
		switch {
		case i%6 == 5:
			if _, err := tn.c.Commit(ctx, client.ObjectMeta{Bucket: "bk", Key: fmt.Sprint("k", i), Version: ver(3), Deleted: true}); err != nil {
				t.Fatal(err)
			}
		case i%3 != 0:
			objs[i] = encode(t, 3*testBlock+i, uint64(90+i))
			tn.put(t, "bk", fmt.Sprint("k", i), ver(2), objs[i], 0)
		}
	}
	if _, err := tn.Sweep(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	live := map[uint32]int64{}
	if err := tn.db.ScanPacked(func(_ string, loc pack.Loc) { live[loc.Pack] += loc.Len }); err != nil {
		t.Fatal(err)
	}
	packsAfter := tn.packs.Packs()
	for _, in := range packsAfter {
		if !in.Active && live[in.ID]*2 < in.Size {
			t.Errorf("pack %d left with %d live bytes of %d", in.ID, live[in.ID], in.Size)
		}
	}
	if len(packsAfter) >= packsBefore+3 {
		t.Errorf("%d packs before the overwrites, %d after compaction", packsBefore, len(packsAfter))
	}
	check := func(tn *testNode) {
		t.Helper()
		for i := range keys {
			key := fmt.Sprint("k", i)
			if i%6 == 5 {
				if _, err := tn.c.ReadShard(ctx, "bk", key, ver(1), 0, 0, -1); !kerr.Is(kerr.NotExist, err) {
					t.Errorf("deleted %s: %v", key, err)
				}
				continue
			}
			v := ver(1)
			if i%3 != 0 {
				v = ver(2)
			}
			if got := tn.readAll(t, "bk", key, v, 0); !bytes.Equal(got, objs[i].shards[0]) {
				t.Errorf("%s reads back different bytes after compaction", key)
			}
			if res := verifyOne(t, tn, client.ShardRef{Bucket: "bk", Key: key, Version: v, Shard: 0}); res.Status != client.VerifyOK {
				t.Errorf("verify %s = %+v", key, res)
			}
		}
	}
	check(tn)
	tn.stop()
	check(startBlobNode(t, "packed", dir, nil))
}
