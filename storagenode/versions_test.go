package storagenode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// putMode is put with the bucket's versioning state as the writer saw it.
func (tn *testNode) putMode(t testing.TB, key, version string, o object, shard int, mode string, versioned bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := tn.c.Stage(ctx, "bk", key, version, shard, testBlock, bytes.NewReader(o.shards[shard])); err != nil {
		t.Fatal(err)
	}
	m := o.meta("bk", key, version)
	m.Versioning, m.VersioningAt, m.Versioned = mode, ver(0), versioned
	if _, err := tn.c.Commit(ctx, m); err != nil {
		t.Fatalf("Commit %s %s: %v", key, version, err)
	}
}

func versionsOf(t testing.TB, tn *testNode, key string) []string {
	t.Helper()
	kv, err := tn.c.KeyVersions(context.Background(), "bk", key)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range kv.Versions {
		out = append(out, r.Version)
	}
	return out
}

// TestVersionsKept: what an overwrite keeps, by the bucket's versioning
// state, and the null version rule of a suspended bucket.
func TestVersionsKept(t *testing.T) {
	o := encode(t, 5000, 1)
	for _, c := range []struct {
		name string
		// the writes: versioning state and whether each is a real version
		modes     []string
		versioned []bool
		want      []int // versions left, newest first
	}{
		{"unversioned", []string{"", "", ""}, []bool{false, false, false}, []int{3}},
		{"enabled", []string{"Enabled", "Enabled", "Enabled"}, []bool{true, true, true}, []int{3, 2, 1}},
		{"null kept when enabled", []string{"", "Enabled", "Enabled"}, []bool{false, true, true}, []int{3, 2, 1}},
		{"suspended replaces null only", []string{"Enabled", "Suspended", "Suspended"}, []bool{true, false, false}, []int{3, 1}},
		{"suspended null under versions", []string{"", "Enabled", "Suspended"}, []bool{false, true, false}, []int{3, 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tn := startNode(t, "", nil)
			for i, mode := range c.modes {
				tn.putMode(t, "k", ver(i+1), o, 1, mode, c.versioned[i])
			}
			var want []string
			for _, v := range c.want {
				want = append(want, ver(v))
			}
			if got := versionsOf(t, tn, "k"); !slices.Equal(got, want) {
				t.Fatalf("versions %v, want %v", got, want)
			}
			// Every kept version stays readable, shard and all.
			for _, v := range want {
				if got := tn.readAll(t, "bk", "k", v, 1); !bytes.Equal(got, o.shards[1]) {
					t.Errorf("version %s: shard not readable", v)
				}
			}
		})
	}
}

// TestVersionsNodeKnowsEnabled: a commit from a writer that has not seen
// Enabled keeps the superseded version all the same on a node whose
// bucket record says Enabled.
func TestVersionsNodeKnowsEnabled(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	if err := tn.c.PutBucket(ctx, client.BucketRecord{Name: "bk", Version: ver(5), Versioning: client.VersioningEnabled}); err != nil {
		t.Fatal(err)
	}
	o := encode(t, 3000, 2)
	// The stage answer tells the writer.
	ref, err := tn.c.Stage(ctx, "bk", "k", ver(10), 0, testBlock, bytes.NewReader(o.shards[0]))
	if err != nil {
		t.Fatal(err)
	}
	if ref.Bucket == nil || ref.Bucket.Versioning != client.VersioningEnabled || ref.Bucket.Version != ver(5) {
		t.Fatalf("stage answer's bucket state %+v", ref.Bucket)
	}
	if _, err := tn.c.Commit(ctx, o.meta("bk", "k", ver(10))); err != nil {
		t.Fatal(err)
	}
	tn.putMode(t, "k", ver(11), o, 0, "", false) // a stale writer
	if got, want := versionsOf(t, tn, "k"), []string{ver(11), ver(10)}; !slices.Equal(got, want) {
		t.Fatalf("versions %v, want %v", got, want)
	}
}

// TestDeleteVersion: deleting the current version makes the previous one
// current; a deleted version is never committed again; Stat names the
// deleted versions newer than the current one; a marker over noncurrent
// versions is never dropped.
func TestDeleteVersion(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o1, o2 := encode(t, 4000, 3), encode(t, 6000, 4)
	tn.putMode(t, "k", ver(1), o1, 2, "Enabled", true)
	tn.putMode(t, "k", ver(2), o2, 2, "Enabled", true)
	marker := client.ObjectMeta{Bucket: "bk", Key: "k", Version: ver(3), Deleted: true, Versioning: "Enabled", VersioningAt: ver(0), Versioned: true}
	if _, err := tn.c.Commit(ctx, marker); err != nil {
		t.Fatal(err)
	}
	if dropped, err := tn.c.DropMarker(ctx, "bk", "k", ver(3)); err != nil || dropped {
		t.Fatalf("DropMarker over noncurrent versions = %v, %v; want kept", dropped, err)
	}

	// Deleting the marker restores version 2.
	cur, err := tn.c.DeleteVersion(ctx, "bk", "k", ver(3))
	if err != nil {
		t.Fatal(err)
	}
	if cur == nil || cur.Version != ver(2) || cur.Deleted {
		t.Fatalf("current after deleting the marker: %+v", cur)
	}
	st, err := tn.c.Stat(ctx, "bk", "k")
	if err != nil {
		t.Fatal(err)
	}
	if st.Committed == nil || st.Committed.Version != ver(2) || !slices.Equal(st.Purged, []string{ver(3)}) {
		t.Fatalf("Stat: committed %+v purged %v", st.Committed, st.Purged)
	}
	if got := tn.readAll(t, "bk", "k", ver(2), 2); !bytes.Equal(got, o2.shards[2]) {
		t.Fatal("restored version's shard differs")
	}
	// The marker cannot come back: not by a late commit, nor a rebuild.
	_, err = tn.c.Commit(ctx, marker)
	wantKind(t, err, kerr.NotExist)
	_, err = tn.c.CommitNoncurrent(ctx, marker)
	wantKind(t, err, kerr.NotExist)

	// Deleting a noncurrent version removes it and its shard.
	if _, err := tn.c.DeleteVersion(ctx, "bk", "k", ver(1)); err != nil {
		t.Fatal(err)
	}
	if got := versionsOf(t, tn, "k"); !slices.Equal(got, []string{ver(2)}) {
		t.Fatalf("versions %v", got)
	}
	_, err = tn.c.ReadShard(ctx, "bk", "k", ver(1), 2, 0, -1)
	wantKind(t, err, kerr.NotExist)

	// And the last one leaves nothing.
	if cur, err := tn.c.DeleteVersion(ctx, "bk", "k", ver(2)); err != nil || cur != nil {
		t.Fatalf("DeleteVersion of the last = %+v, %v", cur, err)
	}
	if got := versionsOf(t, tn, "k"); len(got) != 0 {
		t.Fatalf("versions %v, want none", got)
	}
	if n := tn.db.Objects(); n != 0 {
		t.Errorf("object count %d, want 0", n)
	}
}

// TestDeleteVersionCoversRecode: a version and all its re-codes are one
// object under several names. Once any of them is deleted by id, a late
// commit of any other is refused: a re-code still in flight when a client
// deleted the version must not bring the object back, nor a base or an
// older generation rolled forward after a re-code was deleted.
func TestDeleteVersionCoversRecode(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	gen := func(v string, g int) string {
		for range g {
			v = client.RecodeVersion(v)
		}
		return v
	}
	for i, tc := range []struct{ deleted, other string }{
		{ver(1), gen(ver(1), 1)},
		{gen(ver(2), 1), ver(2)},
		{ver(3), gen(ver(3), 2)},
		{gen(ver(4), 2), gen(ver(4), 1)},
		{gen(ver(5), 1), gen(ver(5), 2)},
		{gen(ver(6), 2), gen(ver(6), client.MaxRecodeGeneration)},
		{gen(ver(7), client.MaxRecodeGeneration), ver(7)},
	} {
		key := fmt.Sprintf("k%d", i)
		o := encode(t, 5000, uint64(10+i))
		tn.putMode(t, key, tc.deleted, o, 1, "", false)
		if _, err := tn.c.DeleteVersion(ctx, "bk", key, tc.deleted); err != nil {
			t.Fatal(err)
		}
		if _, err := tn.c.Stage(ctx, "bk", key, tc.other, 1, testBlock, bytes.NewReader(o.shards[1])); err != nil {
			t.Fatal(err)
		}
		_, err := tn.c.Commit(ctx, o.meta("bk", key, tc.other))
		wantKind(t, err, kerr.NotExist)
		if !errors.Is(err, client.ErrVersionDeleted) {
			t.Errorf("commit of %s after %s was deleted: %v, want ErrVersionDeleted", tc.other, tc.deleted, err)
		}
		if st, err := tn.c.Stat(ctx, "bk", key); err != nil || st.Committed != nil {
			t.Errorf("%s after the refused commit: %+v, %v; want nothing committed", key, st.Committed, err)
		}
	}
	// Another version of the key, above or below, is another object.
	o := encode(t, 5000, 30)
	for _, v := range []string{ver(20), ver(22), client.RecodeVersion(ver(22))} {
		key := "other" + v
		tn.putMode(t, key, ver(21), o, 1, "", false)
		if _, err := tn.c.DeleteVersion(ctx, "bk", key, ver(21)); err != nil {
			t.Fatal(err)
		}
		tn.putMode(t, key, v, o, 1, "", false)
		if st, err := tn.c.Stat(ctx, "bk", key); err != nil || st.Committed == nil || st.Committed.Version != v {
			t.Errorf("%s after %s was deleted: %+v, %v; want %s committed", key, ver(21), st.Committed, err, v)
		}
	}
}

// TestCommitNoncurrent: a rebuilt shard of a noncurrent version goes in as
// noncurrent, under the current version, readable.
func TestCommitNoncurrent(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o1, o2 := encode(t, 4000, 5), encode(t, 6000, 6)
	tn.putMode(t, "k", ver(2), o2, 3, "Enabled", true)
	if _, err := tn.c.Stage(ctx, "bk", "k", ver(1), 3, testBlock, bytes.NewReader(o1.shards[3])); err != nil {
		t.Fatal(err)
	}
	m := o1.meta("bk", "k", ver(1))
	m.Versioning, m.Versioned = "Enabled", true
	// An ordinary commit of an older version is refused...
	_, err := tn.c.Commit(ctx, m)
	wantKind(t, err, kerr.Conflict)
	// ...a rebuild installs it below the current one.
	rec, err := tn.c.CommitNoncurrent(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Shard != 3 {
		t.Fatalf("shard %d", rec.Shard)
	}
	if got, want := versionsOf(t, tn, "k"), []string{ver(2), ver(1)}; !slices.Equal(got, want) {
		t.Fatalf("versions %v, want %v", got, want)
	}
	if got := tn.readAll(t, "bk", "k", ver(1), 3); !bytes.Equal(got, o1.shards[3]) {
		t.Fatal("rebuilt noncurrent shard differs")
	}
}

// TestListVersions: key order, newest first within a key, markers that
// resume inside a key, prefixes.
func TestListVersions(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 1000, 7)
	for i, k := range []string{"a", "b", "a", "c", "b", "a"} {
		tn.putMode(t, k, ver(i+1), o, 0, "Enabled", true)
	}
	type kv struct{ k, v string }
	want := []kv{{"a", ver(6)}, {"a", ver(3)}, {"a", ver(1)}, {"b", ver(5)}, {"b", ver(2)}, {"c", ver(4)}}
	var got []kv
	afterKey, afterVersion := "", ""
	for pages := 0; ; pages++ {
		page, err := tn.c.ListVersions(ctx, "bk", "", afterKey, afterVersion, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			got = append(got, kv{r.Key, r.Version})
		}
		if !page.Truncated || pages > 10 {
			break
		}
		last := page.Records[len(page.Records)-1]
		afterKey, afterVersion = last.Key, last.Version
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	page, err := tn.c.ListVersions(ctx, "bk", "b", "", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 2 || page.Records[0].Version != ver(5) {
		t.Fatalf("prefix b: %+v", page.Records)
	}
	page, err = tn.c.ListVersions(ctx, "bk", "", "a", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 3 || page.Records[0].Key != "b" {
		t.Fatalf("after key a: %d records, first %q", len(page.Records), page.Records[0].Key)
	}
}

// BenchmarkStatVersioned measures Stat, the read path's first call, on a
// key of an unversioned bucket and on one with noncurrent versions and a
// deletion by version (the lookups versioning adds).
func BenchmarkStatVersioned(b *testing.B) {
	tn := startNode(b, "", nil)
	ctx := context.Background()
	o := encode(b, 4096, 9)
	tn.putMode(b, "plain", ver(1), o, 0, "", false)
	for i := range 4 {
		tn.putMode(b, "versioned", ver(10+i), o, 0, client.VersioningEnabled, true)
	}
	if _, err := tn.c.DeleteVersion(ctx, "bk", "versioned", ver(10)); err != nil {
		b.Fatal(err)
	}
	for _, key := range []string{"plain", "versioned"} {
		b.Run(key, func(b *testing.B) {
			for b.Loop() {
				if _, err := tn.c.Stat(ctx, "bk", key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSetTags: a tag update rewrites the tag field of exactly the version
// it names, current or noncurrent, in place (no new version, same
// Modified and ETag); a node keeps the tags of the newest stamp, whatever
// order updates arrive in; a version it does not hold, or a delete marker,
// is refused with NotExist.
func TestSetTags(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o1, o2 := encode(t, 4000, 7), encode(t, 6000, 8)
	tn.putMode(t, "k", ver(1), o1, 0, "Enabled", true)
	tn.putMode(t, "k", ver(2), o2, 0, "Enabled", true)
	before, err := tn.c.KeyVersions(ctx, "bk", "k")
	if err != nil {
		t.Fatal(err)
	}
	tags := func() map[string]string {
		kv, err := tn.c.KeyVersions(ctx, "bk", "k")
		if err != nil {
			t.Fatal(err)
		}
		if len(kv.Versions) != len(before.Versions) {
			t.Fatalf("%d versions after tag updates, want %d", len(kv.Versions), len(before.Versions))
		}
		out := map[string]string{}
		for i, r := range kv.Versions {
			b := before.Versions[i]
			if r.Version != b.Version || !r.Modified.Equal(b.Modified) || r.ETag != b.ETag || r.Shard != b.Shard {
				t.Fatalf("version %s changed beyond its tags: %+v, was %+v", b.Version, r, b)
			}
			out[r.Version] = r.Tagging
		}
		return out
	}
	for _, c := range []struct {
		name    string
		u       client.TagUpdate
		kind    kerr.Kind // 0: accepted
		want    map[string]string
		wantRec string // the tags the answer carries
	}{
		{"current", client.TagUpdate{Version: ver(2), Tagging: "a=1", At: ver(10)}, 0,
			map[string]string{ver(2): "a=1", ver(1): ""}, "a=1"},
		{"noncurrent", client.TagUpdate{Version: ver(1), Tagging: "b=2", At: ver(11)}, 0,
			map[string]string{ver(2): "a=1", ver(1): "b=2"}, "b=2"},
		{"older stamp loses", client.TagUpdate{Version: ver(2), Tagging: "old=1", At: ver(9)}, 0,
			map[string]string{ver(2): "a=1", ver(1): "b=2"}, "a=1"},
		{"same stamp changes nothing", client.TagUpdate{Version: ver(2), Tagging: "x=1", At: ver(10)}, 0,
			map[string]string{ver(2): "a=1", ver(1): "b=2"}, "a=1"},
		{"removing", client.TagUpdate{Version: ver(2), Tagging: "", At: ver(12)}, 0,
			map[string]string{ver(2): "", ver(1): "b=2"}, ""},
		{"unknown version", client.TagUpdate{Version: ver(3), Tagging: "c=3", At: ver(13)}, kerr.NotExist,
			map[string]string{ver(2): "", ver(1): "b=2"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.u.Bucket, c.u.Key = "bk", "k"
			rec, err := tn.c.SetTags(ctx, c.u)
			if c.kind != 0 {
				wantKind(t, err, c.kind)
			} else if err != nil {
				t.Fatal(err)
			} else if rec.Version != c.u.Version || rec.Tagging != c.wantRec {
				t.Fatalf("answer: version %s tags %q, want %s %q", rec.Version, rec.Tagging, c.u.Version, c.wantRec)
			}
			if got := tags(); !maps.Equal(got, c.want) {
				t.Fatalf("tags %v, want %v", got, c.want)
			}
		})
	}
	// The shard of the retagged version is the one written.
	if got := tn.readAll(t, "bk", "k", ver(1), 0); !bytes.Equal(got, o1.shards[0]) {
		t.Fatal("noncurrent shard differs after a tag update")
	}
	// A delete marker has no tags.
	marker := client.ObjectMeta{Bucket: "bk", Key: "k", Version: ver(4), Deleted: true, Versioning: "Enabled", VersioningAt: ver(0), Versioned: true}
	if _, err := tn.c.Commit(ctx, marker); err != nil {
		t.Fatal(err)
	}
	_, err = tn.c.SetTags(ctx, client.TagUpdate{Bucket: "bk", Key: "k", Version: ver(4), Tagging: "m=1", At: ver(20)})
	wantKind(t, err, kerr.NotExist)
	st, err := tn.c.Stat(ctx, "bk", "k")
	if err != nil {
		t.Fatal(err)
	}
	if st.Committed == nil || !st.Committed.Deleted || st.Committed.Tagging != "" {
		t.Fatalf("marker after a refused tag update: %+v", st.Committed)
	}
	// A stamp that is no version name is refused before it is stored.
	_, err = tn.c.SetTags(ctx, client.TagUpdate{Bucket: "bk", Key: "k", Version: ver(2), Tagging: "a=1", At: "yesterday"})
	wantKind(t, err, kerr.Invalid)
}
