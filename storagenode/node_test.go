package storagenode

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

func TestStageCommitRead(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	for _, size := range []int{0, 1, testBlock - 1, testBlock, testBlock + 1, 4*testBlock + 1, 100_000} {
		o := encode(t, size, uint64(size))
		for _, shard := range []int{0, 5} {
			key := "obj"
			v := ver(size*10 + shard)
			ref, err := tn.c.Stage(ctx, "bk", key, v, shard, testBlock, bytes.NewReader(o.shards[shard]))
			if err != nil {
				t.Fatalf("size %d: Stage: %v", size, err)
			}
			if ref.Version != v || ref.Shard != shard || ref.Root != o.roots[shard].String() || ref.Size != int64(len(o.shards[shard])) {
				t.Fatalf("size %d: StagedRef = %+v, want version %s shard %d root %s size %d", size, ref, v, shard, o.roots[shard], len(o.shards[shard]))
			}
			rec, err := tn.c.Commit(ctx, o.meta("bk", key, v))
			if err != nil {
				t.Fatalf("size %d: Commit: %v", size, err)
			}
			if rec.Version != v || rec.Shard != shard || rec.Size != int64(size) || rec.Deleted {
				t.Fatalf("size %d: Record = %+v", size, rec)
			}
			if got := tn.readAll(t, "bk", key, v, shard); !bytes.Equal(got, o.shards[shard]) {
				t.Fatalf("size %d shard %d: read %d bytes, want the %d staged", size, shard, len(got), len(o.shards[shard]))
			}
		}
	}
	if got := files(t, tn.cfg.Dir, stagingDir); len(got) != 0 {
		t.Errorf("staging files left after commits: %v", got)
	}
	if got := files(t, tn.cfg.Dir, shardsDir); len(got) != 1 {
		t.Errorf("shard files = %v, want only the last version's", got)
	}
}

func TestReadShardRange(t *testing.T) {
	tn := startNode(t, "", nil)
	o := encode(t, 3*4*testBlock+100, 7)
	v := ver(1)
	tn.put(t, "bk", "k", v, o, 1)
	shard := o.shards[1]
	size := int64(len(shard))
	for _, tc := range []struct {
		off, length int64
		want        []byte
	}{
		{0, -1, shard},
		{0, size, shard},
		{0, 1, shard[:1]},
		{testBlock + 32, testBlock + 32, shard[testBlock+32 : 2*(testBlock+32)]},
		{size - 10, -1, shard[size-10:]},
		{size - 10, 100, shard[size-10:]}, // clamped at the end
		{size, -1, []byte{}},
		{size + 100, 5, []byte{}},
		{5, 0, []byte{}},
	} {
		rc, err := tn.c.ReadShard(context.Background(), "bk", "k", v, 1, tc.off, tc.length)
		if err != nil {
			t.Fatalf("ReadShard(%d, %d): %v", tc.off, tc.length, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("ReadShard(%d, %d): reading: %v", tc.off, tc.length, err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("ReadShard(%d, %d) = %d bytes, want %d", tc.off, tc.length, len(got), len(tc.want))
		}
	}
	_, err := tn.c.ReadShard(context.Background(), "bk", "k", v, 1, -1, 5)
	wantKind(t, err, kerr.Invalid)
}

func TestReadShardNotExist(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 1000, 1)
	tn.put(t, "bk", "k", ver(2), o, 0)
	if _, err := tn.c.Commit(ctx, client.ObjectMeta{Bucket: "bk", Key: "gone", Version: ver(3), Deleted: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, key, version string }{
		{"older version", "k", ver(1)},
		{"newer version", "k", ver(3)},
		{"unknown key", "nope", ver(2)},
		{"delete marker", "gone", ver(3)},
	} {
		_, err := tn.c.ReadShard(ctx, "bk", tc.key, tc.version, 0, 0, -1)
		if !kerr.Is(kerr.NotExist, err) {
			t.Errorf("%s: err = %v, want NotExist", tc.name, err)
		}
	}
}

func TestStat(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	ks, err := tn.c.Stat(ctx, "bk", "k")
	if err != nil || ks.Committed != nil || len(ks.Staged) != 0 {
		t.Fatalf("Stat of unseen key = %+v, %v; want empty, nil", ks, err)
	}
	o := encode(t, 5000, 2)
	tn.put(t, "bk", "k", ver(2), o, 3)
	// Staged: one older than the committed version, two shards of a newer one.
	for _, s := range []struct{ v, shard int }{{1, 3}, {5, 4}, {5, 3}} {
		if _, err := tn.c.Stage(ctx, "bk", "k", ver(s.v), s.shard, testBlock, bytes.NewReader(o.shards[s.shard])); err != nil {
			t.Fatal(err)
		}
	}
	ks, err = tn.c.Stat(ctx, "bk", "k")
	if err != nil {
		t.Fatal(err)
	}
	if ks.Committed == nil || ks.Committed.Version != ver(2) || ks.Committed.Shard != 3 || ks.Committed.Roots[3] != o.roots[3].String() {
		t.Fatalf("Committed = %+v", ks.Committed)
	}
	var got []string
	for _, s := range ks.Staged {
		got = append(got, s.Version+"/"+string(rune('0'+s.Shard)))
		if s.Root != o.roots[s.Shard].String() || s.Size != int64(len(o.shards[s.Shard])) || s.Staged.IsZero() {
			t.Errorf("staged %+v: wrong root, size or time", s)
		}
	}
	want := []string{ver(5) + "/3", ver(5) + "/4"}
	if !slices.Equal(got, want) {
		t.Errorf("Staged = %v, want %v", got, want)
	}
}

func TestList(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 100, 3)
	keys := []string{"a", "b/1", "b/2", "b/3", "b/3x", "c"}
	for i, k := range slices.Backward(keys) {
		tn.put(t, "bk", k, ver(i), o, 0)
	}
	tn.put(t, "bk2", "b/2", ver(9), o, 0) // another bucket with a shared prefix
	tn.put(t, "bk", "b/2", ver(10), o, 0) // overwrite: one record, the newest
	if _, err := tn.c.Commit(ctx, client.ObjectMeta{Bucket: "bk", Key: "b/1", Version: ver(11), Deleted: true}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		prefix, after string
		limit         int
		want          []string
		truncated     bool
	}{
		{"", "", 0, keys, false},
		{"", "", 6, keys, false},
		{"", "", 2, []string{"a", "b/1"}, true},
		{"b/", "", 0, []string{"b/1", "b/2", "b/3", "b/3x"}, false},
		{"b/", "b/1", 2, []string{"b/2", "b/3"}, true},
		{"b/", "b/3", 2, []string{"b/3x"}, false},
		{"b/", "a", 1, []string{"b/1"}, true},
		{"b/", "b/3x", 0, nil, false},
		{"", "b/", 0, []string{"b/1", "b/2", "b/3", "b/3x", "c"}, false},
		{"", "c", 0, nil, false},
		{"zz", "", 0, nil, false},
	} {
		page, err := tn.c.List(ctx, "bk", tc.prefix, tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range page.Records {
			got = append(got, r.Key)
		}
		if !slices.Equal(got, tc.want) || page.Truncated != tc.truncated {
			t.Errorf("List(%q, %q, %d) = %q truncated=%v, want %q truncated=%v", tc.prefix, tc.after, tc.limit, got, page.Truncated, tc.want, tc.truncated)
		}
	}
	page, err := tn.c.List(ctx, "bk", "b/", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if r := page.Records[0]; !r.Deleted || r.Version != ver(11) || r.Shard != -1 {
		t.Errorf("b/1 = %+v, want the delete marker", r)
	}
	if r := page.Records[1]; r.Version != ver(10) {
		t.Errorf("b/2 version = %s, want the newest %s", r.Version, ver(10))
	}
}

func TestBuckets(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	if _, err := tn.c.GetBucket(ctx, "photos"); !kerr.Is(kerr.NotExist, err) {
		t.Fatalf("GetBucket of unseen bucket: %v, want NotExist", err)
	}
	put := func(b client.BucketRecord) {
		t.Helper()
		if err := tn.c.PutBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	v2 := client.BucketRecord{Name: "photos", Version: ver(2)}
	put(v2)
	// Older: refused, naming the newer version.
	err := tn.c.PutBucket(ctx, client.BucketRecord{Name: "photos", Version: ver(1), Deleted: true})
	if wantKind(t, err, kerr.Conflict); client.Newer(err) != ver(2) {
		t.Errorf("older bucket record: %v, want a conflict naming %s", err, ver(2))
	}
	put(v2) // equal: no-op success
	if b, err := tn.c.GetBucket(ctx, "photos"); err != nil || b != v2 {
		t.Fatalf("GetBucket = %+v, %v; want %+v", b, err, v2)
	}
	tomb := client.BucketRecord{Name: "photos", Version: ver(3), Deleted: true}
	put(tomb)
	put(client.BucketRecord{Name: "docs", Version: ver(1)})
	put(client.BucketRecord{Name: "zeta", Version: ver(1)})
	bs, err := tn.c.ListBuckets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []client.BucketRecord{{Name: "docs", Version: ver(1)}, tomb, {Name: "zeta", Version: ver(1)}}
	if !slices.Equal(bs, want) {
		t.Errorf("ListBuckets = %+v, want %+v", bs, want)
	}
	wantKind(t, tn.c.PutBucket(ctx, client.BucketRecord{Name: "a/b", Version: ver(1)}), kerr.Invalid)
	wantKind(t, tn.c.PutBucket(ctx, client.BucketRecord{Name: "a", Version: "nope"}), kerr.Invalid)
}

func TestHints(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	h := func(key string, shard int, reason string) client.Hint {
		return client.Hint{Bucket: "bk", Key: key, Version: ver(1), Shard: shard, Reason: reason}
	}
	if err := tn.c.AddHints(ctx, []client.Hint{h("a", 0, "missing"), h("a", 1, "missing"), h("b", 0, "corrupt")}); err != nil {
		t.Fatal(err)
	}
	// The same identity again replaces, it does not add.
	if err := tn.c.AddHints(ctx, []client.Hint{h("a", 0, "corrupt"), h("b", 0, "corrupt")}); err != nil {
		t.Fatal(err)
	}
	hs, err := tn.c.ListHints(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]string{}
	for _, x := range hs {
		byID[x.Key+"/"+string(rune('0'+x.Shard))] = x.Reason
	}
	want := map[string]string{"a/0": "corrupt", "a/1": "missing", "b/0": "corrupt"}
	if len(hs) != 3 || len(byID) != 3 || byID["a/0"] != want["a/0"] || byID["a/1"] != want["a/1"] || byID["b/0"] != want["b/0"] {
		t.Fatalf("ListHints = %+v, want %v", hs, want)
	}
	if hs, err := tn.c.ListHints(ctx, 2); err != nil || len(hs) != 2 {
		t.Fatalf("ListHints(2) = %d hints, %v", len(hs), err)
	}
	if err := tn.c.DeleteHints(ctx, []client.Hint{h("a", 0, ""), h("zzz", 0, "")}); err != nil {
		t.Fatal(err)
	}
	hs, err = tn.c.ListHints(ctx, 0)
	if err != nil || len(hs) != 2 {
		t.Fatalf("after delete: %+v, %v; want 2 hints", hs, err)
	}
	wantKind(t, tn.c.AddHints(ctx, []client.Hint{{Bucket: "bk", Key: "a", Version: "bad"}}), kerr.Invalid)
}

func TestAbort(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 9000, 4)
	for _, shard := range []int{0, 2} {
		if _, err := tn.c.Stage(ctx, "bk", "k", ver(1), shard, testBlock, bytes.NewReader(o.shards[shard])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tn.c.Abort(ctx, "bk", "k", ver(1)); err != nil {
		t.Fatal(err)
	}
	if err := tn.c.Abort(ctx, "bk", "k", ver(1)); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	if ks, err := tn.c.Stat(ctx, "bk", "k"); err != nil || len(ks.Staged) != 0 || ks.Committed != nil {
		t.Fatalf("Stat after abort = %+v, %v", ks, err)
	}
	if got := files(t, tn.cfg.Dir, stagingDir); len(got) != 0 {
		t.Errorf("staging files after abort: %v", got)
	}
	_, err := tn.c.Commit(ctx, o.meta("bk", "k", ver(1)))
	wantKind(t, err, kerr.NotExist)

	// Aborting the committed version leaves it alone.
	tn.put(t, "bk", "k", ver(2), o, 0)
	if err := tn.c.Abort(ctx, "bk", "k", ver(2)); err != nil {
		t.Fatal(err)
	}
	if got := tn.readAll(t, "bk", "k", ver(2), 0); !bytes.Equal(got, o.shards[0]) {
		t.Error("committed shard changed by Abort")
	}
}

// TestCommitOlderIsRefused: a commit of an older version than the node
// holds is a typed conflict naming the newer version, never a success a
// writer could count; the staged shard stays, and commits under a version
// above the newer one, read as that version's.
func TestCommitOlderIsRefused(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	newer, older := encode(t, 3000, 5), encode(t, 3000, 6)
	tn.put(t, "bk", "k", ver(2), newer, 1)
	ref, err := tn.c.Stage(ctx, "bk", "k", ver(1), 1, testBlock, bytes.NewReader(older.shards[1]))
	if err != nil {
		t.Fatal(err)
	}
	if ref.Newest != ver(2) {
		t.Errorf("stage answered newest %q, want the committed %s", ref.Newest, ver(2))
	}
	_, err = tn.c.Commit(ctx, older.meta("bk", "k", ver(1)))
	wantKind(t, err, kerr.Conflict)
	if got := client.Newer(err); got != ver(2) {
		t.Errorf("conflict names %q, want %s", got, ver(2))
	}
	if got := tn.readAll(t, "bk", "k", ver(2), 1); !bytes.Equal(got, newer.shards[1]) {
		t.Error("newer version's bytes changed")
	}
	_, err = tn.c.ReadShard(ctx, "bk", "k", ver(1), 1, 0, -1)
	wantKind(t, err, kerr.NotExist)
	// An older delete marker is refused too.
	_, err = tn.c.Commit(ctx, client.ObjectMeta{Bucket: "bk", Key: "k", Version: ver(1), Deleted: true})
	wantKind(t, err, kerr.Conflict)

	// The refused shard commits under a version above the newer one.
	m := older.meta("bk", "k", ver(3))
	m.Staged = ver(1)
	rec, err := tn.c.Commit(ctx, m)
	if err != nil || rec.Version != ver(3) || rec.Shard != 1 || rec.Staged != ver(1) {
		t.Fatalf("Commit under a newer version = %+v, %v", rec, err)
	}
	if got := tn.readAll(t, "bk", "k", ver(3), 1); !bytes.Equal(got, older.shards[1]) {
		t.Error("re-bound shard's bytes differ")
	}
	if again, err := tn.c.Commit(ctx, m); err != nil || again.Version != ver(3) {
		t.Errorf("retried commit = %+v, %v", again, err)
	}
	if got := files(t, tn.cfg.Dir, stagingDir); len(got) != 0 {
		t.Errorf("staged file kept: %v", got)
	}
	want := []string{shardFile("bk", "k", ver(3), 1)}
	if got := files(t, tn.cfg.Dir, shardsDir); !slices.Equal(got, want) && tn.cfg.SupersededGrace == 0 {
		t.Errorf("shard files = %v, want %v", got, want)
	}
}

func TestCommitIdempotent(t *testing.T) {
	tn := startNode(t, "", nil)
	o := encode(t, 3000, 5)
	first := tn.put(t, "bk", "k", ver(1), o, 2)
	again, err := tn.c.Commit(context.Background(), o.meta("bk", "k", ver(1)))
	if err != nil {
		t.Fatalf("second Commit: %v", err)
	}
	if again.Version != first.Version || again.Shard != first.Shard || !slices.Equal(again.Roots, first.Roots) {
		t.Errorf("second Commit = %+v, want %+v", again, first)
	}
	// Staging the committed version again and committing keeps its shard.
	tn.put(t, "bk", "k", ver(1), o, 2)
	if got := tn.readAll(t, "bk", "k", ver(1), 2); !bytes.Equal(got, o.shards[2]) {
		t.Error("shard changed by re-commit")
	}
	if got := files(t, tn.cfg.Dir, stagingDir); len(got) != 0 {
		t.Errorf("staging files: %v", got)
	}
}

func TestCommitRootMismatch(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o, other := encode(t, 3000, 5), encode(t, 3000, 6)
	if _, err := tn.c.Stage(ctx, "bk", "k", ver(1), 0, testBlock, bytes.NewReader(o.shards[0])); err != nil {
		t.Fatal(err)
	}
	_, err := tn.c.Commit(ctx, other.meta("bk", "k", ver(1)))
	wantKind(t, err, kerr.Corrupt)
	if ks, _ := tn.c.Stat(ctx, "bk", "k"); ks.Committed != nil {
		t.Errorf("committed despite root mismatch: %+v", ks.Committed)
	}
}

func TestOverwriteRemovesOldShard(t *testing.T) {
	tn := startNode(t, "", nil)
	o1, o2 := encode(t, 3000, 5), encode(t, 7000, 6)
	tn.put(t, "bk", "k", ver(1), o1, 0)
	old := filepath.Join(tn.cfg.Dir, shardFile("bk", "k", ver(1), 0))
	if !exists(old) {
		t.Fatalf("shard file %s missing after commit", old)
	}
	tn.put(t, "bk", "k", ver(2), o2, 0)
	if exists(old) {
		t.Errorf("superseded shard file %s still there", old)
	}
	want := []string{shardFile("bk", "k", ver(2), 0)}
	if got := files(t, tn.cfg.Dir, shardsDir); !slices.Equal(got, want) {
		t.Errorf("shard files = %v, want %v", got, want)
	}
	// The superseded file was removed at once; Sweep only forgets the note.
	if removed, err := tn.Sweep(context.Background(), timeNow()); err != nil || removed != 0 {
		t.Errorf("Sweep = %d, %v; want 0, nil", removed, err)
	}
}

func TestDeleteMarker(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 3000, 5)
	tn.put(t, "bk", "k", ver(1), o, 4)
	if h, err := tn.c.Health(ctx); err != nil || h.Objects != 1 {
		t.Fatalf("Health = %+v, %v; want 1 object", h, err)
	}
	rec, err := tn.c.Commit(ctx, client.ObjectMeta{Bucket: "bk", Key: "k", Version: ver(2), Deleted: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Deleted || rec.Shard != -1 || rec.Version != ver(2) {
		t.Errorf("marker record = %+v", rec)
	}
	if got := files(t, tn.cfg.Dir, shardsDir); len(got) != 0 {
		t.Errorf("shard files after delete: %v", got)
	}
	_, err = tn.c.ReadShard(ctx, "bk", "k", ver(1), 4, 0, -1)
	wantKind(t, err, kerr.NotExist)
	ks, err := tn.c.Stat(ctx, "bk", "k")
	if err != nil || ks.Committed == nil || !ks.Committed.Deleted {
		t.Errorf("Stat = %+v, %v; want the marker", ks, err)
	}
	if h, err := tn.c.Health(ctx); err != nil || h.Objects != 0 {
		t.Errorf("Health = %+v, %v; want 0 objects", h, err)
	}
	// A version that is not a marker needs a staged shard.
	_, err = tn.c.Commit(ctx, o.meta("bk", "k", ver(3)))
	wantKind(t, err, kerr.NotExist)
	// A marker can be overwritten by a new version.
	tn.put(t, "bk", "k", ver(4), o, 4)
	if h, _ := tn.c.Health(ctx); h.Objects != 1 {
		t.Errorf("Objects = %d after re-put, want 1", h.Objects)
	}
}

func TestHealth(t *testing.T) {
	tn := startNode(t, "", func(c *Config) { c.ID = "n-42" })
	h, err := tn.c.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.ID != "n-42" || h.Objects != 0 || h.DiskTotal == 0 || h.DiskFree > h.DiskTotal {
		t.Errorf("Health = %+v", h)
	}
}

// TestCommitRebindsCommittedShard: a commit of the write the node holds
// (same stage version and shards) under a newer version binds the
// committed shard to it, whether the shard is a file, inline or packed;
// a retried commit succeeds; another write's shards are never re-bound.
func TestCommitRebindsCommittedShard(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"file", nil},
		{"file with a superseded grace", func(c *Config) { c.SupersededGrace = time.Minute }},
		{"inline", func(c *Config) { c.InlineMax = 1 << 20 }},
		{"packed", func(c *Config) { c.PackMax = 1 << 20 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := startNode(t, "", tt.edit)
			ctx := context.Background()
			o, other := encode(t, 9000, 7), encode(t, 9000, 8)
			tn.put(t, "bk", "k", ver(1), o, 2)

			// Another write's metadata is not bound to this shard.
			wrong := other.meta("bk", "k", ver(2))
			wrong.Staged = ver(1)
			_, err := tn.c.Commit(ctx, wrong)
			wantKind(t, err, kerr.NotExist)

			m := o.meta("bk", "k", ver(3))
			m.Staged = ver(1)
			for range 2 { // the second is a retry
				rec, err := tn.c.Commit(ctx, m)
				if err != nil || rec.Version != ver(3) || rec.Shard != 2 {
					t.Fatalf("Commit under a newer version = %+v, %v", rec, err)
				}
			}
			if got := tn.readAll(t, "bk", "k", ver(3), 2); !bytes.Equal(got, o.shards[2]) {
				t.Error("re-bound shard's bytes differ")
			}
			ks, err := tn.c.Stat(ctx, "bk", "k")
			if err != nil || ks.Committed == nil || ks.Committed.Version != ver(3) || ks.Committed.Staged != ver(1) {
				t.Fatalf("Stat = %+v, %v", ks, err)
			}
			if _, err := tn.Sweep(ctx, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if got := tn.readAll(t, "bk", "k", ver(3), 2); !bytes.Equal(got, o.shards[2]) {
				t.Error("re-bound shard's bytes differ after a sweep")
			}
		})
	}
}
