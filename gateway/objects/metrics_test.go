package objects

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// TestProtocolMetrics: a read that needs parity counts as degraded, a
// write refused for lack of a quorum as a quorum failure, and a healthy
// read or write as neither.
func TestProtocolMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := newCluster(t, 6, 4, 2, noPreload, func(cfg *Config) { cfg.Registerer = reg })
	m := c.s.metrics
	val := func(c prometheus.Counter) float64 {
		var d dto.Metric
		if err := c.Write(&d); err != nil {
			t.Fatal(err)
		}
		return d.GetCounter().GetValue()
	}
	count := func() [4]float64 {
		return [4]float64{val(m.degradedReads), val(m.quorumFailures), val(m.raisedParity), val(m.rollForwards)}
	}
	data := payload(4*testBlock+17, 3)
	c.put("k", data)
	c.mustGet("k", data)
	if got := count(); got != [4]float64{} {
		t.Fatalf("after a healthy put and get: %v, want zeros", got)
	}

	c.shardNode("k", 0).SetDown("*", true)
	c.mustGet("k", data)
	if got := count(); got != [4]float64{1, 0, 0, 0} {
		t.Fatalf("after a read with a data shard's node down: %v, want one degraded read", got)
	}
	c.shardNode("k", 0).SetDown("*", false)

	for _, i := range []int{1, 3, 4} {
		c.shardNode("q", i).Edit(func(n *nodetest.State) { n.StageErr = fmt.Errorf("disk full") })
	}
	if _, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "q", Size: 5, Body: strings.NewReader("hello")}); err == nil {
		t.Fatal("put without a stage quorum succeeded")
	}
	if got := count(); got != [4]float64{1, 1, 0, 0} {
		t.Fatalf("after a put without a stage quorum: %v, want one quorum failure", got)
	}
	if mfs, err := reg.Gather(); err != nil || len(mfs) != 6 {
		t.Fatalf("registry holds %d families (%v), want the 6 counters", len(mfs), err)
	}
}

// TestRaisedParityMetric: a write taken while one of its nodes is known
// down raises its parity and is counted.
func TestRaisedParityMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	hc := newHealthCluster(t, 6, 4, 2, func(cfg *Config) { cfg.Registerer = reg })
	down := hc.shardNode("k", 3)
	down.SetDown("*", true)
	hc.waitState(down.ID(), health.Down)
	hc.put("k", payload(2*testBlock, 5))
	var d dto.Metric
	if err := hc.s.metrics.raisedParity.Write(&d); err != nil {
		t.Fatal(err)
	}
	if got := d.GetCounter().GetValue(); got != 1 {
		t.Fatalf("raised-parity writes %v, want 1", got)
	}
}

// TestRetryMetrics: each second attempt that saves a write is counted
// under its reason, and a body the budget could not keep is counted.
func TestRetryMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, f := newCommitFaultCluster(t, false, func(cfg *Config) { cfg.Registerer = reg })
	retries := func() map[string]float64 {
		out := map[string]float64{}
		for _, r := range []string{retryStageFailed, retryRecode, retryCommitAgain, retryMapChanged} {
			var d dto.Metric
			if err := c.s.metrics.retries.WithLabelValues(r).Write(&d); err != nil {
				t.Fatal(err)
			}
			if v := d.GetCounter().GetValue(); v != 0 {
				out[r] = v
			}
		}
		return out
	}
	c.put("k", payload(100, 1))
	if got := retries(); len(got) != 0 {
		t.Fatalf("after a healthy put: %v, want none", got)
	}
	c.shardNode("k", 2).SetDown("stage", true)
	c.put("k", payload(3*testBlock, 2))
	c.shardNode("k", 2).SetDown("stage", false)
	if got := retries(); len(got) != 1 || got[retryStageFailed] != 1 {
		t.Fatalf("after a put whose stage failed on one node: %v, want stage_failed 1", got)
	}
	f.once = true
	f.set(c, "k", 0, 3, 5)
	c.put("k", payload(3*testBlock, 3))
	if got := retries(); len(got) != 2 || got[retryCommitAgain] != 1 {
		t.Fatalf("after a put whose commit failed once on three nodes: %v, want commit_again 1 too", got)
	}
	f.once = false
	f.set(c, "k", 1, 4)
	c.put("k", payload(3*testBlock, 4))
	if got := retries(); len(got) != 3 || got[retryRecode] != 1 {
		t.Fatalf("after a put whose commit failed on two nodes: %v, want recode 1 too", got)
	}
	f.set(c, "k")

	small := prometheus.NewRegistry()
	sc := newCluster(t, 6, 4, 2, func(cfg *Config) { cfg.Registerer = small; cfg.KeptBodies = 4 * testBlock })
	sc.put("a", payload(4*testBlock+1, 5)) // longer than a stripe and than the budget
	var d dto.Metric
	if err := sc.s.metrics.notKept.Write(&d); err != nil {
		t.Fatal(err)
	}
	if got := d.GetCounter().GetValue(); got != 1 {
		t.Fatalf("bodies not kept %v, want 1", got)
	}
}
