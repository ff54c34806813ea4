package storagenode

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// TestSupersededGrace: a read that resolved a version just before a newer
// commit still finds that version's shard until the grace ends; nothing
// else sees it, and Sweep returns the space after the grace.
func TestSupersededGrace(t *testing.T) {
	tn := startNode(t, "", func(c *Config) { c.SupersededGrace = time.Minute })
	ctx := context.Background()
	o1, o2 := encode(t, 9000, 31), encode(t, 7000, 32)
	tn.put(t, "bk", "k", ver(1), o1, 1)
	tn.put(t, "bk", "k", ver(2), o2, 1)
	// A delete marker over a third version.
	tn.put(t, "bk", "d", ver(3), o1, 2)
	if _, err := tn.c.Commit(ctx, client.ObjectMeta{Bucket: "bk", Key: "d", Version: ver(4), Deleted: true}); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		key, version string
		shard        int
		want         []byte
	}{
		{"k", ver(1), 1, o1.shards[1]},
		{"k", ver(2), 1, o2.shards[1]},
		{"d", ver(3), 2, o1.shards[2]},
	} {
		if got := tn.readAll(t, "bk", c.key, c.version, c.shard); !bytes.Equal(got, c.want) {
			t.Errorf("ReadShard %s %s within grace: %d bytes, want the version's %d", c.key, c.version, len(got), len(c.want))
		}
	}
	// A range of the superseded shard too.
	rc, err := tn.c.ReadShard(ctx, "bk", "k", ver(1), 1, 10, 20)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, o1.shards[1][10:30]) {
		t.Errorf("ranged ReadShard of superseded version = %x", got)
	}
	// Versions never committed here stay unreadable.
	_, err = tn.c.ReadShard(ctx, "bk", "k", ver(0), 1, 0, -1)
	wantKind(t, err, kerr.NotExist)
	_, err = tn.c.ReadShard(ctx, "bk", "d", ver(4), 2, 0, -1)
	wantKind(t, err, kerr.NotExist)

	// Stat and List know the newest record only.
	ks, err := tn.c.Stat(ctx, "bk", "k")
	if err != nil || ks.Committed == nil || ks.Committed.Version != ver(2) || len(ks.Staged) != 0 {
		t.Fatalf("Stat k = %+v, %v; want version 2 only", ks, err)
	}
	page, err := tn.c.List(ctx, "bk", "", "", 0)
	if err != nil || len(page.Records) != 2 || page.Records[0].Version != ver(4) || page.Records[1].Version != ver(2) {
		t.Fatalf("List = %+v, %v", page, err)
	}

	// Within the grace Sweep keeps both superseded files.
	want := []string{shardFile("bk", "d", ver(3), 2), shardFile("bk", "k", ver(1), 1), shardFile("bk", "k", ver(2), 1)}
	slices.Sort(want)
	if removed, err := tn.Sweep(ctx, time.Now().Add(30*time.Second)); err != nil || removed != 0 {
		t.Fatalf("Sweep within grace = %d, %v; want 0", removed, err)
	}
	if got := files(t, tn.cfg.Dir, shardsDir); !slices.Equal(got, want) {
		t.Errorf("shard files within grace = %v, want %v", got, want)
	}

	if removed, err := tn.Sweep(ctx, time.Now().Add(time.Minute+time.Second)); err != nil || removed != 2 {
		t.Fatalf("Sweep past grace = %d, %v; want 2", removed, err)
	}
	if got, want := files(t, tn.cfg.Dir, shardsDir), []string{shardFile("bk", "k", ver(2), 1)}; !slices.Equal(got, want) {
		t.Errorf("shard files past grace = %v, want %v", got, want)
	}
	for _, c := range []struct {
		key, version string
		shard        int
	}{{"k", ver(1), 1}, {"d", ver(3), 2}} {
		_, err := tn.c.ReadShard(ctx, "bk", c.key, c.version, c.shard, 0, -1)
		wantKind(t, err, kerr.NotExist)
	}
	if got := tn.readAll(t, "bk", "k", ver(2), 1); !bytes.Equal(got, o2.shards[1]) {
		t.Error("committed shard changed by sweep")
	}
}

// TestSupersededNotServed: a dropped copy and a quarantined one are never
// served, grace or not.
func TestSupersededNotServed(t *testing.T) {
	tn := startNode(t, "", func(c *Config) { c.SupersededGrace = time.Hour })
	ctx := context.Background()
	o := encode(t, 9000, 33)

	tn.put(t, "bk", "moved", ver(1), o, 0)
	if dropped, err := tn.c.DropShard(ctx, "bk", "moved", ver(1), 0); err != nil || !dropped {
		t.Fatalf("DropShard = %v, %v", dropped, err)
	}
	_, err := tn.c.ReadShard(ctx, "bk", "moved", ver(1), 0, 0, -1)
	wantKind(t, err, kerr.NotExist)

	rec := tn.put(t, "bk", "bad", ver(1), o, 0)
	f, err := os.Open(filepath.Join(tn.cfg.Dir, shardFile("bk", "bad", ver(1), 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := tn.quarantine(rec, f, "test"); err != nil {
		t.Fatal(err)
	}
	tn.put(t, "bk", "bad", ver(2), o, 0)
	_, err = tn.c.ReadShard(ctx, "bk", "bad", ver(1), 0, 0, -1)
	if k := kerr.KindOf(err); k != kerr.NotExist && k != kerr.Corrupt {
		t.Fatalf("ReadShard of quarantined superseded shard: %v", err)
	}
}

// TestSupersededNoGrace: with no grace a commit removes the superseded
// file at once.
func TestSupersededNoGrace(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 9000, 34)
	tn.put(t, "bk", "k", ver(1), o, 3)
	tn.put(t, "bk", "k", ver(2), o, 3)
	_, err := tn.c.ReadShard(ctx, "bk", "k", ver(1), 3, 0, -1)
	wantKind(t, err, kerr.NotExist)
	if got, want := files(t, tn.cfg.Dir, shardsDir), []string{shardFile("bk", "k", ver(2), 3)}; !slices.Equal(got, want) {
		t.Errorf("shard files = %v, want %v", got, want)
	}
}

// TestUnderwrittenHold: a commit of a version that names no node for some
// shard (its write staged fewer than n shards) keeps the shard it
// supersedes readable, and reported by Stat as Previous, past the grace
// until the hold ends; a commit of a fully written version does not.
func TestUnderwrittenHold(t *testing.T) {
	const grace, hold = time.Minute, time.Hour
	tn := startNode(t, "", func(c *Config) { c.SupersededGrace, c.UnderwrittenHold = grace, hold })
	ctx := context.Background()
	o1, o2 := encode(t, 9000, 35), encode(t, 7000, 36)
	cases := []struct {
		key   string
		nodes []string // v2's Nodes; nil: all six
		held  bool     // v1's shard outlives the grace
	}{
		{"full", nil, false},
		{"gap", []string{"node-0", "node-1", "node-2", "node-3", "node-4", ""}, true},
		{"short", []string{"node-0", "node-1", "node-2", "node-3", "node-4"}, true},
	}
	for _, c := range cases {
		tn.put(t, "bk", c.key, ver(1), o1, 1)
		if _, err := tn.c.Stage(ctx, "bk", c.key, ver(2), 1, testBlock, bytes.NewReader(o2.shards[1])); err != nil {
			t.Fatal(err)
		}
		m := o2.meta("bk", c.key, ver(2))
		if c.nodes != nil {
			m.Nodes = c.nodes
		}
		if _, err := tn.c.Commit(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// check says whether, at a stage of the test, v1's shard is reported
	// and served.
	check := func(when string, held func(held bool) bool) {
		t.Helper()
		for _, c := range cases {
			want := held(c.held)
			ks, err := tn.c.Stat(ctx, "bk", c.key)
			if err != nil || ks.Committed == nil || ks.Committed.Version != ver(2) {
				t.Fatalf("%s: Stat %s = %+v, %v; want version 2 committed", when, c.key, ks, err)
			}
			switch p := ks.Previous; {
			case want && (p == nil || p.Version != ver(1) || p.Shard != 1):
				t.Errorf("%s: Stat %s previous = %+v, want version 1 shard 1", when, c.key, p)
			case !want && p != nil:
				t.Errorf("%s: Stat %s previous = %+v, want none", when, c.key, p)
			}
			rc, err := tn.c.ReadShard(ctx, "bk", c.key, ver(1), 1, 0, -1)
			if !want {
				wantKind(t, err, kerr.NotExist)
				continue
			}
			if err != nil {
				t.Fatalf("%s: ReadShard %s version 1: %v", when, c.key, err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, o1.shards[1]) {
				t.Errorf("%s: ReadShard %s version 1 = %d bytes, %v; want its shard", when, c.key, len(got), err)
			}
		}
	}
	always := func(bool) bool { return true }
	check("within grace", always)
	if _, err := tn.Sweep(ctx, time.Now().Add(grace+time.Second)); err != nil {
		t.Fatal(err)
	}
	check("past grace", func(held bool) bool { return held })
	if _, err := tn.Sweep(ctx, time.Now().Add(hold-time.Second)); err != nil {
		t.Fatal(err)
	}
	check("within hold", func(held bool) bool { return held })
	if _, err := tn.Sweep(ctx, time.Now().Add(hold+grace+time.Second)); err != nil {
		t.Fatal(err)
	}
	check("past hold", func(bool) bool { return false })
	if got, want := len(files(t, tn.cfg.Dir, shardsDir)), len(cases); got != want {
		t.Errorf("%d shard files past hold, want %d (version 2's)", got, want)
	}

	// The hold outlives a restart: the note keeps the record.
	tn2 := startNode(t, "", func(c *Config) { c.SupersededGrace, c.UnderwrittenHold = 0, hold })
	tn2.put(t, "bk", "k", ver(1), o1, 1)
	if _, err := tn2.c.Stage(ctx, "bk", "k", ver(2), 1, testBlock, bytes.NewReader(o2.shards[1])); err != nil {
		t.Fatal(err)
	}
	m := o2.meta("bk", "k", ver(2))
	m.Nodes[3] = ""
	if _, err := tn2.c.Commit(ctx, m); err != nil {
		t.Fatal(err)
	}
	tn2.stop()
	tn3 := startNode(t, tn2.cfg.Dir, func(c *Config) { c.SupersededGrace, c.UnderwrittenHold = 0, hold })
	if ks, err := tn3.c.Stat(ctx, "bk", "k"); err != nil || ks.Previous == nil || ks.Previous.Version != ver(1) {
		t.Fatalf("Stat after restart, no grace, underwritten = %+v, %v; want version 1 previous", ks, err)
	}
	if got := tn3.readAll(t, "bk", "k", ver(1), 1); !bytes.Equal(got, o1.shards[1]) {
		t.Error("held shard not served after restart")
	}
}

// TestRecodeSupersededGrace: a re-code (its base's name plus a suffix)
// supersedes its base like any newer version: the base's shard stays
// readable by exact version for the grace and Sweep removes it after,
// and a later write supersedes the re-code alike.
func TestRecodeSupersededGrace(t *testing.T) {
	tn := startNode(t, "", func(c *Config) { c.SupersededGrace = time.Minute })
	ctx := context.Background()
	o1, o2, o3 := encode(t, 9000, 41), encode(t, 9000, 42), encode(t, 5000, 43)
	r := client.RecodeVersion(ver(1))
	tn.put(t, "bk", "k", ver(1), o1, 3)
	tn.put(t, "bk", "k", r, o2, 3)
	if got := tn.readAll(t, "bk", "k", ver(1), 3); !bytes.Equal(got, o1.shards[3]) {
		t.Fatalf("base read within grace: %d bytes", len(got))
	}
	if got := tn.readAll(t, "bk", "k", r, 3); !bytes.Equal(got, o2.shards[3]) {
		t.Fatalf("re-code read: %d bytes", len(got))
	}
	if removed, err := tn.Sweep(ctx, time.Now().Add(time.Minute+time.Second)); err != nil || removed != 1 {
		t.Fatalf("Sweep past grace = %d, %v; want 1", removed, err)
	}
	if got, want := files(t, tn.cfg.Dir, shardsDir), []string{shardFile("bk", "k", r, 3)}; !slices.Equal(got, want) {
		t.Fatalf("shard files past grace = %v, want %v", got, want)
	}
	_, err := tn.c.ReadShard(ctx, "bk", "k", ver(1), 3, 0, -1)
	wantKind(t, err, kerr.NotExist)

	tn.put(t, "bk", "k", ver(2), o3, 3)
	if removed, err := tn.Sweep(ctx, time.Now().Add(time.Minute+time.Second)); err != nil || removed != 1 {
		t.Fatalf("Sweep of the superseded re-code = %d, %v; want 1", removed, err)
	}
	if got, want := files(t, tn.cfg.Dir, shardsDir), []string{shardFile("bk", "k", ver(2), 3)}; !slices.Equal(got, want) {
		t.Fatalf("shard files = %v, want %v", got, want)
	}
}
