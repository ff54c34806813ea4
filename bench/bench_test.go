package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// End-to-end benchmarks: the real AWS SDK client against a gateway and 6
// storage nodes (4+2) over loopback HTTP, all in this process. Each
// sub-benchmark is named <size>/c<concurrency>, moves b.N objects with
// that many requests in flight, and reports MB/s, allocations (of the
// whole process: client, gateway and nodes) and its efficiency against the
// pipeline bound (see bound_test.go).
//
// 256 MiB objects run only when -bench names them (-bench 'Put/256MiB')
// or KINTSUGI_BENCH_HUGE=1: each takes seconds and a quarter GiB per
// request in flight on the client.

type benchSize struct {
	name string
	n    int
}

var benchConcurrency = []int{1, 8, 32}

func benchSizes() []benchSize {
	sizes := []benchSize{{"4KiB", 4 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}, {"16MiB", 16 << 20}}
	if hugeWanted() {
		sizes = append(sizes, benchSize{"256MiB", 256 << 20})
	}
	return sizes
}

func hugeWanted() bool {
	if os.Getenv("KINTSUGI_BENCH_HUGE") == "1" {
		return true
	}
	f := flag.Lookup("test.bench")
	return f != nil && strings.Contains(f.Value.String(), "256MiB")
}

// benchPayload returns size bytes of generator content (incompressible,
// the same for every key of that size).
func benchPayload(size int) []byte {
	p := make([]byte, size)
	NewSource(DefaultSeed).Object("bench-payload", int64(size)).fill(p, 0)
	return p
}

// benchClient returns an S3 client configured as the load generator's.
func benchClient(tb testing.TB, endpoint, accessKey, secretKey string) *s3.Client {
	cfg := Config{Endpoint: endpoint, AccessKey: accessKey, SecretKey: secretKey, Workload: WorkloadPut, Concurrency: 32}
	if err := cfg.validate(); err != nil {
		tb.Fatal(err)
	}
	c := newS3Client(&cfg)
	if err := ensureBucket(context.Background(), c, "bench"); err != nil {
		tb.Fatal(err)
	}
	return c
}

// parallel runs op(worker, i) for i in [0, b.N) on conc goroutines,
// timing only that. With KINTSUGI_BENCH_PROFILE=DIR it also profiles only
// that (not the cluster start or the objects written for GETs), into
// DIR/<benchmark>.cpu, DIR/<benchmark>.allocs with its baseline
// DIR/<benchmark>.allocs.base, and an execution trace DIR/<benchmark>.trace
// (where the time goes off the CPU: fsync, network, locks):
//
//	go tool pprof -top bench.test DIR/Put-1MiB-c8.cpu
//	go tool pprof -sample_index=alloc_space -base DIR/Put-1MiB-c8.allocs.base bench.test DIR/Put-1MiB-c8.allocs
//	go tool trace -pprof=syscall DIR/Put-1MiB-c8.trace > syscall.pprof
func parallel(b *testing.B, cpu func() time.Duration, conc int, op func(w, i int) error) (cpuPerOp time.Duration) {
	var next atomic.Int64
	var wg sync.WaitGroup
	stop := startProfile(b)
	defer stop()
	cpu0 := cpu()
	b.ResetTimer()
	for w := range conc {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if err := op(w, int(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	// CPU time per operation, of the client, the gateway and the nodes,
	// is the figure that survives a busy machine: wall time is shared with
	// every other process, CPU time is not.
	cpuPerOp = (cpu() - cpu0) / time.Duration(b.N)
	b.ReportMetric(float64(cpuPerOp)/1e3, "cpu-us/op")
	return cpuPerOp
}

// processCPU returns the user plus system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// target is what end-to-end benchmarks run against.
type target struct {
	client *s3.Client
	// cpu returns the CPU time used so far by the client and every process
	// of the cluster.
	cpu func() time.Duration
}

// inProcess is the target of an in-process cluster.
func inProcess(b *testing.B, c *cluster) target {
	return target{client: benchClient(b, c.URL, testAccessKey, testSecretKey), cpu: processCPU}
}

func BenchmarkPut(b *testing.B) {
	benchPuts(b, inProcess(b, startCluster(b)), benchSizes(), benchConcurrency)
}

// BenchmarkPutLocalNodes is BenchmarkPut with the nodes called in
// process, the shape of `kintsugi dev` and `kintsugi server`.
func BenchmarkPutLocalNodes(b *testing.B) {
	benchPuts(b, inProcess(b, startLocalCluster(b)), benchSizes(), benchConcurrency)
}

func benchPuts(b *testing.B, t target, sizes []benchSize, concs []int) {
	ctx := context.Background()
	for _, sz := range sizes {
		data := benchPayload(sz.n)
		for _, conc := range concs {
			b.Run(fmt.Sprintf("%s/c%d", sz.name, conc), func(b *testing.B) {
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				cpu := parallel(b, t.cpu, conc, func(_, i int) error {
					_, err := t.client.PutObject(ctx, &s3.PutObjectInput{
						Bucket:        aws.String("bench"),
						Key:           aws.String(fmt.Sprintf("put/%s/c%d/%d", sz.name, conc, i)),
						Body:          bytes.NewReader(data),
						ContentLength: aws.Int64(int64(sz.n)),
					})
					return err
				})
				reportEfficiency(b, "put", sz.n, conc, cpu)
			})
		}
	}
}

func BenchmarkGet(b *testing.B) {
	t := inProcess(b, startCluster(b))
	sizes := benchSizes()
	putGetObjects(b, t, sizes)
	benchGets(b, t, sizes, benchConcurrency)
}

// BenchmarkGetLocalNodes is BenchmarkGet with the nodes called in process.
func BenchmarkGetLocalNodes(b *testing.B) {
	t := inProcess(b, startLocalCluster(b))
	sizes := benchSizes()
	putGetObjects(b, t, sizes)
	benchGets(b, t, sizes, benchConcurrency)
}

// BenchmarkGetDegraded is BenchmarkGet with p = 2 of the 6 nodes down:
// every object has lost two shards, data or parity depending on its
// placement, so some stripes are served by Reed-Solomon reconstruction.
func BenchmarkGetDegraded(b *testing.B) {
	c := startCluster(b)
	t := inProcess(b, c)
	sizes := benchSizes()
	putGetObjects(b, t, sizes)
	c.stopNodes(2)
	benchGets(b, t, sizes, benchConcurrency)
}

// getObjects is how many objects of a size a GET benchmark reads in turn:
// enough that requests in flight rarely share one, few enough that
// writing them stays quick.
func getObjects(size int) int {
	return min(32, max(2, (256<<20)/size))
}

func getKey(sz benchSize, i int) string { return fmt.Sprintf("get/%s/%d", sz.name, i%getObjects(sz.n)) }

// putGetObjects writes the objects the GET benchmarks read.
func putGetObjects(b *testing.B, t target, sizes []benchSize) {
	ctx := context.Background()
	for _, sz := range sizes {
		data := benchPayload(sz.n)
		for i := range getObjects(sz.n) {
			_, err := t.client.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String("bench"), Key: aws.String(getKey(sz, i)),
				Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(sz.n)),
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func benchGets(b *testing.B, t target, sizes []benchSize, concs []int) {
	ctx := context.Background()
	for _, sz := range sizes {
		data := benchPayload(sz.n)
		get := func(buf []byte, i int) error {
			out, err := t.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bench"), Key: aws.String(getKey(sz, i))})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			v := &sameBytes{want: data}
			if _, err := io.CopyBuffer(v, out.Body, buf); err != nil {
				return fmt.Errorf("%s: %w", getKey(sz, i), err)
			}
			if v.off != len(data) {
				return fmt.Errorf("%s: %d bytes, want %d", getKey(sz, i), v.off, len(data))
			}
			return nil
		}
		// Read each object once untimed: it must be there and intact, and
		// the nodes' breakers learn which peers are down.
		buf := make([]byte, 256<<10)
		for i := range getObjects(sz.n) {
			if err := get(buf, i); err != nil {
				b.Fatal(err)
			}
		}
		for _, conc := range concs {
			b.Run(fmt.Sprintf("%s/c%d", sz.name, conc), func(b *testing.B) {
				bufs := make([][]byte, conc)
				for i := range bufs {
					bufs[i] = make([]byte, 256<<10)
				}
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				cpu := parallel(b, t.cpu, conc, func(w, i int) error { return get(bufs[w], i) })
				reportEfficiency(b, "get", sz.n, conc, cpu)
			})
		}
	}
}

// sameBytes is a writer that fails unless it is written exactly want.
type sameBytes struct {
	want []byte
	off  int
}

func (s *sameBytes) Write(p []byte) (int, error) {
	if len(p) > len(s.want)-s.off || !bytes.Equal(p, s.want[s.off:s.off+len(p)]) {
		return 0, fmt.Errorf("body differs from what was written, at or after byte %d", s.off)
	}
	s.off += len(p)
	return len(p), nil
}

// startProfile starts the CPU profile of the timed part of b if
// KINTSUGI_BENCH_PROFILE names a directory, and returns what stops it.
// Every run of b overwrites the files, so they hold the last (longest).
func startProfile(b *testing.B) (stop func()) {
	dir := os.Getenv("KINTSUGI_BENCH_PROFILE")
	if dir == "" {
		return func() {}
	}
	name := filepath.Join(dir, strings.ReplaceAll(strings.TrimPrefix(b.Name(), "Benchmark"), "/", "-"))
	writeHeap := func(path string) {
		runtime.GC() // the allocation profile is only current as of the last GC
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
	}
	writeHeap(name + ".allocs.base")
	cpu, err := os.Create(name + ".cpu")
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		b.Fatal(err) // e.g. -cpuprofile given as well
	}
	tr, err := os.Create(name + ".trace")
	if err != nil {
		b.Fatal(err)
	}
	if err := trace.Start(tr); err != nil {
		b.Fatal(err) // e.g. -trace given as well
	}
	return func() {
		trace.Stop()
		tr.Close()
		pprof.StopCPUProfile()
		cpu.Close()
		writeHeap(name + ".allocs")
	}
}
