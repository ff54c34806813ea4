package objects

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// maxVersion is the largest ULID: no clock can name a version above it.
const maxVersion = "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"

// TestCommitRefusedByNewerNeverCounts: nodes that hold a newer version than
// any the gateway can name refuse its commit, and the write is not
// acknowledged; the newer version stays the one served.
func TestCommitRefusedByNewerNeverCounts(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	old := payload(5000, 1)
	c.put("k", old)
	for _, n := range c.list {
		n.Edit(func(n *nodetest.State) {
			if fk := n.Keys[testBucket+"\x00k"]; fk != nil && fk.Committed != nil {
				fk.Committed.Version = maxVersion
			}
		})
	}
	_, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: 100, Body: bytes.NewReader(payload(100, 2))})
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
	c.mustGet("k", old)
	c.flush()
	for _, n := range c.list {
		if st := n.StagedVersions(testBucket, "k"); len(st) > 0 {
			t.Errorf("node %s kept %v staged after refusing it", n.ID(), st)
		}
	}
}

// TestCommitRetriedAboveConflict: a write staged by a gateway whose clock
// lags, and committed after a write through another gateway was
// acknowledged, is refused by every node, committed again above the
// refusals, and wins.
func TestCommitRetriedAboveConflict(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	lagNow := testNow.Add(-5 * time.Second)
	lagging, err := New(Config{
		Map:            c.s.Map(),
		Dial:           func(n placement.Node) client.Node { return c.nodes[n.ID] },
		BucketCacheTTL: time.Hour,
		Now:            func() time.Time { return lagNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lagging.bg.Wait)
	// The lagging gateway's commits wait until the other write is in.
	release := make(chan struct{})
	held := make(chan struct{}, 6)
	for _, n := range c.list {
		n.Edit(func(st *nodetest.State) {
			st.BeforeCommit = func(meta client.ObjectMeta) {
				if meta.Modified.Equal(lagNow) {
					select {
					case held <- struct{}{}:
					default:
					}
					<-release
				}
			}
		})
	}
	slow, fast := payload(5000, 3), payload(5000, 4)
	type result struct {
		info ObjectInfo
		err  error
	}
	done := make(chan result, 1)
	go func() {
		info, err := lagging.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: int64(len(slow)), Body: bytes.NewReader(slow)})
		done <- result{info, err}
	}()
	<-held // the slow write's stages are answered; its commit has begun
	first := c.put("k", fast)
	close(release)
	r := <-done
	if r.err != nil {
		t.Fatalf("put whose commit began after another was acknowledged: %v", r.err)
	}
	if r.info.Version <= first.Version {
		t.Errorf("later commit's version %s not above the acknowledged %s", r.info.Version, first.Version)
	}
	c.mustGet("k", slow)
	c.flush()
	for _, n := range c.list {
		if st := n.StagedVersions(testBucket, "k"); len(st) > 0 {
			t.Errorf("node %s kept %v staged", n.ID(), st)
		}
	}
}

// TestCommitQuorumNeverCountsNewer: a node that answers a commit with a
// newer record than the one sent (as nodes of earlier releases did) or
// with a conflict does not count toward the quorum.
func TestCommitQuorumNeverCountsNewer(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	c.put("k", payload(100, 1))
	var targets []member
	for i, n := range c.s.Map().PlaceKey(testBucket, "k") {
		m := c.s.member(n)
		if i%2 == 0 {
			m.Client = earlierRelease{m.Client}
		}
		targets = append(targets, m)
	}
	meta := client.ObjectMeta{Bucket: testBucket, Key: "k", Version: "01AAAAAAAAAAAAAAAAAAAAAAAA", Deleted: true}
	committed, answered, newer, _, _ := c.s.commitQuorum(context.Background(), targets, meta, 4, func(int, []bool) {})
	for i := range targets {
		if committed[i] || !answered[i] || newer[i] == "" {
			t.Errorf("target %d: committed %v, answered %v, newer %q; want refused, naming the newer version", i, committed[i], answered[i], newer[i])
		}
	}
	if v := c.s.newVersion(); v <= newer[0] {
		t.Errorf("next version %s not above the refusal's %s", v, newer[0])
	}
}

// earlierRelease answers a refused commit as nodes of earlier releases
// did: success, with the node's newer record.
type earlierRelease struct{ client.Node }

func (e earlierRelease) Commit(ctx context.Context, meta client.ObjectMeta) (client.Record, error) {
	rec, err := e.Node.Commit(ctx, meta)
	if v := client.Newer(err); v != "" {
		return client.Record{ObjectMeta: client.ObjectMeta{Bucket: meta.Bucket, Key: meta.Key, Version: v}}, nil
	}
	return rec, err
}

// TestPartlyRefusedCommitIsNotRetried: a write whose commit lands on some
// nodes and is refused by the others (a concurrent write's newer version
// got there first) fails, and is not retried above the newer version: a
// retry that reached fewer than a quorum would leave neither write
// readable on the nodes it reached.
func TestPartlyRefusedCommitIsNotRetried(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	newer := newULID(ulid.Timestamp(testNow.Add(5 * time.Second))).String()
	placed := c.s.Map().PlaceKey(testBucket, "k")
	for _, pn := range placed[3:] {
		n := c.nodes[pn.ID]
		var seeded atomic.Bool
		n.Edit(func(st *nodetest.State) {
			st.BeforeCommit = func(meta client.ObjectMeta) {
				// Just before this write's commit, a concurrent
				// write's newer marker lands on this node.
				if seeded.CompareAndSwap(false, true) {
					if _, err := n.Commit(context.Background(), client.ObjectMeta{Bucket: testBucket, Key: "k", Version: newer, Deleted: true}); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	_, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: 5000, Body: bytes.NewReader(payload(5000, 5))})
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
	for _, pn := range placed {
		if rec := c.nodes[pn.ID].Committed(testBucket, "k"); rec == nil || rec.Version > newer {
			t.Errorf("node %s holds %+v, want nothing above the concurrent %s", pn.ID, rec, newer)
		}
	}
}

// TestCommitShortfallCause: a write whose commit misses its quorum only
// because nodes refused it as holding a newer version (a concurrent write
// of the key won) fails with ErrSuperseded inside ErrQuorum; one that
// would have missed it without the refusals, because nodes failed, fails
// with ErrQuorum alone. Either way it is not acknowledged.
func TestCommitShortfallCause(t *testing.T) {
	newer := newULID(ulid.Timestamp(testNow.Add(5 * time.Second))).String()
	tests := []struct {
		name       string
		del        bool   // the write is a delete marker
		version    string // of the concurrent write landing on newerOn
		newerOn    []int  // shards whose nodes get the concurrent write first
		dropOn     []int  // shards whose nodes fail the commit
		superseded bool
	}{
		{name: "half refuse", version: newer, newerOn: []int{3, 4, 5}, superseded: true},
		{name: "all refuse, retry refused", version: maxVersion, newerOn: []int{0, 1, 2, 3, 4, 5}, superseded: true},
		{name: "one refuses, one fails", version: newer, newerOn: []int{5}, dropOn: []int{4}, superseded: true},
		{name: "delete marker, half refuse", del: true, version: newer, newerOn: []int{0, 1, 2}, superseded: true},
		{name: "two fail", dropOn: []int{4, 5}},
		{name: "one refuses, two fail", version: newer, newerOn: []int{5}, dropOn: []int{3, 4}},
		// Four refusals leave two nodes, too few to commit whatever
		// the two failing had done.
		{name: "four refuse, two fail", version: newer, newerOn: []int{0, 1, 2, 3}, dropOn: []int{4, 5}, superseded: true},
		// Three: a marker that two failed is finished as its re-code
		// (TestDeleteMarkerFinishedAsRecode).
		{name: "delete marker, three fail", del: true, dropOn: []int{0, 1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Bodies are not kept: a write whose body is written
			// again or finished as its re-code after nodes failed
			// (TestPutFinishedAsRecodeWhenCommitsFail).
			c := newCluster(t, 6, 4, 2, func(cfg *Config) { cfg.KeptBodies = -1 })
			if wq := c.s.Map().WriteQuorum; wq != 5 {
				t.Fatalf("write quorum %d, the cases assume 5", wq)
			}
			c.put("k", payload(100, 1))
			placed := c.s.Map().PlaceKey(testBucket, "k")
			for _, i := range tc.newerOn {
				n := c.nodes[placed[i].ID]
				var seeded atomic.Bool
				n.Edit(func(st *nodetest.State) {
					st.BeforeCommit = func(client.ObjectMeta) {
						if seeded.CompareAndSwap(false, true) {
							if _, err := n.Commit(context.Background(), client.ObjectMeta{Bucket: testBucket, Key: "k", Version: tc.version, Deleted: true}); err != nil {
								t.Error(err)
							}
						}
					}
				})
			}
			for _, i := range tc.dropOn {
				c.nodes[placed[i].ID].Edit(func(st *nodetest.State) { st.DropCommit = true })
			}
			var err error
			if tc.del {
				err = c.s.DeleteObject(context.Background(), testBucket, "k")
			} else {
				// Longer than a stripe, so not kept.
				size := 4*testBlock + 5000
				_, err = c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: int64(size), Body: bytes.NewReader(payload(size, 2))})
			}
			wantErr(t, err, ErrQuorum, kerr.Unavailable)
			if got := errors.Is(err, ErrSuperseded); got != tc.superseded {
				t.Errorf("error %v: ErrSuperseded %v, want %v", err, got, tc.superseded)
			}
		})
	}
}
