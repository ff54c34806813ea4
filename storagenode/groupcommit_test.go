package storagenode

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentCommitsDurable runs many stage+commits at once, so that
// they share directory fsyncs and stage buffers, then closes the node and
// reopens its directory: every acknowledged commit must be there, byte for
// byte, and nothing may be left staged.
func TestConcurrentCommitsDurable(t *testing.T) {
	dir := t.TempDir()
	tn := startNode(t, dir, nil)
	const writers = 32
	objs := make([]object, writers)
	for i := range objs {
		objs[i] = encode(t, 1+i*(3*testBlock)/writers, uint64(i)) // 1 byte to under 3 stripes
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			key := fmt.Sprintf("k%02d", i)
			o := objs[i]
			if _, err := tn.c.Stage(ctx, "b", key, ver(i), i%6, testBlock, bytes.NewReader(o.shards[i%6])); err != nil {
				errs <- fmt.Errorf("Stage %s: %w", key, err)
				return
			}
			if _, err := tn.c.Commit(ctx, o.meta("b", key, ver(i))); err != nil {
				errs <- fmt.Errorf("Commit %s: %w", key, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	tn.stop()

	tn = startNode(t, dir, nil)
	for i := range writers {
		key := fmt.Sprintf("k%02d", i)
		if got := tn.readAll(t, "b", key, ver(i), i%6); !bytes.Equal(got, objs[i].shards[i%6]) {
			t.Errorf("after reopen: shard of %s differs (%d bytes, want %d)", key, len(got), len(objs[i].shards[i%6]))
		}
	}
	if got := files(t, dir, stagingDir); len(got) != 0 {
		t.Errorf("staging holds %v after every commit", got)
	}
	if got := len(files(t, dir, shardsDir)); got != writers {
		t.Errorf("%d shard files, want %d", got, writers)
	}
}

// TestMkdirsRecreatesMissingDirectory checks that the memo of fan-out
// directories is per process: a directory removed behind a closed node's
// back is created again by the next node on the same data directory.
func TestMkdirsRecreatesMissingDirectory(t *testing.T) {
	dir := t.TempDir()
	tn := startNode(t, dir, nil)
	o := encode(t, 100, 1)
	tn.put(t, "b", "k", ver(1), o, 0)
	tn.stop()
	if err := os.RemoveAll(filepath.Join(dir, stagingDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, stagingDir), 0o755); err != nil {
		t.Fatal(err)
	}
	tn = startNode(t, dir, nil)
	tn.put(t, "b", "k", ver(2), o, 0)
	if got := tn.readAll(t, "b", "k", ver(2), 0); !bytes.Equal(got, o.shards[0]) {
		t.Errorf("shard after re-creating the fan-out differs")
	}
}

// TestSweepOldStagingLayout checks that a stray file left in a staging
// directory of the earlier two-level layout is still swept, and that a
// stage in progress under the flat layout is not.
func TestSweepOldStagingLayout(t *testing.T) {
	tn := startNode(t, "", nil)
	old := filepath.Join(tn.cfg.Dir, stagingDir, "ab", "cd", strings.Repeat("ab", 32)+".0.0123456789abcdef")
	if err := os.MkdirAll(filepath.Dir(old), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(old, []byte("left by a crash"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := encode(t, 100, 1)
	if _, err := tn.c.Stage(context.Background(), "b", "k", ver(1), 0, testBlock, bytes.NewReader(o.shards[0])); err != nil {
		t.Fatal(err)
	}
	removed, err := tn.Sweep(context.Background(), time.Now().Add(tn.Node.cfg.StagingGrace/2))
	if err != nil || removed != 0 {
		t.Fatalf("Sweep within the grace = %d, %v; want 0, nil", removed, err)
	}
	// Past the grace the stray file goes; the staged shard stays (no
	// version of its key is committed here: another node may have).
	removed, err = tn.Sweep(context.Background(), time.Now().Add(tn.Node.cfg.StagingGrace+time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if exists(old) {
		t.Errorf("stray file of the old layout survived the sweep (removed %d)", removed)
	}
	if got := files(t, tn.cfg.Dir, stagingDir); len(got) != 1 {
		t.Errorf("staging holds %v after the sweep, want the staged shard's file alone", got)
	}
}
