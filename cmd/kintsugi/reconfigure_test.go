package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kintsugi-store/kintsugi/gateway"
	"github.com/kintsugi-store/kintsugi/internal/proctest"
	"github.com/kintsugi-store/kintsugi/scrubber"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// TestReconfigure adds a node, drains one and removes it while two
// gateways serve a round-robin workload: every object stays readable
// throughout, a write through one gateway reads back through the other,
// and the gateway whose cluster file is never updated (as on another host)
// learns every epoch from the nodes. A scrubber daemon re-reads the
// cluster file and rebalances after each change, showing its moves in
// `admin status --scrubber`; the drained node ends holding nothing, so a
// plain `nodes remove` takes it, and at the end every object has its n
// shards, verified, on the nodes the final map names.
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
	var reads, writes, deletes, retried atomic.Int64
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
				err := mapRetry(&retried, func() error { return putObject(ctx, a, bucket, key, newGen(o.seed, o.size), o.size) })
				if err != nil {
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
					err := mapRetry(&retried, func() error {
						_, err := a.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
						return err
					})
					if err != nil {
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
	// The rebalancer: a scrubber daemon following the cluster file.
	scrubState := filepath.Join(c.Dir, "scrub-state")
	saddr, err := proctest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	sd, err := proctest.Start(ctx, "scrubber", c.Bin, filepath.Join(c.Dir, "scrubber.log"), procEnv(c),
		"scrubber", "--cluster", c.MapFile, "--state", scrubState, "--listen", saddr, "--interval", "1h", "--map-poll", "200ms")
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	// rebalanced waits for the daemon's first whole pass under epoch.
	rebalanced := func(epoch uint64) scrubber.Status {
		t.Helper()
		var st scrubber.Status
		waitFor(t, 90*time.Second, fmt.Sprintf("a scrub pass at epoch %d", epoch), func() (bool, string) {
			var err error
			if st, err = scrubberStatus(ctx, saddr); err != nil {
				return false, err.Error()
			}
			lp := st.LastPass
			if lp == nil {
				return false, "no pass yet"
			}
			return !st.Running && lp.MapEpoch >= epoch && !lp.MapChanged,
				fmt.Sprintf("running %v, last pass at epoch %d (map changed %v)", st.Running, lp.MapEpoch, lp.MapChanged)
		})
		if lp := st.LastPass; lp.MovesFailed != 0 || lp.UnrecoverableCount != 0 {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("rebalance at epoch %d: %+v", epoch, lp)
		}
		return st
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
	st := rebalanced(2)
	lp := st.LastPass
	if lp.MovesDone == 0 || lp.MovesPlanned < lp.MovesDone {
		t.Fatalf("no shard moved to n8: %+v", lp)
	}
	if h, err := client.New(addr, &client.Options{Secret: []byte(c.Secret)}).Health(ctx); err != nil || h.Objects == 0 {
		t.Fatalf("n8 after the rebalance: %+v, %v", h, err)
	}
	out := admin("status", "--scrubber", saddr)
	for _, want := range []string{
		"scrubber: map epoch 2\n",
		fmt.Sprintf("  its rebalance: %d of %d shard moves done (%s moved), 0 failed, ", lp.MovesDone, lp.MovesPlanned, sizeStr(lp.BytesMoved)),
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	traffic(time.Second)

	// Drain n3; removing it is refused while it holds shards.
	n3 := scrubNodeClient(c, scrubNodeIndex(c, "n3"))
	admin("nodes", "drain", "n3")
	waitAll(3)
	traffic(time.Second)
	out, err = runAdminProc(t, c, "nodes", "remove", "n3")
	if err == nil || !strings.Contains(out, "n3 still holds") {
		t.Fatalf("remove of an undrained node: %v\n%s", err, out)
	}
	drain := rebalanced(3).LastPass
	if drain.MovesDone == 0 {
		t.Fatalf("no shard moved off n3: %+v", drain)
	}
	// Keys the workload rewrote while the pass checked them may still
	// have an older copy on n3: further passes (one scrubber at a time)
	// drop them.
	if err := sd.Stop(10 * time.Second); err != nil {
		t.Fatalf("scrubber daemon: %v", err)
	}
	for pass := 0; ; pass++ {
		h, err := n3.Health(ctx)
		if err == nil && h.Objects == 0 {
			break
		}
		if pass == 8 {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("n3 after %d more passes: %+v, %v", pass, h, err)
		}
		runScrubCmd(t, c, "--state", scrubState, "--progress", "none")
	}

	// Drained: a plain remove takes it.
	admin("nodes", "remove", "n3")
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
	if out := admin("status"); !strings.Contains(out, "epoch 4,") || !strings.Contains(out, "7 active, 0 draining, 1 removed") {
		t.Fatalf("status after the changes:\n%s", out)
	}

	// Redundancy is back at n: a pass settles what the last writes left
	// (a write a gateway took degraded, a stray copy), and the next finds
	// every object with its n shards verified on the nodes the map names.
	mustScrub(t, c, 0)
	rep := mustScrub(t, c, 0)
	n := c.Map.N()
	if rep.Objects != int64(len(objs)) || !maps.Equal(rep.Redundancy, map[int]int64{n: rep.Objects}) ||
		rep.MovesPlanned != 0 || rep.ShardsRebuilt != 0 || rep.CopiesDropped != 0 || rep.MapEpoch != 4 || !rep.Healthy() {
		t.Fatalf("final scrub: %+v; want %d objects at redundancy %d, in place", rep, len(objs), n)
	}
	t.Logf("during the changes: %d writes, %d deletes, %d reads, no failure (%d tried again after a map change); "+
		"%d objects verified through both gateways; shards moved: %d to n8, %d off n3",
		writes.Load(), deletes.Load(), reads.Load(), retried.Load(), len(objs),
		st.LastPass.MovesDone, drain.MovesDone)
}

// scrubberStatus fetches a scrubber daemon's /status.
func scrubberStatus(ctx context.Context, addr string) (scrubber.Status, error) {
	return scrubberStatusVia(ctx, http.DefaultClient, addr)
}

// scrubberStatusVia fetches a scrubber daemon's /status with hc.
func scrubberStatusVia(ctx context.Context, hc *http.Client, addr string) (scrubber.Status, error) {
	var st scrubber.Status
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("scrubber status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// mapRetry runs a write, and runs it again (twice at most) while it
// answers that the cluster map changed during it: a write whose commit
// some node took under the old map while others refused it under the new
// one is not run again by the gateway, since it may already be visible
// (docs/ordering.md, "Running a write again"), and it answers 503 for the
// client to retry, as the SDKs do by default. Each retry is counted in n.
func mapRetry(n *atomic.Int64, write func() error) error {
	err := write()
	for try := 0; try < 2 && apiMessage(err) == gateway.MapChangedMessage; try++ {
		n.Add(1)
		err = write()
	}
	return err
}
