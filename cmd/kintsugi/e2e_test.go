package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
)

type testObject struct {
	key  string
	seed int64
	size int64
	sum  [32]byte
}

// randomObjects returns n objects with sizes spread log-uniformly over
// [0, max], plus the edges 0, 1 and max, so small and multi-stripe objects
// are both well represented.
func randomObjects(rng *rand.Rand, prefix string, n int, max int64) []testObject {
	objs := make([]testObject, n)
	for i := range objs {
		var size int64
		switch i {
		case 0:
			size = 0
		case 1:
			size = 1
		case 2:
			size = max
		default:
			size = int64(math.Exp(rng.Float64() * math.Log(float64(max))))
		}
		seed := rng.Int64()
		objs[i] = testObject{key: fmt.Sprintf("%s/obj-%03d", prefix, i), seed: seed, size: size, sum: genSum(seed, size)}
	}
	return objs
}

// forEach runs f over objs with the given parallelism and returns the
// errors, one per failing object.
func forEach(objs []testObject, workers int, f func(o testObject) error) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		ch   = make(chan testObject)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range ch {
				if err := f(o); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s (%d bytes): %w", o.key, o.size, err))
					mu.Unlock()
				}
			}
		}()
	}
	for _, o := range objs {
		ch <- o
	}
	close(ch)
	wg.Wait()
	return errs
}

// waitAllUp waits until gateway g's health checks see every node of c up
// again after restarts.
func waitAllUp(t *testing.T, c *proctest.Cluster, g *healthGateway) {
	t.Helper()
	for _, n := range c.Map.Nodes {
		g.waitNodeState(t, n.ID, "up", 20*time.Second)
	}
}

func putAll(ctx context.Context, cl *s3.Client, bucket string, objs []testObject) []error {
	return forEach(objs, 4, func(o testObject) error {
		return putObject(ctx, cl, bucket, o.key, newGen(o.seed, o.size), o.size)
	})
}

func checkAll(ctx context.Context, cl *s3.Client, bucket string, objs []testObject) []error {
	return forEach(objs, 4, func(o testObject) error {
		sum, n, err := getSum(ctx, cl, bucket, o.key)
		if err != nil {
			return err
		}
		if n != o.size || sum != o.sum {
			return fmt.Errorf("WRONG BYTES: got %d bytes sum %x, want %d bytes sum %x", n, sum[:4], o.size, o.sum[:4])
		}
		return nil
	})
}

func failOn(t *testing.T, c *proctest.Cluster, what string, errs []error) {
	t.Helper()
	if len(errs) == 0 {
		return
	}
	for i, err := range errs {
		if i == 10 {
			t.Errorf("... and %d more", len(errs)-10)
			break
		}
		t.Errorf("%s: %v", what, err)
	}
	t.Fatalf("%s: %d failures\n%s", what, len(errs), c.Logs())
}

// TestMultiProcessDataPath is the end-to-end check of the data path: six
// storage node processes and a gateway process, driven by the AWS SDK.
func TestMultiProcessDataPath(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test; run without -short")
	}
	ctx := context.Background()
	c := proctest.StartCluster(t, testBin, proctest.Options{})
	gw := useHealthGateways(t, c, 1)[0]
	cl := s3Client(c, 0)
	mustCreateBucket(t, ctx, cl, "data")
	rng := rand.New(rand.NewPCG(1, 2))

	objs := randomObjects(rng, "load", 200, 20<<20)
	var total int64
	for _, o := range objs {
		total += o.size
	}
	start := time.Now()
	failOn(t, c, "put", putAll(ctx, cl, "data", objs))
	t.Logf("put %d objects, %d MiB in %v", len(objs), total>>20, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	failOn(t, c, "get", checkAll(ctx, cl, "data", objs))
	t.Logf("read back %d objects in %v", len(objs), time.Since(start).Round(time.Millisecond))

	// Any two nodes dead: every object still reads back exactly. A smaller
	// set with multi-stripe objects keeps the 15 pairs quick.
	small := randomObjects(rng, "pairs", 12, 3<<20)
	failOn(t, c, "put small", putAll(ctx, cl, "data", small))
	t.Run("AnyTwoNodesDown", func(t *testing.T) {
		for i := 0; i < len(c.Nodes); i++ {
			for j := i + 1; j < len(c.Nodes); j++ {
				c.Nodes[i].Kill()
				c.Nodes[j].Kill()
				errs := checkAll(ctx, cl, "data", small)
				for _, k := range []int{i, j} {
					if err := c.Nodes[k].Restart(ctx); err != nil {
						t.Fatal(err)
					}
				}
				failOn(t, c, fmt.Sprintf("nodes %d and %d down", i+1, j+1), errs)
			}
		}
	})

	t.Run("ThreeNodesDown", func(t *testing.T) {
		for _, k := range []int{0, 2, 4} {
			c.Nodes[k].Kill()
		}
		defer func() {
			for _, k := range []int{0, 2, 4} {
				if err := c.Nodes[k].Restart(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}()
		for _, o := range small[3:6] {
			sum, n, err := getSum(ctx, cl, "data", o.key)
			if err == nil {
				if sum != o.sum || n != o.size {
					t.Fatalf("%s: WRONG BYTES with 3 nodes down", o.key)
				}
				t.Fatalf("%s: read succeeded with 3 of 6 nodes down; want 503", o.key)
			}
			if st, code := httpStatus(err), apiCode(err); st != 503 || (code != "ServiceUnavailable" && code != "SlowDown") {
				t.Fatalf("%s: got status %d code %q (%v); want 503 ServiceUnavailable", o.key, st, code, err)
			}
		}
	})

	t.Run("PutWithOneNodeDown", func(t *testing.T) {
		// Nodes restarted above are let back in by the gateway's health
		// checks within seconds; a write needs them (write quorum 5 of 6).
		waitAllUp(t, c, gw)
		c.Nodes[3].Kill()
		degraded := randomObjects(rng, "degraded", 6, 2<<20)
		errs := putAll(ctx, cl, "data", degraded)
		errs = append(errs, checkAll(ctx, cl, "data", degraded)...)
		if err := c.Nodes[3].Restart(ctx); err != nil {
			t.Fatal(err)
		}
		failOn(t, c, "degraded put", errs)
		failOn(t, c, "after restart", checkAll(ctx, cl, "data", degraded))
	})

	t.Run("RestartAllNodes", func(t *testing.T) {
		for _, n := range c.Nodes {
			n.Kill()
		}
		for _, n := range c.Nodes {
			if err := n.Restart(ctx); err != nil {
				t.Fatal(err)
			}
		}
		failOn(t, c, "after full restart", checkAll(ctx, cl, "data", objs))
		failOn(t, c, "after full restart", checkAll(ctx, cl, "data", small))
	})

	t.Run("GatewaySIGTERMExitsZero", func(t *testing.T) {
		g := c.Gateways[0]
		if err := g.Stop(30 * time.Second); err != nil {
			t.Fatalf("gateway exit after SIGTERM: %v", err)
		}
		if err := g.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s3Client(c, 0).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("data")}); err != nil {
			t.Fatal(err)
		}
	})
}
