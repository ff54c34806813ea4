package storagenode

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/clock"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// shardPath is the absolute path of a committed shard file.
func (tn *testNode) shardPath(bucket, key, version string, shard int) string {
	return tn.abs(shardFile(bucket, key, version, shard))
}

// damage rewrites a file with f applied to its bytes.
func damage(t *testing.T, path string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(bytes.Clone(b)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func verifyOne(t *testing.T, tn *testNode, ref client.ShardRef) client.VerifyResult {
	t.Helper()
	res, err := tn.c.Verify(context.Background(), []client.ShardRef{ref})
	if err != nil {
		t.Fatalf("Verify(%+v): %v", ref, err)
	}
	return res[0]
}

func TestVerifyDamage(t *testing.T) {
	o := encode(t, 3*4*testBlock+100, 41) // 4 stripes, the last one short
	const shard = 3
	l := codec.Layout{Data: 4, Parity: 2, BlockSize: testBlock, Size: int64(len(o.data))}
	size := int(l.ShardSize())
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte // nil: remove the file
		want   string
	}{
		{"healthy", func(b []byte) []byte { return b }, client.VerifyOK},
		{"block byte", func(b []byte) []byte { b[codec.DigestSize+7] ^= 0x01; return b }, client.VerifyCorrupt},
		{"digest byte", func(b []byte) []byte { b[l.FrameOffset(2)+5] ^= 0x80; return b }, client.VerifyCorrupt},
		{"last block byte", func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }, client.VerifyCorrupt},
		{"truncated", func(b []byte) []byte { return b[:len(b)-10] }, client.VerifyCorrupt},
		{"extended", func(b []byte) []byte { return append(b, 0) }, client.VerifyCorrupt},
		{"frame swapped", func(b []byte) []byte {
			// Both frames verify on their own; only the root catches it.
			f := int(l.FrameOffset(1))
			a, c := bytes.Clone(b[:f]), bytes.Clone(b[f:2*f])
			copy(b, c)
			copy(b[f:], a)
			return b
		}, client.VerifyCorrupt},
		{"removed", nil, client.VerifyMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := startNode(t, "", nil)
			v := ver(1)
			tn.put(t, "bk", "k", v, o, shard)
			path := tn.shardPath("bk", "k", v, shard)
			if tc.damage == nil {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else {
				damage(t, path, tc.damage)
			}
			res := verifyOne(t, tn, client.ShardRef{Bucket: "bk", Key: "k", Version: v, Shard: shard})
			if res.Status != tc.want || res.Shard != shard || res.Version != v {
				t.Fatalf("Verify = %+v, want status %s for shard %d", res, tc.want, shard)
			}
			if tc.want == client.VerifyOK && res.Bytes != int64(size) {
				t.Errorf("Verify hashed %d bytes, want %d", res.Bytes, size)
			}
			st, err := tn.c.ScrubStatus(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			switch tc.want {
			case client.VerifyOK:
				if got := tn.readAll(t, "bk", "k", v, shard); !bytes.Equal(got, o.shards[shard]) {
					t.Error("healthy shard reads back different bytes")
				}
				if st.Corrupt != 0 || st.Quarantined != 0 {
					t.Errorf("status after a healthy verify: %+v", st)
				}
			case client.VerifyMissing:
				if st.Missing != 1 || st.Quarantined != 0 {
					t.Errorf("status = %+v, want 1 missing, none quarantined", st)
				}
			case client.VerifyCorrupt:
				if exists(path) {
					t.Error("corrupt shard file still in place")
				}
				if got := files(t, tn.cfg.Dir, quarantineDir); len(got) != 1 {
					t.Errorf("quarantine holds %v, want one file", got)
				}
				_, err := tn.c.ReadShard(context.Background(), "bk", "k", v, shard, 0, -1)
				wantKind(t, err, kerr.Corrupt)
				if st.Corrupt != 1 || st.Quarantined != 1 || len(st.QuarantinedShards) != 1 ||
					st.QuarantinedShards[0].Shard != shard || st.QuarantinedShards[0].Version != v {
					t.Errorf("status = %+v, want the one quarantined shard", st)
				}
				// Asked again, it stays corrupt without being hashed.
				again := verifyOne(t, tn, client.ShardRef{Bucket: "bk", Key: "k", Version: v, Shard: shard})
				if again.Status != client.VerifyCorrupt || again.Bytes != 0 || !strings.HasPrefix(again.Detail, "quarantined") {
					t.Errorf("second Verify = %+v", again)
				}
				// The record stays: the node still owes the shard.
				ks, err := tn.c.Stat(context.Background(), "bk", "k")
				if err != nil || ks.Committed == nil || ks.Committed.Version != v {
					t.Errorf("Stat after quarantine = %+v, %v", ks, err)
				}
			}
			// The verifier files hints only for what it finds itself.
			if hs, _ := tn.c.ListHints(context.Background(), 0); len(hs) != 0 {
				t.Errorf("Verify call filed hints: %+v", hs)
			}
		})
	}
}

func TestVerifyAbsent(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 1000, 42)
	tn.put(t, "bk", "k", ver(2), o, 1)
	if _, err := tn.c.Commit(ctx, client.ObjectMeta{Bucket: "bk", Key: "m", Version: ver(3), Deleted: true}); err != nil {
		t.Fatal(err)
	}
	refs := []client.ShardRef{
		{Bucket: "bk", Key: "k", Version: ver(1), Shard: 1}, // older than the committed one
		{Bucket: "bk", Key: "k", Version: ver(3), Shard: 1}, // newer
		{Bucket: "bk", Key: "nope", Version: ver(1), Shard: 1},
		{Bucket: "bk", Key: "m", Version: ver(3), Shard: 1}, // a delete marker has no shard
		{Bucket: "bk", Key: "k", Version: ver(2), Shard: 1},
	}
	res, err := tn.c.Verify(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	want := []client.VerifyResult{
		{ShardRef: refs[0], Shard: -1, Status: client.VerifyAbsent, Current: ver(2)},
		{ShardRef: refs[1], Shard: -1, Status: client.VerifyAbsent, Current: ver(2)},
		{ShardRef: refs[2], Shard: -1, Status: client.VerifyAbsent},
		{ShardRef: refs[3], Shard: -1, Status: client.VerifyAbsent, Current: ver(3)},
		{ShardRef: refs[4], Shard: 1, Status: client.VerifyOK, Bytes: int64(len(o.shards[1]))},
	}
	for i := range want {
		if res[i] != want[i] {
			t.Errorf("result %d = %+v, want %+v", i, res[i], want[i])
		}
	}
	_, err = tn.c.Verify(ctx, []client.ShardRef{{Bucket: "bk", Key: "k", Version: "not-a-ulid"}})
	wantKind(t, err, kerr.Invalid)
	_, err = tn.c.Verify(ctx, make([]client.ShardRef, client.MaxVerify+1))
	wantKind(t, err, kerr.TooLarge)
}

func TestRepairQuarantinedShard(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 5*testBlock, 43)
	v := ver(1)
	const shard = 4
	tn.put(t, "bk", "k", v, o, shard)
	damage(t, tn.shardPath("bk", "k", v, shard), func(b []byte) []byte { b[40] ^= 1; return b })
	if res := verifyOne(t, tn, client.ShardRef{Bucket: "bk", Key: "k", Version: v, Shard: shard}); res.Status != client.VerifyCorrupt {
		t.Fatalf("Verify = %+v", res)
	}

	// A staged shard whose root differs from the record is refused.
	other := encode(t, 5*testBlock, 44)
	if _, err := tn.c.Stage(ctx, "bk", "k", v, shard, testBlock, bytes.NewReader(other.shards[shard])); err != nil {
		t.Fatal(err)
	}
	_, err := tn.c.Commit(ctx, o.meta("bk", "k", v))
	wantKind(t, err, kerr.Corrupt)

	// The right bytes repair it in place.
	if _, err := tn.c.Stage(ctx, "bk", "k", v, shard, testBlock, bytes.NewReader(o.shards[shard])); err != nil {
		t.Fatal(err)
	}
	rec, err := tn.c.Commit(ctx, o.meta("bk", "k", v))
	if err != nil || rec.Version != v || rec.Shard != shard {
		t.Fatalf("repair Commit = %+v, %v", rec, err)
	}
	if got := tn.readAll(t, "bk", "k", v, shard); !bytes.Equal(got, o.shards[shard]) {
		t.Fatal("repaired shard reads back different bytes")
	}
	if res := verifyOne(t, tn, client.ShardRef{Bucket: "bk", Key: "k", Version: v, Shard: shard}); res.Status != client.VerifyOK {
		t.Fatalf("Verify after repair = %+v", res)
	}
	st, err := tn.c.ScrubStatus(ctx)
	if err != nil || st.Quarantined != 0 {
		t.Errorf("status after repair = %+v, %v", st, err)
	}
	for _, sub := range []string{quarantineDir, stagingDir} {
		if got := files(t, tn.cfg.Dir, sub); len(got) != 0 {
			t.Errorf("%s after repair: %v", sub, got)
		}
	}
	if h, _ := tn.c.Health(ctx); h.Objects != 1 {
		t.Errorf("Objects = %d after repair, want 1", h.Objects)
	}

	// A healthy shard is never replaced, even by matching bytes: the
	// commit is the usual no-op and drops the staged copy.
	before, _ := os.Stat(tn.shardPath("bk", "k", v, shard))
	if _, err := tn.c.Stage(ctx, "bk", "k", v, shard, testBlock, bytes.NewReader(o.shards[shard])); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.c.Commit(ctx, o.meta("bk", "k", v)); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(tn.shardPath("bk", "k", v, shard))
	if !os.SameFile(before, after) {
		t.Error("a healthy committed shard was replaced")
	}
	if got := files(t, tn.cfg.Dir, stagingDir); len(got) != 0 {
		t.Errorf("staging after no-op commit: %v", got)
	}
}

func TestRepairLostFile(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 2*testBlock+3, 45)
	v := ver(1)
	tn.put(t, "bk", "k", v, o, 0)
	if err := os.Remove(tn.shardPath("bk", "k", v, 0)); err != nil {
		t.Fatal(err)
	}
	// A staged shard of another index does not stand in for the lost one.
	if _, err := tn.c.Stage(ctx, "bk", "k", v, 1, testBlock, bytes.NewReader(o.shards[1])); err != nil {
		t.Fatal(err)
	}
	if rec, err := tn.c.Commit(ctx, o.meta("bk", "k", v)); err != nil || rec.Shard != 0 {
		t.Fatalf("Commit = %+v, %v", rec, err)
	}
	if res := verifyOne(t, tn, client.ShardRef{Bucket: "bk", Key: "k", Version: v, Shard: 0}); res.Status != client.VerifyMissing {
		t.Fatalf("Verify = %+v, want missing", res)
	}
	if _, err := tn.c.Stage(ctx, "bk", "k", v, 0, testBlock, bytes.NewReader(o.shards[0])); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.c.Commit(ctx, o.meta("bk", "k", v)); err != nil {
		t.Fatal(err)
	}
	if got := tn.readAll(t, "bk", "k", v, 0); !bytes.Equal(got, o.shards[0]) {
		t.Fatal("restored shard reads back different bytes")
	}
}

func TestSweepQuarantine(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 3000, 46)
	tn.put(t, "bk", "k", ver(1), o, 2)
	damage(t, tn.shardPath("bk", "k", ver(1), 2), func(b []byte) []byte { b[0] ^= 1; return b })
	verifyOne(t, tn, client.ShardRef{Bucket: "bk", Key: "k", Version: ver(1), Shard: 2})
	// Still owed: a sweep keeps it.
	if _, err := tn.Sweep(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := files(t, tn.cfg.Dir, quarantineDir); len(got) != 1 {
		t.Fatalf("quarantine = %v", got)
	}
	// A newer version supersedes it: the sweep lets it go.
	tn.put(t, "bk", "k", ver(2), o, 2)
	if _, err := tn.Sweep(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := files(t, tn.cfg.Dir, quarantineDir); len(got) != 0 {
		t.Errorf("quarantine after supersede and sweep = %v", got)
	}
	if st, _ := tn.c.ScrubStatus(ctx); st.Quarantined != 0 {
		t.Errorf("Quarantined = %d", st.Quarantined)
	}
}

func TestDropMarker(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 100, 47)
	tn.put(t, "bk", "live", ver(1), o, 0)
	if _, err := tn.c.Commit(ctx, client.ObjectMeta{Bucket: "bk", Key: "gone", Version: ver(2), Deleted: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key, version string
		dropped      bool
	}{
		{"gone", ver(1), false},    // an older version than the marker
		{"gone", ver(3), false},    // a newer one
		{"live", ver(1), false},    // not a marker
		{"missing", ver(2), false}, // nothing at all
		{"gone", ver(2), true},
		{"gone", ver(2), false}, // already dropped
	} {
		got, err := tn.c.DropMarker(ctx, "bk", tc.key, tc.version)
		if err != nil || got != tc.dropped {
			t.Errorf("DropMarker(%s, %s) = %v, %v; want %v", tc.key, tc.version, got, err, tc.dropped)
		}
	}
	if ks, err := tn.c.Stat(ctx, "bk", "gone"); err != nil || ks.Committed != nil {
		t.Errorf("Stat after drop = %+v, %v", ks, err)
	}
	if ks, err := tn.c.Stat(ctx, "bk", "live"); err != nil || ks.Committed == nil || ks.Committed.Version != ver(1) {
		t.Errorf("live key after drops = %+v, %v", ks, err)
	}
	if h, _ := tn.c.Health(ctx); h.Objects != 1 {
		t.Errorf("Objects = %d", h.Objects)
	}
}

func TestListStaged(t *testing.T) {
	clk := clock.NewManual(time.Now())
	tn := startNode(t, "", func(cfg *Config) { cfg.Now = clk.Now })
	ctx := context.Background()
	o := encode(t, 100, 48)
	for i, key := range []string{"b-key", "a-key"} {
		if _, err := tn.c.Stage(ctx, "bk", key, ver(i), i, testBlock, bytes.NewReader(o.shards[i])); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Millisecond) // distinct stage times
	}
	got, err := tn.c.ListStaged(ctx, 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("ListStaged = %+v, %v", got, err)
	}
	for i, key := range []string{"b-key", "a-key"} {
		g := got[i]
		if g.Bucket != "bk" || g.Key != key || g.Version != ver(i) || g.Shard != i || g.Size != int64(len(o.shards[i])) || g.Root != o.roots[i].String() {
			t.Errorf("staged %d = %+v", i, g)
		}
	}
	if got, _ := tn.c.ListStaged(ctx, 1); len(got) != 1 || got[0].Key != "b-key" {
		t.Errorf("ListStaged(1) = %+v, want the oldest", got)
	}
}

func TestScrubConfig(t *testing.T) {
	d := DefaultConfig()
	if d.ScrubRate != DefaultScrubRate || d.ScrubPeriod != DefaultScrubPeriod {
		t.Errorf("DefaultConfig scrub = %d, %v", d.ScrubRate, d.ScrubPeriod)
	}
	for _, c := range []Config{
		{ID: "a", Dir: "d", ScrubRate: -1},
		{ID: "a", Dir: "d", ScrubPeriod: -1},
	} {
		if err := c.Validate(); !kerr.Is(kerr.Invalid, err) {
			t.Errorf("Validate(%+v) = %v, want Invalid", c, err)
		}
	}
	// Off by default in a bare Config: the status says so.
	tn := startNode(t, "", nil)
	st, err := tn.c.ScrubStatus(context.Background())
	if err != nil || st.Rate != 0 || st.Running || st.Pass != 0 || st.PeriodSeconds != DefaultScrubPeriod.Seconds() {
		t.Errorf("status of a node without verifier = %+v, %v", st, err)
	}
}

// benchmarkVerify measures the node's read-and-hash rate for one shard
// (from the page cache), locally and through the Verify call: the ceiling
// of any scrub, which cannot verify faster than its nodes hash.
func benchmarkVerify(b *testing.B, size int, remote bool) {
	tn := startNode(b, "", nil)
	shard := benchShard(b, size)
	ctx := context.Background()
	v := ver(1)
	if _, err := tn.c.Stage(ctx, "bench", "key", v, 0, codec.DefaultBlockSize, bytes.NewReader(shard)); err != nil {
		b.Fatal(err)
	}
	// The root over the frames' digests, as a writer records it.
	l := codec.Layout{Data: 1, BlockSize: codec.DefaultBlockSize, Size: int64(size)}
	var digests []codec.Digest
	for s := range l.Stripes() {
		var d codec.Digest
		copy(d[:], shard[l.FrameOffset(s):])
		digests = append(digests, d)
	}
	m := benchMeta(v, size)
	m.Roots = []string{codec.RootOf(digests).String()}
	if _, err := tn.c.Commit(ctx, m); err != nil {
		b.Fatal(err)
	}
	ref := client.ShardRef{Bucket: "bench", Key: "key", Version: v, Shard: 0}
	b.SetBytes(int64(len(shard)))
	b.ReportAllocs()
	for b.Loop() {
		var res client.VerifyResult
		if remote {
			rs, err := tn.c.Verify(ctx, []client.ShardRef{ref})
			if err != nil {
				b.Fatal(err)
			}
			res = rs[0]
		} else {
			var err error
			if res, err = tn.verify(ctx, ref, nil, false); err != nil {
				b.Fatal(err)
			}
		}
		if res.Status != client.VerifyOK {
			b.Fatalf("Verify = %+v", res)
		}
	}
}

func BenchmarkVerifyLocal64M(b *testing.B) { benchmarkVerify(b, 64<<20, false) }
func BenchmarkVerify256K(b *testing.B)     { benchmarkVerify(b, 256<<10, true) }
func BenchmarkVerify16M(b *testing.B)      { benchmarkVerify(b, 16<<20, true) }
