package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/oklog/ulid/v2"
	"github.com/zeebo/blake3"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/proctest"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/scrubber"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// scrubBlock is the shard block size of the scrub tests' clusters: small,
// so that objects of a few hundred KiB span several stripes.
const scrubBlock = 32 << 10

// startScrubCluster starts a cluster whose nodes keep every shard in a
// file, for tests that damage and remove shard files on disk.
func startScrubCluster(t *testing.T) *proctest.Cluster {
	return startScrubClusterArgs(t, fileShards...)
}

func startScrubClusterArgs(t *testing.T, nodeArgs ...string) *proctest.Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process cluster test; run without -short")
	}
	return proctest.StartCluster(t, testBin, proctest.Options{BlockSize: scrubBlock, NodeArgs: nodeArgs})
}

// scrubRun is one finished `kintsugi scrub` process.
type scrubRun struct {
	code   int
	stdout string
	stderr string
	report scrubber.Report // parsed from stdout with --report json
}

// runScrubCmd runs `kintsugi scrub` against c with args added, to its end.
func runScrubCmd(t *testing.T, c *proctest.Cluster, args ...string) scrubRun {
	t.Helper()
	cmd := exec.Command(testBin, append([]string{"scrub", "--cluster", c.MapFile}, args...)...)
	cmd.Env = append(os.Environ(), "KINTSUGI_CLUSTER_SECRET="+c.Secret)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := scrubRun{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("scrub: %v", err)
	}
	if slices.Contains(args, "json") {
		if err := json.Unmarshal(out.Bytes(), &r.report); err != nil {
			t.Fatalf("scrub report: %v\nstdout: %s\nstderr: %s", err, out.String(), errb.String())
		}
	}
	return r
}

// scrubBaseline brings the cluster to full redundancy before a test
// damages it, so that the test's counts are exact: a gateway may take a
// write degraded (a node it judged slow) and leave the repair to a hint.
func scrubBaseline(t *testing.T, c *proctest.Cluster) {
	t.Helper()
	rep := mustScrub(t, c, 0)
	if rep.ShardsMissing+rep.ShardsCorrupt > 0 {
		t.Logf("baseline scrub repaired %d missing shards", rep.ShardsMissing)
	}
}

// mustScrub runs a JSON-reporting scrub and checks its exit code.
func mustScrub(t *testing.T, c *proctest.Cluster, code int, args ...string) scrubber.Report {
	t.Helper()
	r := runScrubCmd(t, c, append([]string{"--report", "json", "--state", t.TempDir()}, args...)...)
	if r.code != code {
		t.Fatalf("scrub exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, scrubTail(r.stderr, 4000))
	}
	return r.report
}

func scrubTail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// scrubShardFile is one committed shard file in a node's data directory.
type scrubShardFile struct {
	path string // absolute
}

// scrubShardFiles groups every committed shard file of the cluster by
// object version: files are named <hash of bucket, key, version>.<index>.
func scrubShardFiles(t *testing.T, c *proctest.Cluster) map[string][]scrubShardFile {
	t.Helper()
	out := make(map[string][]scrubShardFile)
	for i := range c.Nodes {
		root := filepath.Join(c.NodeDir(i), "shards")
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			hash, idx, ok := strings.Cut(d.Name(), ".")
			if _, err := strconv.Atoi(idx); !ok || err != nil {
				t.Fatalf("unexpected shard file %s", p)
			}
			out[hash] = append(out[hash], scrubShardFile{path: p})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// scrubFlip flips up to n random bytes of a file, returning its original
// content; false if the file is empty.
func scrubFlip(t *testing.T, rng *rand.Rand, path string, n int) ([]byte, bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return nil, false
	}
	orig := slices.Clone(b)
	for range n {
		b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return orig, true
}

// scrubNodeClient returns a storage node client for node i of c.
func scrubNodeClient(c *proctest.Cluster, i int) *client.Client {
	return client.New(c.Map.Nodes[i].Addr, &client.Options{Secret: []byte(c.Secret)})
}

// TestScrubBitrot flips bytes in random shard files, data and parity, up
// to p per object: one pass finds every one, rebuilds it byte for byte,
// and every object then reads back with any two nodes stopped.
func TestScrubBitrot(t *testing.T) {
	ctx := context.Background()
	c := startScrubCluster(t)
	cl := s3Client(c, 0)
	mustCreateBucket(t, ctx, cl, "rot")
	rng := rand.New(rand.NewPCG(4, 4))
	objs := randomObjects(rng, "o", 40, 2<<20)
	failOn(t, c, "put", putAll(ctx, cl, "rot", objs))
	scrubBaseline(t, c)

	type flipped struct {
		path string
		orig []byte
	}
	var damaged []flipped
	perObject := map[int]int{}
	for _, files := range scrubShardFiles(t, c) {
		if len(files) != 6 {
			t.Fatalf("an object has %d shard files, want 6", len(files))
		}
		k := rng.IntN(3) // 0, 1 or 2 = p shards of this object
		perObject[k]++
		rng.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
		for _, f := range files[:k] {
			if orig, ok := scrubFlip(t, rng, f.path, 1+rng.IntN(3)); ok {
				damaged = append(damaged, flipped{f.path, orig})
			}
		}
	}
	t.Logf("objects by shards damaged: %v; %d shard files corrupted", perObject, len(damaged))

	rep := mustScrub(t, c, 0)
	if rep.ShardsCorrupt != int64(len(damaged)) || rep.ShardsRebuilt != int64(len(damaged)) ||
		rep.ShardsMissing != 0 || rep.UnrecoverableCount != 0 || rep.Objects != int64(len(objs)) ||
		!maps.Equal(rep.RedundancyAfter, map[int]int64{6: int64(len(objs))}) {
		t.Fatalf("report = %+v, want %d corrupt and rebuilt", rep, len(damaged))
	}
	for _, d := range damaged {
		if got, err := os.ReadFile(d.path); err != nil || !bytes.Equal(got, d.orig) {
			t.Errorf("%s not restored byte for byte (err %v)", d.path, err)
		}
	}
	rep = mustScrub(t, c, 0)
	if rep.ShardsCorrupt != 0 || rep.ShardsRebuilt != 0 || rep.ShardsVerified != 6*int64(len(objs)) {
		t.Errorf("second pass = %+v", rep)
	}
	for _, pair := range [][2]int{{0, 1}, {2, 5}, {3, 4}} {
		for _, k := range pair {
			c.Nodes[k].Kill()
		}
		errs := scrubCheckSettled(ctx, cl, "rot", objs)
		for _, k := range pair {
			if err := c.Nodes[k].Restart(ctx); err != nil {
				t.Fatal(err)
			}
		}
		failOn(t, c, fmt.Sprintf("nodes %d and %d down after repair", pair[0]+1, pair[1]+1), errs)
	}
}

// TestScrubLostNode wipes a node's data directory and restarts it empty:
// the scrub rebuilds every shard it held. The nodes store shards as they
// do by default: objects of up to 2 MiB at 32 KiB blocks give inline,
// packed and file shards.
func TestScrubLostNode(t *testing.T) {
	ctx := context.Background()
	c := startScrubClusterArgs(t)
	cl := s3Client(c, 0)
	mustCreateBucket(t, ctx, cl, "lost")
	objs := randomObjects(rand.New(rand.NewPCG(5, 5)), "o", 30, 2<<20)
	failOn(t, c, "put", putAll(ctx, cl, "lost", objs))
	scrubBaseline(t, c)
	n := int64(len(objs))
	packed, _ := filepath.Glob(filepath.Join(c.NodeDir(2), "packs", "*.pack"))
	var packedBytes int64
	for _, p := range packed {
		if fi, err := os.Stat(p); err == nil {
			packedBytes += fi.Size()
		}
	}
	if packedBytes == 0 || shardFiles(t, c) == 0 {
		t.Fatalf("%d packed bytes and %d shard files: want shards of both kinds", packedBytes, shardFiles(t, c))
	}

	c.Nodes[2].Kill()
	if err := os.RemoveAll(c.NodeDir(2)); err != nil {
		t.Fatal(err)
	}
	if err := c.Nodes[2].Restart(ctx); err != nil {
		t.Fatal(err)
	}
	dry := mustScrub(t, c, 0, "--dry-run")
	if dry.ShardsMissing != n || dry.ShardsRebuilt != 0 || !maps.Equal(dry.RedundancyAfter, map[int]int64{5: n}) {
		t.Fatalf("dry run = %+v", dry)
	}
	rep := mustScrub(t, c, 0)
	if rep.ShardsMissing != n || rep.ShardsRebuilt != n || rep.BucketsRepaired != 1 ||
		!maps.Equal(rep.Redundancy, map[int]int64{5: n}) || !maps.Equal(rep.RedundancyAfter, map[int]int64{6: n}) {
		t.Fatalf("report = %+v", rep)
	}
	t.Logf("rebuilt %d shards, %s, in %.2fs: %.1f MB/s of shards rebuilt",
		rep.ShardsRebuilt, sizeStr(rep.BytesRebuilt), rep.Seconds, float64(rep.BytesRebuilt)/rep.Seconds/1e6)
	again := mustScrub(t, c, 0)
	if !maps.Equal(again.Redundancy, map[int]int64{6: n}) || again.ShardsVerified != 6*n || again.ShardsRebuilt != 0 {
		t.Fatalf("pass after repair = %+v", again)
	}
	// The rebuilt node carries its weight: readable with two others down.
	c.Nodes[0].Kill()
	c.Nodes[5].Kill()
	errs := scrubCheckSettled(ctx, cl, "lost", objs)
	for _, k := range []int{0, 5} {
		if err := c.Nodes[k].Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	failOn(t, c, "with the rebuilt node and two others", errs)
}

// TestScrubBeyondRepair corrupts p+1 shards of one object: exit 1 naming
// it; the others are repaired.
func TestScrubBeyondRepair(t *testing.T) {
	ctx := context.Background()
	c := startScrubCluster(t)
	cl := s3Client(c, 0)
	mustCreateBucket(t, ctx, cl, "beyond")
	rng := rand.New(rand.NewPCG(6, 6))
	victim := genBytes(60, 300<<10)
	if err := putObject(ctx, cl, "beyond", "victim", bytes.NewReader(victim), int64(len(victim))); err != nil {
		t.Fatal(err)
	}
	others := randomObjects(rng, "other", 8, 1<<20)[3:] // no empty objects
	failOn(t, c, "put", putAll(ctx, cl, "beyond", others))
	scrubBaseline(t, c)

	// p+1 = 3 shards of the victim, one shard of every other object.
	ks, err := scrubNodeClient(c, 0).Stat(ctx, "beyond", "victim")
	if err != nil || ks.Committed == nil {
		t.Fatalf("Stat victim: %+v, %v", ks, err)
	}
	victimFile := filepath.Base(scrubShardPath(c, 0, "beyond", "victim", ks.Committed.Version, ks.Committed.Shard))
	victimHash, _, _ := strings.Cut(victimFile, ".")
	damaged := 0
	for hash, files := range scrubShardFiles(t, c) {
		k := 1
		if hash == victimHash {
			k = 3
		} else {
			damaged++
		}
		rng.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
		for _, f := range files[:k] {
			if _, ok := scrubFlip(t, rng, f.path, 1); !ok {
				t.Fatal("an empty shard")
			}
		}
	}
	if damaged != len(others) {
		t.Fatalf("%d other objects on disk, want %d", damaged, len(others))
	}

	rep := mustScrub(t, c, 1)
	if rep.UnrecoverableCount != 1 || rep.Unrecoverable[0].Bucket != "beyond" || rep.Unrecoverable[0].Key != "victim" ||
		rep.ShardsRebuilt != int64(damaged) || rep.RedundancyAfter[6] != int64(len(others)) {
		t.Fatalf("report = %+v, want victim unrecoverable and %d shards rebuilt", rep, damaged)
	}
	text := runScrubCmd(t, c, "--state", t.TempDir())
	if text.code != 1 || !strings.Contains(text.stdout, "UNRECOVERABLE beyond/victim version ") {
		t.Fatalf("text scrub exit %d, stdout:\n%s", text.code, text.stdout)
	}
	failOn(t, c, "others after repair", checkAll(ctx, cl, "beyond", others))
}

// TestScrubConcurrency scrubs while PUT, overwrite and DELETE traffic goes
// on: no deleted object comes back, no newer version is clobbered, no
// corruption is reported.
func TestScrubConcurrency(t *testing.T) {
	ctx := context.Background()
	c := startScrubCluster(t)
	cl := s3Client(c, 0)
	mustCreateBucket(t, ctx, cl, "busy")
	rng := rand.New(rand.NewPCG(7, 7))
	const keys = 30
	type state struct {
		seed, size int64
		deleted    bool
	}
	want := make([]state, keys)
	key := func(i int) string { return fmt.Sprintf("k%02d", i) }
	for i := range keys {
		want[i] = state{seed: rng.Int64(), size: int64(rng.IntN(600 << 10))}
		if err := putObject(ctx, cl, "busy", key(i), newGen(want[i].seed, want[i].size), want[i].size); err != nil {
			t.Fatal(err)
		}
	}
	scrubBaseline(t, c)
	// Rot in one shard of every object, so that the first scrub rebuilds
	// while the writers overwrite and delete the same keys.
	flipped := 0
	for _, files := range scrubShardFiles(t, c) {
		if _, ok := scrubFlip(t, rng, files[rng.IntN(len(files))].path, 1); ok {
			flipped++
		}
	}
	// Two writers, each owning half the keys, overwrite, delete and
	// re-create them in a loop; a write that fails leaves its key's
	// expected state unknown, so it is retried until it succeeds.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var writes, deletes int
	for w := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 99))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				i := 2*r.IntN(keys/2) + w
				next := state{seed: r.Int64(), size: int64(r.IntN(600 << 10))}
				if r.IntN(3) == 0 {
					next = state{deleted: true}
				}
				for tries := 0; ; tries++ {
					if tries == 20 {
						t.Errorf("write %s kept failing", key(i))
						return
					}
					var err error
					if next.deleted {
						_, err = cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("busy"), Key: aws.String(key(i))})
					} else {
						err = putObject(ctx, cl, "busy", key(i), newGen(next.seed, next.size), next.size)
					}
					if err == nil {
						break
					}
					t.Logf("write %s: %v (retrying)", key(i), err)
				}
				mu.Lock()
				want[i] = next
				if next.deleted {
					deletes++
				} else {
					writes++
				}
				mu.Unlock()
			}
		})
	}
	var reps []scrubber.Report
	for range 4 {
		reps = append(reps, mustScrub(t, c, 0, "--staging-grace", "1h"))
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	t.Logf("%d writes and %d deletes during 4 scrubs; the first found %d of %d rotten shards (rebuilt %d, %d objects changed under it)",
		writes, deletes, reps[0].ShardsCorrupt, flipped, reps[0].ShardsRebuilt, reps[0].Changed)
	mu.Unlock()
	reps = append(reps, mustScrub(t, c, 0))
	for i, rep := range reps {
		// Only the rot planted before the traffic may be reported, and
		// only by the first scrub: what it did not reach was overwritten.
		planted := int64(0)
		if i == 0 {
			planted = int64(flipped)
		}
		if rep.ShardsCorrupt > planted || rep.UnrecoverableCount != 0 || rep.IncompleteCount != 0 {
			t.Errorf("scrub %d reported damage that is not there (%d shards were planted): %+v", i, planted, rep)
		}
	}
	last := reps[len(reps)-1]
	if last.ShardsMissing != 0 || last.ShardsRebuilt != 0 || len(last.Redundancy) > 1 {
		t.Errorf("quiet pass after the traffic = %+v", last)
	}
	for i := range keys {
		w := want[i]
		sum, n, err := getSum(ctx, cl, "busy", key(i))
		switch {
		case w.deleted && apiCode(err) != "NoSuchKey":
			t.Errorf("%s was deleted, GET = %d bytes, %v", key(i), n, err)
		case !w.deleted && err != nil:
			t.Errorf("%s: %v", key(i), err)
		case !w.deleted && (n != w.size || sum != genSum(w.seed, w.size)):
			t.Errorf("%s: %d bytes not the last version written (%d bytes)", key(i), n, w.size)
		}
	}
}

// TestScrubCrashResume kills a slow scrub mid-pass; the next run resumes
// from its checkpoint and ends with the same result as a full pass.
func TestScrubCrashResume(t *testing.T) {
	ctx := context.Background()
	c := startScrubCluster(t)
	cl := s3Client(c, 0)
	mustCreateBucket(t, ctx, cl, "resume")
	const n = 40
	objs := make([]testObject, n)
	for i := range objs {
		size := int64(512 << 10)
		objs[i] = testObject{key: fmt.Sprintf("o%02d", i), seed: int64(i), size: size, sum: genSum(int64(i), size)}
	}
	failOn(t, c, "put", putAll(ctx, cl, "resume", objs))
	scrubBaseline(t, c)
	// One corrupt shard early in key order, found before the kill.
	info, err := scrubNodeClient(c, 0).Stat(ctx, "resume", "o03")
	if err != nil || info.Committed == nil {
		t.Fatalf("Stat: %+v, %v", info, err)
	}
	scrubFlipShard(t, c, 0, "resume", "o03", info.Committed.Version, info.Committed.Shard)

	state := t.TempDir()
	cmd := exec.Command(testBin, "scrub", "--cluster", c.MapFile, "--state", state, "--report", "json",
		"--rate", "3", "--concurrency", "1", "--progress", "log", "--log-every", "100ms")
	cmd.Env = append(os.Environ(), "KINTSUGI_CLUSTER_SECRET="+c.Secret)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		// Past the first checkpointed batch of the walk, well before its end.
		if strings.Contains(line, "scrub progress") && strings.Contains(line, "phase=walk") && scrubObjectsIn(line) >= 12 {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			break
		}
	}
	io.Copy(io.Discard, stderr)
	cmd.Wait()
	if !killed {
		t.Fatal("the scrub ended before it could be killed")
	}

	r := runScrubCmd(t, c, "--state", state, "--report", "json", "--progress", "log")
	rep := r.report
	if r.code != 0 || rep.Resumed != 1 || rep.ResumedFrom == nil || rep.ResumedFrom.Phase != scrubber.PhaseWalk ||
		rep.ResumedFrom.Key == "" || rep.RunObjects >= n || rep.RunObjects == 0 {
		t.Fatalf("resumed scrub exit %d, report %+v", r.code, rep)
	}
	if !strings.Contains(r.stderr, "resuming pass from checkpoint") {
		t.Errorf("resumed scrub did not log its resumption:\n%s", scrubTail(r.stderr, 2000))
	}
	t.Logf("resumed at %s/%s, checked %d of %d objects", rep.ResumedFrom.Bucket, rep.ResumedFrom.Key, rep.RunObjects, rep.Objects)
	full := mustScrub(t, c, 0)
	// Same result as a full pass: every object once, every shard verified
	// once, the corrupt one found and rebuilt once.
	if rep.Objects != n || rep.ShardsVerified != 6*n || rep.ShardsCorrupt != 1 || rep.ShardsRebuilt != 1 ||
		!maps.Equal(rep.RedundancyAfter, full.Redundancy) || full.Objects != n || full.ShardsVerified != rep.ShardsVerified {
		t.Errorf("resumed pass %+v\nfull pass %+v", rep, full)
	}
	failOn(t, c, "after resumed scrub", checkAll(ctx, cl, "resume", objs))
}

// scrubObjectsIn extracts objects=N from a log line.
func scrubObjectsIn(line string) int {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "objects="); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return -1
}

// scrubShardPath is where node i keeps shard `shard` of a version, by the
// node's documented layout: shards/ab/cd/<hex blake3(bucket NUL key NUL
// version)>.<shard>.
func scrubShardPath(c *proctest.Cluster, node int, bucket, key, version string, shard int) string {
	h := blake3.Sum256([]byte(bucket + "\x00" + key + "\x00" + version))
	base := hex.EncodeToString(h[:]) + "." + strconv.Itoa(shard)
	return filepath.Join(c.NodeDir(node), "shards", base[:2], base[2:4], base)
}

// scrubFlipShard corrupts one byte of node i's committed shard of a version and
// returns the file's original bytes.
func scrubFlipShard(t *testing.T, c *proctest.Cluster, node int, bucket, key, version string, shard int) []byte {
	t.Helper()
	orig, ok := scrubFlip(t, rand.New(rand.NewPCG(1, 1)), scrubShardPath(c, node, bucket, key, version, shard), 1)
	if !ok {
		t.Fatalf("shard %d of %s/%s on node %d is empty", shard, bucket, key, node+1)
	}
	return orig
}

// scrubNodeIndex returns the index in c.Map.Nodes of the node with id.
func scrubNodeIndex(c *proctest.Cluster, id string) int {
	return slices.IndexFunc(c.Map.Nodes, func(n placement.Node) bool { return n.ID == id })
}

// TestScrubDanglingStaged leaves staged shards of a version no node
// committed, as a gateway killed between staging and committing does, and
// checks that the scrub sweeps them after the grace and the space comes
// back.
func TestScrubDanglingStaged(t *testing.T) {
	ctx := context.Background()
	c := startScrubCluster(t)
	cl := s3Client(c, 0)
	mustCreateBucket(t, ctx, cl, "dangle")

	// A gateway killed mid-PUT: the nodes drop the broken streams.
	body := &slowReader{r: newGen(9, 8<<20), trigger: 3 << 20, fired: make(chan struct{})}
	errc := make(chan error, 1)
	go func() { errc <- putObject(ctx, cl, "dangle", "killed", body, 8<<20) }()
	<-body.fired
	c.Gateways[0].Kill()
	if err := <-errc; err == nil {
		t.Fatal("PUT succeeded although its gateway was killed")
	}
	if err := c.Gateways[0].Restart(ctx); err != nil {
		t.Fatal(err)
	}
	cl = s3Client(c, 0)
	scrubWait(t, 10*time.Second, "the nodes to drop the killed PUT's streams", func() bool { return scrubStagingBytes(t, c) == 0 })
	// A gateway killed after staging every shard, before any commit.
	cd, err := codec.New(c.Map.DataShards, c.Map.ParityShards, codec.WithBlockSize(c.Map.BlockSize))
	if err != nil {
		t.Fatal(err)
	}
	bufs := make([]*bytes.Buffer, c.Map.N())
	ws := make([]io.Writer, len(bufs))
	for i := range bufs {
		bufs[i] = new(bytes.Buffer)
		ws[i] = bufs[i]
	}
	if _, err := cd.Encode(newGen(10, 1<<20), ws); err != nil {
		t.Fatal(err)
	}
	version := ulid.Make().String()
	placed := c.Map.PlaceKey("dangle", "orphan")
	var staged int64
	for i, node := range placed {
		ref, err := scrubNodeClient(c, scrubNodeIndex(c, node.ID)).Stage(ctx, "dangle", "orphan", version, i, c.Map.BlockSize, bytes.NewReader(bufs[i].Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		staged += ref.Size
	}
	if got := scrubStagingBytes(t, c); got != staged {
		t.Fatalf("staging directories hold %d bytes, want the %d staged", got, staged)
	}
	young := mustScrub(t, c, 0, "--staging-grace", "1h")
	if young.StagedAborted != 0 || scrubStagingBytes(t, c) != staged {
		t.Fatalf("young staged data was swept: %+v", young)
	}
	time.Sleep(1100 * time.Millisecond)
	rep := mustScrub(t, c, 0, "--staging-grace", "1s")
	if rep.StagedAborted != int64(len(placed)) || rep.StagedBytes != staged {
		t.Fatalf("report = %+v, want %d shards, %d bytes swept", rep, len(placed), staged)
	}
	if got := scrubStagingBytes(t, c); got != 0 {
		t.Errorf("staging directories still hold %d bytes", got)
	}
	for i := range c.Nodes {
		if l, err := scrubNodeClient(c, i).ListStaged(ctx, 0); err != nil || len(l) != 0 {
			t.Errorf("node %d staged after the sweep: %+v, %v", i+1, l, err)
		}
	}
	if _, err := getBytes(ctx, cl, "dangle", "orphan"); apiCode(err) != "NoSuchKey" {
		t.Errorf("GET of the never-committed object: %v", err)
	}
}

// scrubStagingBytes sums the sizes of the files under every node's staging/.
func scrubStagingBytes(t *testing.T, c *proctest.Cluster) int64 {
	t.Helper()
	var total int64
	for i := range c.Nodes {
		filepath.WalkDir(filepath.Join(c.NodeDir(i), "staging"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
			return nil
		})
	}
	return total
}

// TestScrubHealOnRead corrupts one shard, reads the object through the
// gateway (right bytes; the gateway files a repair hint), and lets a
// `kintsugi scrubber` daemon on a short interval consume the hint and
// rebuild the shard. Its /status and /metrics say so.
func TestScrubHealOnRead(t *testing.T) {
	ctx := context.Background()
	c := startScrubCluster(t)
	cl := s3Client(c, 0)
	mustCreateBucket(t, ctx, cl, "heal")
	data := genBytes(11, 700<<10)
	if err := putObject(ctx, cl, "heal", "obj", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	scrubBaseline(t, c)
	// Shard 0 is a data shard: the healthy read path needs it.
	node := scrubNodeIndex(c, c.Map.PlaceKey("heal", "obj")[0].ID)
	ks, err := scrubNodeClient(c, node).Stat(ctx, "heal", "obj")
	if err != nil || ks.Committed == nil || ks.Committed.Shard != 0 {
		t.Fatalf("Stat = %+v, %v", ks, err)
	}
	orig := scrubFlipShard(t, c, node, "heal", "obj", ks.Committed.Version, 0)
	path := scrubShardPath(c, node, "heal", "obj", ks.Committed.Version, 0)

	got, err := getBytes(ctx, cl, "heal", "obj")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GET with a corrupt shard: err %v, right bytes %v", err, bytes.Equal(got, data))
	}
	hinted := func() int {
		n := 0
		for i := range c.Nodes {
			hs, _ := scrubNodeClient(c, i).ListHints(ctx, 0)
			n += len(hs)
		}
		return n
	}
	scrubWait(t, 10*time.Second, "the gateway's repair hint", func() bool { return hinted() > 0 })

	d, err := proctest.Start(ctx, "scrubber", testBin, filepath.Join(c.Dir, "scrubber.log"),
		[]string{"KINTSUGI_CLUSTER_SECRET=" + c.Secret},
		"scrubber", "--cluster", c.MapFile, "--interval", "500ms", "--listen", "127.0.0.1:0", "--state", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	scrubWait(t, 30*time.Second, "the shard rebuilt and the hint consumed", func() bool {
		b, err := os.ReadFile(path)
		return err == nil && bytes.Equal(b, orig) && hinted() == 0
	})

	get := func(p string) string {
		resp, err := http.Get("http://" + d.Addr + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var st scrubber.Status
	scrubWait(t, 10*time.Second, "a finished pass in /status", func() bool {
		return json.Unmarshal([]byte(get("/status")), &st) == nil && st.LastPass != nil
	})
	metrics := get("/metrics")
	for _, line := range []string{"kintsugi_scrub_shards_rebuilt_total 1", "kintsugi_scrub_shards_corrupt_total 1",
		`kintsugi_scrub_objects{redundancy="6"} 1`, "kintsugi_scrub_oldest_unverified_seconds "} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if err := d.Stop(10 * time.Second); err != nil {
		t.Errorf("scrubber exit after SIGTERM: %v\n%s", err, d.LogTail(2000))
	}
	if got, err := getBytes(ctx, cl, "heal", "obj"); err != nil || !bytes.Equal(got, data) {
		t.Errorf("GET after heal: %v", err)
	}
}

// scrubCheckSettled is checkAll for a cluster whose nodes just changed: the
// gateway may still count a restarted node as down for a few seconds
// (its breaker), so reads that fail are retried for a while. Wrong bytes
// are never retried.
func scrubCheckSettled(ctx context.Context, cl *s3.Client, bucket string, objs []testObject) []error {
	var errs []error
	for deadline := time.Now().Add(15 * time.Second); ; {
		errs = checkAll(ctx, cl, bucket, objs)
		if len(errs) == 0 || time.Now().After(deadline) {
			return errs
		}
		for _, err := range errs {
			if strings.Contains(err.Error(), "WRONG BYTES") {
				return errs
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func scrubWait(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
