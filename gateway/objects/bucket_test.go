package objects

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

func noBucketCache(cfg *Config) { cfg.BucketCacheTTL = -1 }

func bucketNames(t *testing.T, s *Store) []string {
	t.Helper()
	bs, err := s.ListBuckets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range bs {
		names = append(names, b.Name)
	}
	return names
}

func TestBuckets(t *testing.T) {
	c := newCluster(t, 6, 4, 2, noBucketCache)
	ctx := context.Background()
	s := c.s

	info, err := s.HeadBucket(ctx, testBucket)
	if err != nil || info.Name != testBucket || !info.Created.Equal(testNow) || info.Versioning != "" {
		t.Fatalf("head: %+v, %v", info, err)
	}
	err = s.CreateBucket(ctx, testBucket)
	wantErr(t, err, ErrBucketExists, kerr.Exist)
	if err := s.CreateBucket(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	if got := bucketNames(t, s); !slices.Equal(got, []string{"alpha", testBucket}) {
		t.Fatalf("buckets %q", got)
	}
	for _, n := range c.list {
		if _, err := n.GetBucket(ctx, "alpha"); err != nil {
			t.Fatalf("node %s lacks the bucket: %v", n.ID(), err)
		}
	}

	c.put("k", []byte("x"))
	err = s.DeleteBucket(ctx, testBucket)
	wantErr(t, err, ErrBucketNotEmpty, kerr.NotEmpty)
	if err := s.DeleteObject(ctx, testBucket, "k"); err != nil {
		t.Fatal(err)
	}
	// Only a delete marker left: the bucket counts as empty.
	if err := s.DeleteBucket(ctx, testBucket); err != nil {
		t.Fatal(err)
	}
	_, err = s.HeadBucket(ctx, testBucket)
	wantErr(t, err, ErrNoSuchBucket, kerr.NotExist)
	err = s.DeleteBucket(ctx, testBucket)
	wantErr(t, err, ErrNoSuchBucket, kerr.NotExist)
	_, err = s.StatObject(ctx, testBucket, "k")
	wantErr(t, err, ErrNoSuchBucket, kerr.NotExist)
	if got := bucketNames(t, s); !slices.Equal(got, []string{"alpha"}) {
		t.Fatalf("buckets after delete %q", got)
	}
	err = s.DeleteBucket(ctx, "never")
	wantErr(t, err, ErrNoSuchBucket, kerr.NotExist)

	// Created again, with a newer record than the tombstone.
	if err := s.CreateBucket(ctx, testBucket); err != nil {
		t.Fatal(err)
	}
	if got := bucketNames(t, s); !slices.Equal(got, []string{"alpha", testBucket}) {
		t.Fatalf("buckets after re-create %q", got)
	}

	_, err = s.HeadBucket(ctx, "a/b")
	wantErr(t, err, ErrInvalidArgument, kerr.Invalid)
}

func TestBucketQuorum(t *testing.T) {
	c := newCluster(t, 6, 4, 2, noBucketCache)
	ctx := context.Background()
	// Two nodes missed the creation (they were down): a majority still
	// sees the bucket.
	for _, n := range c.list[:2] {
		n.SetDown("*", true)
	}
	if err := c.s.CreateBucket(ctx, "half"); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.list[:2] {
		n.SetDown("*", false)
	}
	for _, n := range c.list[4:] {
		n.SetDown("*", true)
	}
	if _, err := c.s.HeadBucket(ctx, "half"); err != nil {
		t.Fatal(err)
	}
	// Three of six is not a majority, for reads or writes.
	c.list[3].SetDown("*", true)
	_, err := c.s.HeadBucket(ctx, testBucket)
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
	_, err = c.s.ListBuckets(ctx)
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
	for _, n := range c.list[3:] {
		n.SetDown("*", false)
	}
	for _, n := range c.list[:3] {
		n.SetDown("bucket", true)
	}
	err = c.s.CreateBucket(ctx, "nope")
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
}

func TestBucketNewestRecordWins(t *testing.T) {
	c := newCluster(t, 6, 4, 2, noBucketCache)
	ctx := context.Background()
	v := c.s.newVersion()
	// A stale live record on two nodes, a newer tombstone on four.
	for i, n := range c.list {
		rec := client.BucketRecord{Name: "zombie", Version: v, Created: testNow}
		if i >= 2 {
			rec.Version, rec.Deleted = c.s.newVersion(), true
		}
		if err := n.PutBucket(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.s.HeadBucket(ctx, "zombie")
	wantErr(t, err, ErrNoSuchBucket, kerr.NotExist)
	if got := bucketNames(t, c.s); !slices.Equal(got, []string{testBucket}) {
		t.Fatalf("buckets %q", got)
	}
}

// Requests that find the cached bucket expired together share one lookup,
// and a caller that gives up does not fail the others.
func TestBucketLookupShared(t *testing.T) {
	c := newCluster(t, 6, 4, 2, func(cfg *Config) { cfg.BucketCacheTTL = 20 * time.Millisecond })
	c.clock.Advance(30 * time.Millisecond)
	for _, n := range c.list {
		n.Edit(func(n *nodetest.State) { n.Slow["bucket"] = 50 * time.Millisecond })
	}
	calls := c.list[0].Calls("bucket")
	gone, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		ctx := context.Background()
		if i == 0 {
			ctx = gone
		}
		wg.Go(func() { _, errs[i] = c.s.HeadBucket(ctx, testBucket) })
		if i == 0 {
			time.Sleep(5 * time.Millisecond) // the cancelled caller leads the lookup
		}
	}
	cancel()
	wg.Wait()
	// The first caller may answer from the expired entry; the others
	// must have had the shared lookup's answer, and it refreshed the
	// cache: had the first caller's cancellation failed the lookup, they
	// would have answered from the expired entry too, and the next call
	// would ask the nodes again.
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if _, err := c.s.HeadBucket(context.Background(), testBucket); err != nil {
		t.Fatal(err)
	}
	if got := c.list[0].Calls("bucket") - calls; got != 1 {
		t.Errorf("17 lookups asked a node %d times, want 1", got)
	}
}

func TestBucketCache(t *testing.T) {
	c := newCluster(t, 6, 4, 2, func(cfg *Config) { cfg.BucketCacheTTL = 50 * time.Millisecond })
	ctx := context.Background()
	calls := c.list[0].Calls("bucket")
	for range 10 {
		if _, err := c.s.HeadBucket(ctx, testBucket); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.list[0].Calls("bucket") - calls; got != 0 {
		t.Fatalf("cached bucket asked the nodes %d times", got)
	}
	c.clock.Advance(60 * time.Millisecond)
	if _, err := c.s.HeadBucket(ctx, testBucket); err != nil {
		t.Fatal(err)
	}
	if got := c.list[0].Calls("bucket") - calls; got != 1 {
		t.Fatalf("expired entry: %d calls, want 1", got)
	}
	// Another gateway deleted the bucket: noticed once the entry expires.
	for _, n := range c.list {
		n.PutBucket(ctx, client.BucketRecord{Name: testBucket, Version: c.s.newVersion(), Deleted: true})
	}
	c.clock.Advance(60 * time.Millisecond)
	_, err := c.s.HeadBucket(ctx, testBucket)
	wantErr(t, err, ErrNoSuchBucket, kerr.NotExist)
	if !strings.Contains(err.Error(), testBucket) {
		t.Fatalf("error %q does not name the bucket", err)
	}
}

// TestDeleteWithHalfTheNodesOut: a gateway that reaches only four of
// eight nodes, two of them among the key's six, deletes the key: the
// marker stages nothing, so the bucket's versioning state is read first,
// and four answers meet every set of nodes a state was acknowledged on
// (stateQuorum), though they are not a majority. The marker is written
// under the state the bucket has. With five of eight out it fails.
func TestDeleteWithHalfTheNodesOut(t *testing.T) {
	for _, versioning := range []string{"", client.VersioningEnabled} {
		t.Run("versioning="+versioning, func(t *testing.T) {
			// The bucket stays cached, as in a gateway serving it:
			// the marker's read of the state bypasses the cache.
			hc := newHealthCluster(t, 8, 4, 2)
			c := hc.cluster
			ctx := context.Background()
			if versioning != "" {
				if err := c.s.PutBucketVersioning(ctx, testBucket, versioning); err != nil {
					t.Fatal(err)
				}
			}
			c.put("k", payload(100, 1))
			placed := c.s.Map().PlaceKey(testBucket, "k")
			var out []string
			for _, n := range c.list {
				if !slices.ContainsFunc(placed, func(p placement.Node) bool { return p.ID == n.ID() }) {
					out = append(out, n.ID())
				}
			}
			out = append(out, placed[0].ID, placed[1].ID)
			if len(out) != 4 {
				t.Fatalf("nodes out %v, want four", out)
			}
			for _, id := range out {
				c.nodes[id].SetDown("*", true)
				hc.waitState(id, health.Down)
			}
			if err := c.s.DeleteObject(ctx, testBucket, "k"); err != nil {
				t.Fatalf("delete with four of eight nodes out, two of the key's: %v", err)
			}
			for _, p := range placed[2:] {
				rec := c.nodes[p.ID].Committed(testBucket, "k")
				if rec == nil || !rec.Deleted || rec.Versioned != (versioning == client.VersioningEnabled) {
					t.Fatalf("node %s: %+v, want a delete marker written under versioning %q", p.ID, rec, versioning)
				}
			}
			c.nodes[placed[2].ID].SetDown("*", true)
			hc.waitState(placed[2].ID, health.Down)
			err := c.s.DeleteObject(ctx, testBucket, "k")
			wantErr(t, err, ErrQuorum, kerr.Unavailable)
		})
	}
}
