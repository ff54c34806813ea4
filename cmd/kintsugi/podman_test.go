package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
)

// TestPodmanReplace runs the image as a cluster of containers under podman
// (six storage nodes and a gateway, host networking, each on its own
// loopback port and its own volume) and replaces them as an operator
// would: it writes objects with the aws cli, kills a node and reads them
// all back, replaces that node with a container of a rebuilt image carrying
// another version stamp on the same volume and checks every object byte
// for byte with two other nodes down, then replaces the gateway the same
// way while a client keeps reading, and reports the reads that failed in
// the swap.
//
// It builds images and needs a podman that can run containers, so it runs
// from `make test-image` (KINTSUGI_IMAGE_TEST=1), which CI runs after `make
// test`. When podman or the aws cli cannot run it is skipped with a loud
// message, except under CI=true, where it fails.
func TestPodmanReplace(t *testing.T) {
	if os.Getenv("KINTSUGI_IMAGE_TEST") == "" {
		t.Skip("container test: run it with `make test-image`")
	}
	ci := os.Getenv("CI") == "true"
	unavailable := func(what, fix string) {
		t.Helper()
		msg := "\n\n" + strings.Repeat("*", 72) + "\n*** " + what + ": the container test did NOT run.\n*** " + fix + "\n" + strings.Repeat("*", 72) + "\n"
		if ci {
			t.Fatal(msg + "*** CI=true: the container test is required.")
		}
		t.Skip(msg)
	}
	if _, err := exec.LookPath("podman"); err != nil {
		unavailable("podman is not installed", "Install it with: apt-get install -y podman runc")
	}
	if _, err := exec.LookPath("aws"); err != nil {
		unavailable("the aws cli is not installed", "Install it with: apt-get install -y awscli")
	}
	start := time.Now()
	p := newPodman(t)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}

	// Two images of the same tree with different version stamps: the
	// "old" release the cluster starts on and the "new" one it is
	// replaced with.
	imgA, imgB := p.prefix+"-img:a", p.prefix+"-img:b"
	for _, img := range []string{imgA, imgB} {
		name, tag, _ := strings.Cut(img, ":")
		t0 := time.Now()
		cmd := exec.Command("make", "-C", root, "image", "IMAGE="+name, "VERSION="+p.prefix+"-"+tag,
			"IMAGE_TAG="+tag, "IMAGE_CONTEXT="+filepath.Join(t.TempDir(), "context"), "CONTAINER=podman",
			"IMAGE_BUILD_FLAGS=--layers=false") // leaves no intermediate images behind
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make image: %v\n%s", err, out)
		}
		p.images = append(p.images, img, name+":latest")
		t.Logf("built %s in %v", img, time.Since(t0).Round(100*time.Millisecond))
	}
	if out, err := p.run("run", "--rm", imgA, "version"); err != nil {
		unavailable("podman cannot run containers here ("+strings.TrimSpace(out)+")",
			"Check `podman --runtime runc --cgroup-manager=cgroupfs run --rm IMAGE version`; set KINTSUGI_PODMAN_FLAGS for other global flags.")
	} else if !strings.HasPrefix(out, "kintsugi "+p.prefix+"-a ") {
		t.Fatalf("image a says %q, want version %s-a", out, p.prefix)
	}

	// Six nodes and a gateway, each on a loopback port of its own.
	const secret = "podman-test-cluster-secret"
	ak, sk := "podman-ak", "podman-test-secret-key"
	dir := t.TempDir()
	var mapYAML strings.Builder
	mapYAML.WriteString("epoch: 1\ndata_shards: 4\nparity_shards: 2\nnodes:\n")
	nodes := make([]string, 6) // listen addresses
	for i := range nodes {
		if nodes[i], err = proctest.FreePort(); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&mapYAML, "  - {id: n%d, addr: %q, zone: z%d}\n", i+1, nodes[i], i+1)
	}
	mapFile := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(mapFile, []byte(mapYAML.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	gwAddr, err := proctest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"-e", "KINTSUGI_CLUSTER_SECRET=" + secret}
	startNode := func(i int, img string) {
		t.Helper()
		name := fmt.Sprintf("%s-n%d", p.prefix, i+1)
		p.containers[name] = true
		args := append([]string{"run", "-d", "--name", name, "-v", p.volume(fmt.Sprintf("n%d", i+1)) + ":/data"}, env...)
		args = append(args, img, "storagenode", "--id", fmt.Sprintf("n%d", i+1), "--listen", nodes[i], "--data", "/data")
		if out, err := p.run(args...); err != nil {
			t.Fatalf("start node %d: %v: %s", i+1, err, out)
		}
	}
	startGateway := func(img string) {
		t.Helper()
		name := p.prefix + "-gw"
		p.containers[name] = true
		args := append([]string{"run", "-d", "--name", name, "-v", mapFile + ":/etc/kintsugi/cluster.yaml:ro",
			"-e", "KINTSUGI_ACCESS_KEY=" + ak, "-e", "KINTSUGI_SECRET_KEY=" + sk}, env...)
		args = append(args, img, "gateway", "--listen", gwAddr, "--cluster", "/etc/kintsugi/cluster.yaml")
		if out, err := p.run(args...); err != nil {
			t.Fatalf("start gateway: %v: %s", err, out)
		}
	}
	for i := range nodes {
		startNode(i, imgA)
	}
	// The first wait goes through `kintsugi probe` inside the container,
	// as a container health check would run it.
	for i := range nodes {
		p.waitReady(t, fmt.Sprintf("%s-n%d", p.prefix, i+1), nodes[i], true)
	}
	startGateway(imgA)
	p.waitReady(t, p.prefix+"-gw", gwAddr, true)
	t.Logf("cluster of 7 containers up after %v", time.Since(start).Round(100*time.Millisecond))

	// Objects of several sizes, the largest a multipart upload, written
	// with the aws cli.
	src := filepath.Join(dir, "src")
	sizes := []int64{1, 4 << 10, 100 << 10, 1<<20 + 7, 3 << 20, 9<<20 + 123}
	want := map[string][32]byte{}
	os.MkdirAll(src, 0o755)
	for i, size := range sizes {
		key := fmt.Sprintf("obj-%d.bin", i)
		b := genBytes(int64(100+i), size)
		want[key] = sha256.Sum256(b)
		if err := os.WriteFile(filepath.Join(src, key), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	awsCLI := func(args ...string) {
		t.Helper()
		cmd := exec.Command("aws", append([]string{"--endpoint-url", "http://" + gwAddr}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+ak, "AWS_SECRET_ACCESS_KEY="+sk,
			"AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true",
			"AWS_CONFIG_FILE="+filepath.Join(dir, "aws-config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "aws-credentials"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// readAll downloads the bucket with the aws cli and compares every
	// object with what was written.
	round := 0
	readAll := func(what string) {
		t.Helper()
		round++
		out := filepath.Join(dir, fmt.Sprintf("read-%d", round))
		awsCLI("s3", "cp", "--recursive", "--only-show-errors", "s3://containers/", out)
		for key, sum := range want {
			b, err := os.ReadFile(filepath.Join(out, key))
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if sha256.Sum256(b) != sum {
				t.Fatalf("%s: %s differs from what was written", what, key)
			}
		}
		t.Logf("%s: all %d objects exact (%v)", what, len(want), time.Since(start).Round(100*time.Millisecond))
	}
	awsCLI("s3", "mb", "s3://containers")
	awsCLI("s3", "cp", "--recursive", "--only-show-errors", src, "s3://containers/")
	readAll("written")

	// A node dies: reads go on.
	n3 := p.prefix + "-n3"
	if out, err := p.run("kill", n3); err != nil {
		t.Fatalf("kill %s: %v: %s", n3, err, out)
	}
	p.run("wait", n3)
	readAll("node 3 killed")

	// It comes back as a container of the new image on the same volume.
	if out, err := p.run("rm", "-v", n3); err != nil {
		t.Fatalf("rm %s: %v: %s", n3, err, out)
	}
	startNode(2, imgB)
	p.waitReady(t, n3, nodes[2], false)
	if out, _ := p.run("exec", n3, "/kintsugi", "version"); !strings.HasPrefix(out, "kintsugi "+p.prefix+"-b ") {
		t.Fatalf("replaced node 3 runs %q, want version %s-b", out, p.prefix)
	}
	// With two other nodes stopped, every object needs node 3's shards:
	// the new container serves what the old one stored.
	for _, n := range []string{"-n1", "-n2"} {
		if out, err := p.run("stop", "-t", "10", p.prefix+n); err != nil {
			t.Fatalf("stop: %v: %s", err, out)
		}
	}
	readAll("node 3 replaced, nodes 1 and 2 stopped")
	for i, n := range []string{"-n1", "-n2"} {
		if out, err := p.run("start", p.prefix+n); err != nil {
			t.Fatalf("start: %v: %s", err, out)
		}
		p.waitReady(t, p.prefix+n, nodes[i], false)
	}

	// The gateway is replaced by one of the new image while a client
	// keeps reading.
	cl := s3.New(s3.Options{
		BaseEndpoint:     aws.String("http://" + gwAddr),
		Region:           "us-east-1",
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider(ak, sk, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Timeout: 10 * time.Second},
	})
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	type result struct {
		start, end time.Time
		err        error
	}
	var (
		mu      sync.Mutex
		results []result
	)
	rctx, stopReading := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; rctx.Err() == nil; i++ {
			key := keys[i%len(keys)]
			r := result{start: time.Now()}
			b, err := getBytes(rctx, cl, "containers", key)
			if err == nil && sha256.Sum256(b) != want[key] {
				t.Errorf("read of %s during the gateway swap returned other bytes", key)
			}
			r.end, r.err = time.Now(), err
			if rctx.Err() != nil {
				return
			}
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
			if err != nil {
				time.Sleep(20 * time.Millisecond) // no hot loop on refused connections
			}
		}
	})
	time.Sleep(2 * time.Second)
	swapStart := time.Now()
	gw := p.prefix + "-gw"
	if out, err := p.run("stop", "-t", "30", gw); err != nil {
		t.Fatalf("stop gateway: %v: %s", err, out)
	}
	p.run("rm", "-v", gw)
	startGateway(imgB)
	p.waitReady(t, gw, gwAddr, false)
	swapEnd := time.Now()
	time.Sleep(2 * time.Second)
	stopReading()
	wg.Wait()
	if out, _ := p.run("exec", gw, "/kintsugi", "version"); !strings.HasPrefix(out, "kintsugi "+p.prefix+"-b ") {
		t.Fatalf("replaced gateway runs %q, want version %s-b", out, p.prefix)
	}
	var ok, inWindow, outside int
	for _, r := range results {
		switch {
		case r.err == nil:
			ok++
		case r.end.After(swapStart) && r.start.Before(swapEnd):
			inWindow++
		default:
			outside++
			t.Errorf("read failed outside the swap window (%v..%v): %v", r.start.Format(time.StampMilli), r.end.Format(time.StampMilli), r.err)
		}
	}
	t.Logf("gateway swap took %v; %d reads during the test: %d exact, %d failed in the swap window, %d failed outside it",
		swapEnd.Sub(swapStart).Round(time.Millisecond), len(results), ok, inWindow, outside)
	if ok == 0 {
		t.Error("no read succeeded while the gateway was replaced")
	}
	readAll("gateway replaced")
	t.Logf("container test took %v", time.Since(start).Round(100*time.Millisecond))
}

// podmanRun drives podman for one test: the containers, volumes and images
// it creates, all named with one random prefix, are removed at the end.
type podmanRun struct {
	t          *testing.T
	prefix     string
	flags      []string // global flags, before the command
	runFlags   []string // flags of every podman run
	containers map[string]bool
	volumes    []string
	images     []string
}

func newPodman(t *testing.T) *podmanRun {
	// Debian's podman 4.3 starts containers reliably with runc and
	// cgroupfs; KINTSUGI_PODMAN_FLAGS replaces these global flags.
	flags := strings.Fields("--runtime runc --cgroup-manager=cgroupfs")
	if f, ok := os.LookupEnv("KINTSUGI_PODMAN_FLAGS"); ok {
		flags = strings.Fields(f)
	}
	// runc refuses rlimits above the caller's, and podman's defaults can
	// be above them; the number of processes is per user (every container
	// runs as 65532), so a few thousand is plenty.
	var nofile, nproc syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
	syscall.Getrlimit(6 /* RLIMIT_NPROC */, &nproc)
	nf, np := min(nofile.Cur, 1<<20), min(nproc.Cur, 4096)
	p := &podmanRun{
		t:      t,
		prefix: "kintsugi-test-" + randomToken(3),
		flags:  flags,
		runFlags: []string{"--network", "host",
			"--ulimit", fmt.Sprintf("nofile=%d:%d", nf, nf), "--ulimit", fmt.Sprintf("nproc=%d:%d", np, np)},
		containers: map[string]bool{},
	}
	t.Cleanup(p.cleanup)
	return p
}

// run runs podman with args and returns its combined output.
func (p *podmanRun) run(args ...string) (string, error) {
	full := append(slices.Clone(p.flags), args[0])
	if args[0] == "run" {
		full = append(full, p.runFlags...)
	}
	full = append(full, args[1:]...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "podman", full...).CombinedOutput()
	return string(out), err
}

// volume returns the name of the test's volume for name, created on first
// use by podman run.
func (p *podmanRun) volume(name string) string {
	v := p.prefix + "-" + name
	for _, have := range p.volumes {
		if have == v {
			return v
		}
	}
	p.volumes = append(p.volumes, v)
	return v
}

// waitReady waits until the container's listener at addr answers
// /readyz: through `kintsugi probe` run inside it, or from the host.
func (p *podmanRun) waitReady(t *testing.T, name, addr string, inside bool) {
	t.Helper()
	url := "http://" + addr + "/readyz"
	deadline := time.Now().Add(60 * time.Second)
	for {
		var err error
		if inside {
			var out string
			if out, err = p.run("exec", name, "/kintsugi", "probe", "--url", url, "--timeout", "1s"); err != nil {
				err = fmt.Errorf("%v: %s", err, strings.TrimSpace(out))
			}
		} else {
			var resp *http.Response
			if resp, err = (&http.Client{Timeout: time.Second}).Get(url); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("%s", resp.Status)
				}
			}
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			logs, _ := p.run("logs", name)
			t.Fatalf("%s not ready at %s: %v\n%s", name, url, err, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *podmanRun) cleanup() {
	var names []string
	for name := range p.containers {
		names = append(names, name)
		if p.t.Failed() {
			if logs, err := p.run("logs", "--tail", "40", name); err == nil {
				p.t.Logf("logs of %s:\n%s", name, logs)
			}
		}
	}
	if len(names) > 0 {
		if out, err := p.run(append([]string{"rm", "-f", "-v", "-t", "0"}, names...)...); err != nil {
			p.t.Logf("podman rm: %v: %s", err, out)
		}
	}
	if len(p.volumes) > 0 {
		if out, err := p.run(append([]string{"volume", "rm", "-f"}, p.volumes...)...); err != nil {
			p.t.Logf("podman volume rm: %v: %s", err, out)
		}
	}
	if len(p.images) > 0 {
		if out, err := p.run(append([]string{"rmi", "-f"}, p.images...)...); err != nil && !bytes.Contains([]byte(out), []byte("image not known")) {
			p.t.Logf("podman rmi: %v: %s", err, out)
		}
	}
}
