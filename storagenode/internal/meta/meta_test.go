package meta

import (
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

func openTest(t *testing.T, dir string) *DB {
	t.Helper()
	db, err := Open(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func rec(bucket, key, version string, deleted bool) client.Record {
	r := client.Record{ObjectMeta: client.ObjectMeta{Bucket: bucket, Key: key, Version: version, Deleted: deleted}, Shard: 2}
	if deleted {
		r.Shard = -1
	}
	return r
}

func keysOf(rs []client.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Key)
	}
	return out
}

func TestRecordsAndList(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	if r, err := db.Record("b", "k"); r != nil || err != nil {
		t.Fatalf("Record of nothing = %v, %v", r, err)
	}
	for _, r := range []client.Record{
		rec("b", "a", "V1", false),
		rec("b", "a\x00z", "V1", false), // a NUL in a key sorts before any other byte
		rec("b", "ab", "V1", true),
		rec("b", "b", "V1", false),
		rec("b2", "a", "V1", false), // "b2" must not leak into "b"
		rec("b", "a", "V2", false),  // replaces
	} {
		if err := db.Commit(r, nil, Move{}, Garbage{}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := db.Record("b", "a"); err != nil || r.Version != "V2" || r.Shard != 2 {
		t.Errorf("Record = %+v, %v", r, err)
	}
	for _, tc := range []struct {
		prefix, after string
		limit         int
		want          []string
		truncated     bool
	}{
		{"", "", 10, []string{"a", "a\x00z", "ab", "b"}, false},
		{"", "", 4, []string{"a", "a\x00z", "ab", "b"}, false},
		{"", "", 3, []string{"a", "a\x00z", "ab"}, true},
		{"a", "", 10, []string{"a", "a\x00z", "ab"}, false},
		{"a", "a", 10, []string{"a\x00z", "ab"}, false},
		{"", "a\x00z", 1, []string{"ab"}, true},
		{"b", "a", 10, []string{"b"}, false},
		{"c", "", 10, nil, false},
	} {
		rs, trunc, err := db.List("b", tc.prefix, tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := keysOf(rs); !slices.Equal(got, tc.want) || trunc != tc.truncated {
			t.Errorf("List(%q, %q, %d) = %q %v, want %q %v", tc.prefix, tc.after, tc.limit, got, trunc, tc.want, tc.truncated)
		}
	}
	if got := db.Objects(); got != 4 {
		t.Errorf("Objects = %d, want 4 (a, a\\0z, b in b; a in b2)", got)
	}
	if err := db.Commit(rec("b", "a", "V3", true), nil, Move{}, Garbage{}); err != nil {
		t.Fatal(err)
	}
	if got := db.Objects(); got != 3 {
		t.Errorf("Objects after a delete marker = %d, want 3", got)
	}
	db.Close()
	db = openTest(t, dir)
	if got := db.Objects(); got != 3 {
		t.Errorf("Objects after reopen = %d, want 3", got)
	}
}

// TestObjectCountAcrossCrash: a clean close hands the count to the next
// open; after a crash (badger closed without it) the next open counts
// again rather than trusting a count from before the crash.
func TestObjectCountAcrossCrash(t *testing.T) {
	dir := t.TempDir()
	open := func() *DB {
		db, err := Open(dir, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := open()
	for _, k := range []string{"a", "b", "c"} {
		if err := db.Commit(rec("b", k, "V1", false), nil, Move{}, Garbage{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open()
	if got := db.Objects(); got != 3 {
		t.Fatalf("Objects after a clean close = %d, want 3", got)
	}
	if err := db.Commit(rec("b", "d", "V1", false), nil, Move{}, Garbage{}); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(rec("b", "a", "V2", true), nil, Move{}, Garbage{}); err != nil {
		t.Fatal(err)
	}
	db.db.Close() // a crash: the count is not written
	db = open()
	defer db.Close()
	if got := db.Objects(); got != 3 {
		t.Fatalf("Objects after a crash = %d, want 3 (b, c, d)", got)
	}
}

func TestStagedAndCommit(t *testing.T) {
	db := openTest(t, t.TempDir())
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := func(key, version string, shard int, file string) Staged {
		return Staged{Bucket: "b", Key: key, Version: version, Shard: shard, Root: "r", Size: 10, Staged: now, File: file}
	}
	for _, x := range []Staged{s("k", "V2", 1, "f1"), s("k", "V2", 10, "f2"), s("k", "V3", 1, "f3"), s("other", "V2", 1, "f4")} {
		if prev, err := db.PutStaged(x); err != nil || prev != nil {
			t.Fatalf("PutStaged(%+v) = %v, %v", x, prev, err)
		}
	}
	prev, err := db.PutStaged(s("k", "V2", 1, "f5"))
	if err != nil || prev == nil || prev.File != "f1" {
		t.Fatalf("PutStaged replacing = %+v, %v; want the f1 entry", prev, err)
	}
	staged, err := db.StagedOf("b", "k")
	if err != nil || len(staged) != 3 {
		t.Fatalf("StagedOf = %+v, %v", staged, err)
	}
	var files []string
	for _, x := range staged {
		files = append(files, x.File)
	}
	slices.Sort(files)
	if !slices.Equal(files, []string{"f2", "f3", "f5"}) {
		t.Errorf("staged files = %v", files)
	}
	since := time.Unix(1700000000, 42)
	if err := db.Commit(rec("b", "k", "V2", false), staged[:2], Move{}, Garbage{File: "shards/old.3", Superseded: since}); err != nil {
		t.Fatal(err)
	}
	r, left, err := db.Key("b", "k")
	if err != nil || r == nil || r.Version != "V2" || len(left) != 1 || left[0].File != staged[2].File {
		t.Errorf("Key after commit = %+v %+v, %v", r, left, err)
	}
	all, err := db.AllStaged()
	if err != nil || len(all) != 2 {
		t.Errorf("AllStaged = %+v, %v", all, err)
	}
	if err := db.DeleteStaged(all); err != nil {
		t.Fatal(err)
	}
	if all, _ := db.AllStaged(); len(all) != 0 {
		t.Errorf("AllStaged after delete = %+v", all)
	}
	// A superseded note carries its time and is found by its file prefix;
	// a dropped one (no time) is not.
	if err := db.Commit(rec("b", "j", "V1", true), nil, Move{}, Garbage{File: "shards/dropped.1"}); err != nil {
		t.Fatal(err)
	}
	g, err := db.Garbage("", 10)
	want := []Garbage{{File: "shards/dropped.1"}, {File: "shards/old.3", Superseded: since}}
	if err != nil || len(g) != 2 || g[0] != want[0] || g[1].File != want[1].File || !g[1].Superseded.Equal(since) {
		t.Errorf("Garbage = %+v, %v; want %+v", g, err, want)
	}
	if g, err := db.Garbage("shards/dropped.1", 10); err != nil || len(g) != 1 || g[0].File != "shards/old.3" {
		t.Errorf("Garbage after shards/dropped.1 = %+v, %v", g, err)
	}
	if s, err := db.SupersededFile("shards/old."); err != nil || s == nil || s.File != "shards/old.3" || !s.Superseded.Equal(since) {
		t.Errorf("SupersededFile(shards/old.) = %+v, %v", s, err)
	}
	for _, p := range []string{"shards/dropped.", "shards/new."} {
		if s, err := db.SupersededFile(p); err != nil || s != nil {
			t.Errorf("SupersededFile(%s) = %+v, %v; want nil", p, s, err)
		}
	}
	if err := db.DeleteGarbage([]string{"shards/dropped.1", "shards/old.3"}); err != nil {
		t.Fatal(err)
	}
	if g, _ := db.Garbage("", 10); len(g) != 0 {
		t.Errorf("Garbage after delete = %v", g)
	}
}

func TestBuckets(t *testing.T) {
	db := openTest(t, t.TempDir())
	if _, err := db.Bucket("x"); !kerr.Is(kerr.NotExist, err) {
		t.Fatalf("Bucket of nothing: %v", err)
	}
	for _, tc := range []struct {
		b      client.BucketRecord
		stored bool
	}{
		{client.BucketRecord{Name: "x", Version: "V2"}, true},
		{client.BucketRecord{Name: "x", Version: "V1", Deleted: true}, false},
		{client.BucketRecord{Name: "x", Version: "V2", Deleted: true}, false},
		{client.BucketRecord{Name: "x", Version: "V3", Deleted: true}, true},
		{client.BucketRecord{Name: "a", Version: "V1"}, true},
	} {
		if stored, err := db.PutBucket(tc.b); err != nil || stored != tc.stored {
			t.Errorf("PutBucket(%+v) = %v, %v; want %v", tc.b, stored, err, tc.stored)
		}
	}
	bs, err := db.Buckets()
	want := []client.BucketRecord{{Name: "a", Version: "V1"}, {Name: "x", Version: "V3", Deleted: true}}
	if err != nil || !slices.Equal(bs, want) {
		t.Errorf("Buckets = %+v, %v; want %+v", bs, err, want)
	}
}

func TestHints(t *testing.T) {
	db := openTest(t, t.TempDir())
	var hs []client.Hint
	for i := range 50 {
		hs = append(hs, client.Hint{Bucket: "b", Key: fmt.Sprint("k", i%10), Version: "V1", Shard: i % 5, Reason: fmt.Sprint(i)})
	}
	if err := db.AddHints(hs); err != nil {
		t.Fatal(err)
	}
	// 50 hints over 10 keys x 5 shards with i%10 and i%5: (k, shard) pairs
	// repeat every 10, so 10 distinct identities.
	got, err := db.Hints(1000)
	if err != nil || len(got) != 10 {
		t.Fatalf("Hints = %d, %v; want 10", len(got), err)
	}
	for _, h := range got {
		// The newest of each identity (i in 40..49) replaced the others.
		if h.Reason < "40" {
			t.Errorf("hint %+v was not replaced", h)
		}
	}
	if got, _ := db.Hints(3); len(got) != 3 {
		t.Errorf("Hints(3) = %d", len(got))
	}
	if err := db.DeleteHints(got[:4]); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Hints(1000); len(got) != 6 {
		t.Errorf("after delete: %d hints, want 6", len(got))
	}
}

// TestPrevious: a commit's note with a superseded record makes it the
// key's previous one for as long as the note exists; a note of a later
// commit replaces it, and forgetting an earlier note leaves the later one.
func TestPrevious(t *testing.T) {
	db := openTest(t, t.TempDir())
	since := time.Unix(1700000000, 0)
	prev := func(want string) {
		t.Helper()
		p, err := db.Previous("b", "k")
		switch {
		case err != nil:
			t.Fatal(err)
		case want == "" && p != nil:
			t.Errorf("Previous = %+v, want none", p)
		case want != "" && (p == nil || p.Version != want):
			t.Errorf("Previous = %+v, want version %s", p, want)
		}
	}
	prev("")
	v1, v2 := rec("b", "k", "V1", false), rec("b", "k", "V2", false)
	if err := db.Commit(v2, nil, Move{}, Garbage{File: "shards/v1.0", Superseded: since, Previous: &v1}); err != nil {
		t.Fatal(err)
	}
	prev("V1")
	if err := db.Commit(rec("b", "k", "V3", false), nil, Move{}, Garbage{File: "shards/v2.0", Superseded: since, Previous: &v2}); err != nil {
		t.Fatal(err)
	}
	prev("V2")
	g, err := db.Garbage("", 10)
	if err != nil || len(g) != 2 || g[0].Previous == nil || g[0].Previous.Version != "V1" || !g[0].Superseded.Equal(since) {
		t.Fatalf("Garbage = %+v, %v", g, err)
	}
	// Sweeping the earlier note leaves the later one reported.
	if err := db.DeleteGarbage([]string{g[0].File}); err != nil {
		t.Fatal(err)
	}
	if err := db.ForgetPrevious(g[:1]); err != nil {
		t.Fatal(err)
	}
	prev("V2")
	// A swept note is not reported even before its entry is forgotten.
	if err := db.DeleteGarbage([]string{g[1].File}); err != nil {
		t.Fatal(err)
	}
	prev("")
	if err := db.ForgetPrevious(g[1:]); err != nil {
		t.Fatal(err)
	}
	prev("")
}
