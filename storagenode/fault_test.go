package storagenode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/clock"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/meta"
)

// assertNothingStaged checks that a failed stage left no entry and no file.
func assertNothingStaged(t *testing.T, tn *testNode, bucket, key string) {
	t.Helper()
	ks, err := tn.c.Stat(context.Background(), bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.Staged) != 0 || ks.Committed != nil {
		t.Errorf("Stat after failed stage = %+v", ks)
	}
	if got := files(t, tn.cfg.Dir, stagingDir); len(got) != 0 {
		t.Errorf("staging files after failed stage: %v", got)
	}
}

func TestStageBadBody(t *testing.T) {
	o := encode(t, 3*4*testBlock, 11) // 3 full frames per shard
	shard := o.shards[0]
	frame := 32 + testBlock
	flip := func(i int) []byte {
		b := bytes.Clone(shard)
		b[i] ^= 0x10
		return b
	}
	big := encode(t, 200*4*testBlock, 12).shards[0] // ~800 KiB: the node must drain it to answer
	bigBad := bytes.Clone(big)
	bigBad[40] ^= 1
	for _, tc := range []struct {
		name string
		body []byte
		want kerr.Kind
	}{
		{"flipped bit in block 0", flip(32 + 5), kerr.Corrupt},
		{"flipped bit in digest 1", flip(frame + 3), kerr.Corrupt},
		{"flipped bit in last block", flip(len(shard) - 1), kerr.Corrupt},
		{"corrupt first block of a large stream", bigBad, kerr.Corrupt},
		{"cut inside a digest", shard[:frame+10], kerr.Invalid},
		{"digest without block", shard[:frame+32], kerr.Invalid},
		// A block cut short is indistinguishable from a short last block
		// whose digest does not match: the frame check catches it.
		{"cut inside a block", shard[:frame+32+100], kerr.Corrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := startNode(t, "", nil)
			_, err := tn.c.Stage(context.Background(), "bk", "k", ver(1), 0, testBlock, bytes.NewReader(tc.body))
			wantKind(t, err, tc.want)
			assertNothingStaged(t, tn, "bk", "k")
		})
	}
}

// truncatingReader yields n bytes of b and then fails, as a dying sender does.
type truncatingReader struct {
	r   io.Reader
	err error
}

func (t *truncatingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.EOF {
		err = t.err
	}
	return n, err
}

func TestStageSenderFails(t *testing.T) {
	tn := startNode(t, "", nil)
	o := encode(t, 50*4*testBlock, 13)
	boom := errors.New("sender died")
	body := &truncatingReader{r: bytes.NewReader(o.shards[0][:20*(32+testBlock)+7]), err: boom}
	_, err := tn.c.Stage(context.Background(), "bk", "k", ver(1), 0, testBlock, body)
	if err == nil || !errors.Is(err, boom) {
		t.Fatalf("Stage with failing body: %v, want an error wrapping the body's", err)
	}
	// The node notices the broken stream on its own time; closing the
	// server waits for its handler, which may not even have created the
	// staged file yet when the client gives up.
	tn.srv.Close()
	if got := files(t, tn.cfg.Dir, stagingDir); len(got) != 0 {
		t.Errorf("staging files after failed stage: %v", got)
	}
	if staged, err := tn.Node.db.StagedOf("bk", "k"); err != nil || len(staged) != 0 {
		t.Errorf("staged entries after failed stage: %v, %v", staged, err)
	}
}

// fullDisk fails writes with ENOSPC once more than room bytes went through.
type fullDisk struct {
	w    io.Writer
	room int
}

func (f *fullDisk) Write(p []byte) (int, error) {
	if len(p) > f.room {
		n, _ := f.w.Write(p[:f.room])
		f.room = 0
		return n, &os.PathError{Op: "write", Path: "shard", Err: syscall.ENOSPC}
	}
	f.room -= len(p)
	return f.w.Write(p)
}

func TestStageDiskFull(t *testing.T) {
	tn := startNode(t, "", nil)
	tn.stageWriter = func(w io.Writer) io.Writer { return &fullDisk{w: w, room: 300 << 10} }
	o := encode(t, 200*4*testBlock, 14) // 800 KiB per shard
	_, err := tn.c.Stage(context.Background(), "bk", "k", ver(1), 0, testBlock, bytes.NewReader(o.shards[0]))
	wantKind(t, err, kerr.TooLarge)
	assertNothingStaged(t, tn, "bk", "k")
}

func TestStageInvalidArgs(t *testing.T) {
	tn := startNode(t, "", nil)
	// Straight to the server: the client would refuse these itself.
	for _, q := range []string{
		"bucket=bk&key=k&version=" + ver(1) + "&shard=24&block=4096",
		"bucket=bk&key=k&version=" + ver(1) + "&shard=-1&block=4096",
		"bucket=bk&key=k&version=" + ver(1) + "&shard=0&block=100",
		"bucket=bk&key=k&version=01arz3ndektsv4rrffq69g5fav&shard=0&block=4096", // lower case
		"bucket=bk&key=k&version=xyz&shard=0&block=4096",
		"bucket=&key=k&version=" + ver(1) + "&shard=0&block=4096",
		"bucket=bk&key=&version=" + ver(1) + "&shard=0&block=4096",
		"bucket=b%2Fk&key=k&version=" + ver(1) + "&shard=0&block=4096",
		fmt.Sprintf("bucket=bk&key=%s&version=%s&shard=0&block=4096", bytes.Repeat([]byte("k"), 1025), ver(1)),
	} {
		req, _ := newRawRequest("PUT", tn.srv.URL+"/v1/stage?"+q, nil)
		resp, err := tn.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("stage %s: status %d, want 400", q, resp.StatusCode)
		}
	}
	if got := files(t, tn.cfg.Dir, stagingDir); len(got) != 0 {
		t.Errorf("staging files: %v", got)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	tn := startNode(t, dir, nil)
	ctx := context.Background()
	o := encode(t, 20000, 15)
	for i, k := range []string{"a", "b", "c"} {
		tn.put(t, "bk", k, ver(i), o, i)
	}
	if _, err := tn.c.Commit(ctx, client.ObjectMeta{Bucket: "bk", Key: "b", Version: ver(9), Deleted: true}); err != nil {
		t.Fatal(err)
	}
	if err := tn.c.PutBucket(ctx, client.BucketRecord{Name: "bk", Version: ver(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.c.Stage(ctx, "bk", "d", ver(5), 1, testBlock, bytes.NewReader(o.shards[1])); err != nil {
		t.Fatal(err)
	}
	tn.stop()

	tn = startNode(t, dir, nil)
	for i, k := range []string{"a", "c"} {
		i := i * 2
		if got := tn.readAll(t, "bk", k, ver(i), i); !bytes.Equal(got, o.shards[i]) {
			t.Errorf("%s: shard differs after restart", k)
		}
	}
	page, err := tn.c.List(ctx, "bk", "", "", 0)
	if err != nil || len(page.Records) != 3 || !page.Records[1].Deleted {
		t.Errorf("List after restart = %+v, %v", page, err)
	}
	if h, err := tn.c.Health(ctx); err != nil || h.Objects != 2 {
		t.Errorf("Health after restart = %+v, %v; want 2 objects", h, err)
	}
	if b, err := tn.c.GetBucket(ctx, "bk"); err != nil || b.Version != ver(1) {
		t.Errorf("GetBucket after restart = %+v, %v", b, err)
	}
	// The staged shard survived too and can still be committed.
	if _, err := tn.c.Commit(ctx, o.meta("bk", "d", ver(5))); err != nil {
		t.Fatalf("committing a shard staged before the restart: %v", err)
	}
	if got := tn.readAll(t, "bk", "d", ver(5), 1); !bytes.Equal(got, o.shards[1]) {
		t.Error("shard staged before restart differs")
	}
}

func TestSweep(t *testing.T) {
	tn := startNode(t, "", func(c *Config) { c.StagingGrace = time.Hour })
	ctx := context.Background()
	o := encode(t, 9000, 16)
	tn.put(t, "bk", "kept", ver(1), o, 0)
	for _, k := range []string{"x", "y"} {
		if _, err := tn.c.Stage(ctx, "bk", k, ver(2), 3, testBlock, bytes.NewReader(o.shards[3])); err != nil {
			t.Fatal(err)
		}
	}
	// A temp file a crashed stage left behind, with no entry.
	orphan := stagingFile("bk", "z", ver(3), 1)
	if err := tn.mkdirs(orphan); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tn.cfg.Dir, orphan), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A commit that crashed between its rename and its record: the staged
	// file is already at its final name.
	if _, err := tn.c.Stage(ctx, "bk", "w", ver(4), 2, testBlock, bytes.NewReader(o.shards[2])); err != nil {
		t.Fatal(err)
	}
	_, staged, err := tn.db.Key("bk", "w")
	if err != nil || len(staged) != 1 {
		t.Fatalf("staged w: %v, %v", staged, err)
	}
	if _, err := tn.install(staged[0], staged[0].Version); err != nil {
		t.Fatal(err)
	}
	// A superseded file a commit noted but did not get to remove.
	garbage := shardFile("bk", "old", ver(0), 0)
	if err := tn.mkdirs(garbage); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tn.cfg.Dir, garbage), []byte("old"), 0o644)
	if err := tn.db.Commit(client.Record{ObjectMeta: client.ObjectMeta{Bucket: "bk", Key: "old", Version: ver(1), Deleted: true}, Shard: -1}, nil, meta.Move{}, meta.Garbage{File: garbage}); err != nil {
		t.Fatal(err)
	}

	// Within the grace: only the garbage goes.
	removed, err := tn.Sweep(ctx, time.Now())
	if err != nil || removed != 1 {
		t.Fatalf("Sweep now = %d, %v; want 1 (the superseded file)", removed, err)
	}
	if exists(filepath.Join(tn.cfg.Dir, garbage)) {
		t.Error("superseded file kept")
	}
	if ks, _ := tn.c.Stat(ctx, "bk", "x"); len(ks.Staged) != 1 {
		t.Fatalf("young staged entry swept: %+v", ks)
	}

	// Past the grace: the orphan temp file (1). The x, y, w entries stay:
	// their versions are newer than anything committed here, and only the
	// cluster can tell whether another node committed them; aborts (the
	// scrubber's) remove them.
	removed, err = tn.Sweep(ctx, time.Now().Add(time.Hour+time.Minute))
	if err != nil || removed != 1 {
		t.Fatalf("Sweep after grace = %d, %v; want 1", removed, err)
	}
	for _, k := range []string{"x", "y", "w"} {
		if ks, _ := tn.c.Stat(ctx, "bk", k); len(ks.Staged) != 1 || ks.Committed != nil {
			t.Errorf("%s after sweep: %+v, want its staged shard kept", k, ks)
		}
		if err := tn.c.Abort(ctx, "bk", k, ver(map[string]int{"x": 2, "y": 2, "w": 4}[k])); err != nil {
			t.Fatal(err)
		}
	}
	if got := files(t, tn.cfg.Dir, stagingDir); len(got) != 0 {
		t.Errorf("staging files after sweep and aborts: %v", got)
	}
	want := []string{shardFile("bk", "kept", ver(1), 0)}
	if got := files(t, tn.cfg.Dir, shardsDir); !slices.Equal(got, want) {
		t.Errorf("shard files after sweep and aborts = %v, want %v", got, want)
	}
	if got := tn.readAll(t, "bk", "kept", ver(1), 0); !bytes.Equal(got, o.shards[0]) {
		t.Error("committed shard changed by sweep")
	}
	if removed, err := tn.Sweep(ctx, time.Now().Add(48*time.Hour)); err != nil || removed != 0 {
		t.Errorf("second Sweep = %d, %v; want 0", removed, err)
	}
}

func TestCommitAfterCrashedRename(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 9000, 17)
	if _, err := tn.c.Stage(ctx, "bk", "k", ver(1), 2, testBlock, bytes.NewReader(o.shards[2])); err != nil {
		t.Fatal(err)
	}
	_, staged, err := tn.db.Key("bk", "k")
	if err != nil || len(staged) != 1 {
		t.Fatal(staged, err)
	}
	if _, err := tn.install(staged[0], staged[0].Version); err != nil { // the rename happened, the record did not
		t.Fatal(err)
	}
	if _, err := tn.c.Commit(ctx, o.meta("bk", "k", ver(1))); err != nil {
		t.Fatalf("retried commit: %v", err)
	}
	if got := tn.readAll(t, "bk", "k", ver(1), 2); !bytes.Equal(got, o.shards[2]) {
		t.Error("shard differs")
	}
}

func TestConcurrentCommitsNewestWins(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	const writers = 16
	objs := make([]object, writers)
	for i := range objs {
		objs[i] = encode(t, 5000+i, uint64(100+i))
	}
	// Stage every version first, then let all the commits race for the key.
	for i := range writers {
		if _, err := tn.c.Stage(ctx, "bk", "hot", ver(i), 0, testBlock, bytes.NewReader(objs[i].shards[0])); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			v := ver(i)
			rec, err := tn.c.Commit(ctx, objs[i].meta("bk", "hot", v))
			if newer := client.Newer(err); newer != "" {
				// Refused for a newer version: the writer aborts.
				if newer <= v {
					errs <- fmt.Errorf("commit of %s refused for older %s", v, newer)
				}
				if err := tn.c.Abort(ctx, "bk", "hot", v); err != nil {
					errs <- err
				}
				return
			}
			if err != nil {
				errs <- err
				return
			}
			if rec.Version < v {
				errs <- fmt.Errorf("commit of %s answered older %s", v, rec.Version)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	newest := ver(writers - 1)
	ks, err := tn.c.Stat(ctx, "bk", "hot")
	if err != nil || ks.Committed == nil || ks.Committed.Version != newest || len(ks.Staged) != 0 {
		t.Fatalf("Stat = %+v, %v; want committed %s, nothing staged", ks, err, newest)
	}
	if got := tn.readAll(t, "bk", "hot", newest, 0); !bytes.Equal(got, objs[writers-1].shards[0]) {
		t.Error("newest shard bytes differ")
	}
	want := []string{shardFile("bk", "hot", newest, 0)}
	if got := files(t, tn.cfg.Dir, shardsDir); !slices.Equal(got, want) {
		t.Errorf("shard files = %v, want only %v", got, want)
	}
	if got := files(t, tn.cfg.Dir, stagingDir); len(got) != 0 {
		t.Errorf("staging files = %v", got)
	}
}

func TestConfig(t *testing.T) {
	d := DefaultConfig()
	if d.StagingGrace != 24*time.Hour || d.SweepInterval != 10*time.Minute || d.MaxSkew != 5*time.Minute || d.SupersededGrace != 2*time.Minute {
		t.Errorf("DefaultConfig = %+v", d)
	}
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{ID: "a", Dir: "d"}, true},
		{Config{Dir: "d"}, false},
		{Config{ID: "a"}, false},
		{Config{ID: "a", Dir: "d", StagingGrace: -1}, false},
		{Config{ID: "a", Dir: "d", SweepInterval: -1}, false},
		{Config{ID: "a", Dir: "d", MaxSkew: -1}, false},
		{Config{ID: "a", Dir: "d", SupersededGrace: -1}, false},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != tc.ok || (err != nil && !kerr.Is(kerr.Invalid, err)) {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tc.cfg, err, tc.ok)
		}
	}
	if _, err := Open(Config{Dir: t.TempDir()}); !kerr.Is(kerr.Invalid, err) {
		t.Errorf("Open without ID: %v", err)
	}
}

func TestSweepLoop(t *testing.T) {
	clk := clock.NewManual(time.Now())
	tn := startNode(t, "", func(c *Config) {
		c.SweepInterval = 10 * time.Millisecond
		c.StagingGrace = time.Nanosecond
		c.Now, c.After = clk.Now, clk.After
	})
	o := encode(t, 100, 18)
	// Superseded by the marker committed here: dead, so age sweeps it.
	if _, err := tn.c.Stage(context.Background(), "bk", "k", ver(1), 0, testBlock, bytes.NewReader(o.shards[0])); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.c.Commit(context.Background(), client.ObjectMeta{Bucket: "bk", Key: "k", Version: ver(2), Deleted: true}); err != nil {
		t.Fatal(err)
	}
	// The loop waits out its interval, sweeps, and waits again.
	clk.BlockUntil(1)
	if all, err := tn.db.AllStaged(); err != nil || len(all) != 1 {
		t.Fatalf("staged before the interval ran out: %+v, %v", all, err)
	}
	clk.Advance(10 * time.Millisecond)
	clk.BlockUntil(1)
	if all, err := tn.db.AllStaged(); err != nil || len(all) != 0 {
		t.Fatalf("staged after a sweep: %+v, %v", all, err)
	}
	if err := tn.Close(); err != nil {
		t.Fatal(err)
	}
}
