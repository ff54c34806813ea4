package meta

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestConcurrentWritesDurable runs many index writes at once, so that they
// share syncs, and checks that every one that returned is there after the
// database is reopened.
func TestConcurrentWritesDurable(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	const writers = 64
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			s := Staged{Bucket: "b", Key: fmt.Sprintf("k%02d", i), Version: "v1", Shard: i % 6,
				Root: "r", Size: int64(i), Staged: time.Unix(1, 0).UTC(), File: fmt.Sprintf("staging/f%02d", i)}
			if _, err := db.PutStaged(s); err != nil {
				t.Errorf("PutStaged %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir)
	all, err := db.AllStaged()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != writers {
		t.Fatalf("%d staged entries after reopen, want %d", len(all), writers)
	}
	for _, s := range all {
		var i int
		fmt.Sscanf(s.Key, "k%02d", &i)
		if s.Size != int64(i) || s.Shard != i%6 || s.File != fmt.Sprintf("staging/f%02d", i) {
			t.Errorf("entry %+v does not match what was written", s)
		}
	}
}

// TestSyncWithOlderLogs checks that sync handles a memtable log other than
// the current one, and that a log removed meanwhile is not an error.
func TestSyncWithOlderLogs(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	// A log that sorts before the current one, as a full memtable's does.
	old := filepath.Join(dir, "00000.mem")
	if err := os.WriteFile(old, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := db.sync(); err != nil {
		t.Fatalf("sync with an older log: %v", err)
	}
	if err := os.Remove(old); err != nil {
		t.Fatal(err)
	}
	if err := syncFile(old); err != nil {
		t.Errorf("syncFile of a removed log = %v, want nil", err)
	}
}

func TestNextLog(t *testing.T) {
	for _, c := range []struct{ name, ext, want string }{
		{"/d/00001.mem", ".mem", "/d/00002.mem"},
		{"/d/000009.vlog", ".vlog", "/d/000010.vlog"},
		{"/d/99999.mem", ".mem", "/d/100000.mem"},
		{"/d/x.mem", ".mem", ""},
	} {
		if got := nextLog(c.name, c.ext); got != c.want {
			t.Errorf("nextLog(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestSyncNoticesRotation: once a log with the next name appears, sync
// looks at the directory again and remembers the new current log.
func TestSyncNoticesRotation(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir)
	if err := db.sync(); err != nil {
		t.Fatal(err)
	}
	next := db.rotated[".mem"]
	if next == "" {
		t.Fatalf("no next memtable log remembered: %v", db.rotated)
	}
	if err := os.WriteFile(next, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(next)
	if err := db.sync(); err != nil {
		t.Fatal(err)
	}
	if got, want := db.rotated[".mem"], nextLog(next, ".mem"); got != want {
		t.Errorf("after rotation next = %q, want %q", got, want)
	}
}
