package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
)

// TestReconfigure adds a node, drains one and removes it while two
// gateways serve a round-robin workload: every object stays readable
// throughout, a write through one gateway reads back through the other,
// and the gateway whose cluster file is never updated (as on another host)
// learns every epoch from the nodes.
//
// Moving shards to their new homes (and so redundancy back at n after the
// removal) is the rebalancer's job, in the scrubber; this test asserts
// readability and consistency only.
func TestReconfigure(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test; run without -short")
	}
	ctx := context.Background()
	c := proctest.StartCluster(t, testBin, proctest.Options{Nodes: 7})
	stale := filepath.Join(c.Dir, "stale-cluster.yaml")
	copyFile(t, c.MapFile, stale)
	gws := useHealthGateways(t, c, 2, c.MapFile, stale)
	defer func() {
		if t.Failed() {
			t.Log(c.Logs())
		}
	}()
	cls := []*s3.Client{s3Client(c, 0), s3Client(c, 1)}
	const bucket = "reconf"
	mustCreateBucket(t, ctx, cls[0], bucket)

	// Objects written before any change, read throughout.
	type obj struct {
		seed, size int64
	}
	pre := map[string]obj{} // not modified once the workload runs
	for i := range 40 {
		key := fmt.Sprintf("pre-%d", i)
		o := obj{int64(i), int64(64<<10 + i*23<<10)}
		if err := putObject(ctx, cls[i%2], bucket, key, newGen(o.seed, o.size), o.size); err != nil {
			t.Fatal(err)
		}
		pre[key] = o
	}
	var mu sync.Mutex
	objs := map[string]obj{} // written by the workload

	// The workload: write through one gateway, read through the other;
	// read the old objects round-robin.
	var stop atomic.Bool
	var reads, writes, deletes atomic.Int64
	errc := make(chan error, 100)
	report := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				a, b := cls[i%2], cls[(i+1)%2]
				key := fmt.Sprintf("w%d-%d", w, i%15)
				o := obj{int64(1000*w + i), int64(16<<10 + (i%7)*50<<10)}
				if err := putObject(ctx, a, bucket, key, newGen(o.seed, o.size), o.size); err != nil {
					report(fmt.Errorf("put %s: %w", key, err))
					continue
				}
				writes.Add(1)
				sum, _, err := getSum(ctx, b, bucket, key)
				if err != nil || sum != genSum(o.seed, o.size) {
					report(fmt.Errorf("get %s through the other gateway after its put: %v", key, err))
				}
				mu.Lock()
				objs[key] = o
				mu.Unlock()
				if i%5 == 4 {
					if _, err := a.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
						report(fmt.Errorf("delete %s: %w", key, err))
						continue
					}
					deletes.Add(1)
					mu.Lock()
					delete(objs, key)
					mu.Unlock()
					if _, _, err := getSum(ctx, b, bucket, key); apiCode(err) != "NoSuchKey" {
						report(fmt.Errorf("get %s through the other gateway after its delete: %v", key, err))
					}
				}
				pk := fmt.Sprintf("pre-%d", i%40)
				po := pre[pk]
				if sum, _, err := getSum(ctx, b, bucket, pk); err != nil || sum != genSum(po.seed, po.size) {
					report(fmt.Errorf("get %s: %v", pk, err))
				}
				reads.Add(1)
			}
		})
	}
	traffic := func(d time.Duration) {
		t.Helper()
		time.Sleep(d)
		select {
		case err := <-errc:
			stop.Store(true)
			wg.Wait()
			t.Fatal(err)
		default:
		}
	}
	admin := func(args ...string) string {
		t.Helper()
		out, err := runAdminProc(t, c, args...)
		if err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("admin %v: %v\n%s", args, err, out)
		}
		return out
	}
	waitAll := func(epoch uint64) {
		t.Helper()
		for _, g := range gws {
			g.waitEpoch(t, epoch, 15*time.Second)
		}
	}
	traffic(time.Second)

	// Add n8.
	addr, err := proctest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	n8, err := proctest.Start(ctx, "node n8", c.Bin, filepath.Join(c.Dir, "n8.log"), procEnv(c),
		"storagenode", "--id", "n8", "--listen", addr, "--data", filepath.Join(c.Dir, "n8"))
	if err != nil {
		t.Fatal(err)
	}
	c.Nodes = append(c.Nodes, n8)
	admin("nodes", "add", "--id", "n8", "--addr", addr, "--zone", "z8")
	waitAll(2)
	for _, g := range gws {
		g.waitNodeState(t, "n8", "up", 10*time.Second)
	}
	traffic(time.Second)

	// Drain n3; removing it is refused while it holds shards.
	admin("nodes", "drain", "n3")
	waitAll(3)
	traffic(time.Second)
	out, err := runAdminProc(t, c, "nodes", "remove", "n3")
	if err == nil || !strings.Contains(out, "n3 still holds") {
		t.Fatalf("remove of an undrained node: %v\n%s", err, out)
	}

	// Without a rebalancer here, remove it by force and stop it.
	admin("nodes", "remove", "n3", "--force")
	waitAll(4)
	nodeProc(c, "n3").Kill()
	traffic(2 * time.Second)
	stop.Store(true)
	wg.Wait()
	traffic(0)

	// Every object reads back exact through both gateways.
	for key, o := range pre {
		objs[key] = o
	}
	for key, o := range objs {
		for i, cl := range cls {
			if sum, _, err := getSum(ctx, cl, bucket, key); err != nil || sum != genSum(o.seed, o.size) {
				t.Fatalf("final get %s through gateway %d: %v", key, i, err)
			}
		}
	}
	st := admin("status")
	if !strings.Contains(st, "epoch 4,") || !strings.Contains(st, "7 active, 0 draining, 1 removed") {
		t.Fatalf("status after the changes:\n%s", st)
	}
	t.Logf("during the changes: %d writes, %d deletes, %d reads, no failure; %d objects verified through both gateways",
		writes.Load(), deletes.Load(), reads.Load(), len(objs))
}
