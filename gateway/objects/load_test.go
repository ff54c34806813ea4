package objects

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// TestSlowCommitAcknowledged: commits slower than the call timeout (an
// fsync behind a busy disk) still complete the write: the client waits
// longer rather than getting a 503 for a write that may well land.
func TestSlowCommitAcknowledged(t *testing.T) {
	c := newCluster(t, 6, 4, 2) // CallTimeout 1s
	for _, n := range c.list {
		n.Edit(func(n *nodetest.State) { n.Slow["commit"] = 1500 * time.Millisecond })
	}
	data := payload(3*4*testBlock+5, 11)
	c.put("k", data)
	c.mustGet("k", data)

	// A commit slower than CommitTimeout still fails the write.
	c2 := newCluster(t, 6, 4, 2, func(cfg *Config) { cfg.CommitTimeout = 200 * time.Millisecond })
	for _, n := range c2.list {
		n.Edit(func(n *nodetest.State) { n.Slow["commit"] = time.Second })
	}
	_, err := c2.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Body: bytes.NewReader(data), Size: int64(len(data))})
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
}

// TestBucketLookupStale: once its TTL ran out, a cached bucket still
// answers for a while when the nodes cannot; a bucket never seen does not.
func TestBucketLookupStale(t *testing.T) {
	c := newCluster(t, 6, 4, 2, func(cfg *Config) { cfg.BucketCacheTTL = 10 * time.Millisecond })
	data := payload(100, 12)
	c.put("k", data)
	c.clock.Advance(20 * time.Millisecond)
	for _, n := range c.list {
		n.SetDown("bucket", true)
	}
	if _, err := c.s.HeadBucket(context.Background(), testBucket); err != nil {
		t.Fatalf("HeadBucket with the nodes unable to answer, cached a moment ago: %v", err)
	}
	c.mustGet("k", data)
	_, err := c.s.HeadBucket(context.Background(), "never-seen")
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
}

// TestBucketLookupStaleWaitsLittle: nodes that take longer than their
// call deadline to answer (as nodes cut off by a partition do) leave a
// bucket lookup waiting that long; a request with a stale cached record
// waits staleBucketWait at most and is answered from it.
func TestBucketLookupStaleWaitsLittle(t *testing.T) {
	c := newCluster(t, 6, 4, 2, func(cfg *Config) {
		cfg.BucketCacheTTL = 10 * time.Millisecond
		cfg.CallTimeout = DefaultCallTimeout
	})
	c.put("k", payload(100, 12))
	c.clock.Advance(20 * time.Millisecond)
	for _, n := range c.list {
		n.Edit(func(st *nodetest.State) { st.Slow["bucket"] = time.Minute })
	}
	start := time.Now()
	if _, err := c.s.HeadBucket(context.Background(), testBucket); err != nil {
		t.Fatalf("HeadBucket with the nodes slow, cached a moment ago: %v", err)
	}
	// Far below the call deadline (DefaultCallTimeout) the lookup
	// would otherwise wait out.
	if took := time.Since(start); took >= DefaultCallTimeout-time.Second {
		t.Fatalf("HeadBucket took %v with a stale record cached, want about %v", took, staleBucketWait)
	}
}
