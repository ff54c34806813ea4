package objects

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// commitFaults makes chosen nodes fail every Commit with a transient
// error after staging fine, as a node does that dies between a write's
// stage and its commit. before, if set, runs in the first failing
// commit, before it fails.
type commitFaults struct {
	mu      sync.Mutex
	failing map[string]bool
	before  func(meta client.ObjectMeta)
	// open makes the failing nodes answer as if their breaker were
	// open: the commit was never sent.
	open bool
	// once makes each failing node fail one commit only.
	once bool
}

type commitFaultNode struct {
	*fakeNode // whole, so that its optional interfaces show
	id        string
	f         *commitFaults
}

func (n commitFaultNode) Commit(ctx context.Context, meta client.ObjectMeta) (client.Record, error) {
	n.f.mu.Lock()
	fail := n.f.failing[n.id]
	before := n.f.before
	if fail {
		n.f.before = nil
		if n.f.once {
			delete(n.f.failing, n.id)
		}
	}
	n.f.mu.Unlock()
	if !fail {
		return n.fakeNode.Commit(ctx, meta)
	}
	if before != nil {
		before(meta)
	}
	if n.f.open {
		return client.Record{}, kerr.E("test.Commit", kerr.Unavailable, health.ErrOpen)
	}
	return client.Record{}, kerr.E("test.Commit", kerr.Transient, errors.New("connection reset by peer"))
}

// set makes the nodes of key's shards at positions fail their commits,
// and only those.
func (f *commitFaults) set(c *cluster, key string, positions ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = make(map[string]bool)
	for _, i := range positions {
		f.failing[c.shardNode(key, i).ID()] = true
	}
}

// newCommitFaultCluster is newCluster(t, 6, 4, 2) over nodes whose
// commits f can fail, with health tracking if tracked.
func newCommitFaultCluster(t *testing.T, tracked bool, opts ...func(*Config)) (*cluster, *commitFaults) {
	f := &commitFaults{}
	wrap := func(cfg *Config) {
		for _, o := range opts {
			o(cfg)
		}
		dial := cfg.Dial
		cfg.Dial = func(pn placement.Node) client.Node {
			return commitFaultNode{fakeNode: dial(pn).(*fakeNode), id: pn.ID, f: f}
		}
	}
	if tracked {
		return newHealthCluster(t, 6, 4, 2, wrap).cluster, f
	}
	return newCluster(t, 6, 4, 2, wrap), f
}

// calls returns every node's count of op calls, by node ID.
func (c *cluster) calls(op string) map[string]int {
	out := make(map[string]int)
	for _, n := range c.list {
		out[n.ID()] = n.Calls(op)
	}
	return out
}

// assertNoRecode fails if a node holds a re-code of key, staged or
// committed.
func (c *cluster) assertNoRecode(key string) {
	c.t.Helper()
	c.flush()
	for _, n := range c.list {
		if rec := n.Committed(testBucket, key); rec != nil && client.IsRecode(rec.Version) {
			c.t.Errorf("node %s has the re-code %s committed", n.ID(), rec.Version)
		}
		for _, v := range n.StagedVersions(testBucket, key) {
			if client.IsRecode(v) {
				c.t.Errorf("node %s has the re-code %s staged", n.ID(), v)
			}
		}
	}
}

// TestPutFinishedAsRecodeWhenCommitsFail: a PUT into an unversioned
// bucket, of at most one stripe or longer (its body is kept as it
// streams), staged on all six nodes, then two of them failed
// its commit, so it was committed on four of six, one short of its
// quorum, and may be visible from those four. It is not run again under
// a new version; it is finished as the re-code of its version V, V.1,
// with the two taken for down: 2+4 on the four others, all of which
// commit. The client sees an acknowledged PUT whose version id is
// "null", and the bytes read back before and after the two return.
func TestPutFinishedAsRecodeWhenCommitsFail(t *testing.T) {
	for _, tracked := range []bool{false, true} {
		for _, size := range []int{3*testBlock + 17, 9*testBlock + 5} {
			t.Run(fmt.Sprintf("health=%v/size=%d", tracked, size), func(t *testing.T) { testPutFinishedAsRecode(t, tracked, size) })
		}
	}
}

func testPutFinishedAsRecode(t *testing.T, tracked bool, size int) {
	c, f := newCommitFaultCluster(t, tracked)
	ctx := context.Background()
	oldInfo := c.put("k", payload(100, 1))
	failing := []int{1, 4}
	live := []int{0, 2, 3, 5}
	f.set(c, "k", failing...)
	stages, commits := c.calls("stage"), c.calls("commit")

	data := payload(size, 5)
	info, err := c.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("put with two commits failing: %v", err)
	}
	base := client.BaseVersion(info.Version)
	if !client.IsRecode(info.Version) || base <= oldInfo.Version || info.VersionID != client.NullVersion || !info.Raised || info.Versioned {
		t.Fatalf("info %+v: want the raised re-code of a version above %s, version id null", info, oldInfo.Version)
	}
	sum := md5.Sum(data)
	if info.ETag != hex.EncodeToString(sum[:]) || info.Size != int64(len(data)) {
		t.Fatalf("info %+v: want ETag %x, size %d", info, sum, len(data))
	}
	wantNodes := c.nodeIDs("k")
	for _, i := range failing {
		wantNodes[i] = ""
	}
	for _, i := range live {
		n := c.shardNode("k", i)
		rec := n.Committed(testBucket, "k")
		if rec == nil || rec.Version != info.Version || rec.Shard != i || rec.Data != 2 || rec.Parity != 4 || rec.Quorum != 4 ||
			rec.Versioned || rec.Versioning != "" || rec.ETag != info.ETag || !slices.Equal(rec.Nodes, wantNodes) {
			t.Fatalf("shard %d: record %+v, want %s as shard %d, 2+4, quorum 4, unversioned, nodes %q", i, rec, info.Version, i, wantNodes)
		}
		if got := n.Calls("stage") - stages[n.ID()]; got != 2 {
			t.Errorf("shard %d's node: %d stage calls, want 2 (V and V.1)", i, got)
		}
	}
	for _, i := range failing {
		n := c.shardNode("k", i)
		if rec := n.Committed(testBucket, "k"); rec == nil || rec.Version != oldInfo.Version {
			t.Fatalf("failing shard %d: record %+v, want the old version %s", i, rec, oldInfo.Version)
		}
		if got, gotc := n.Calls("stage")-stages[n.ID()], n.Calls("commit")-commits[n.ID()]; got != 1 || gotc != 0 {
			t.Errorf("failing shard %d's node: %d stages, %d commits reached it; want 1 stage (V only), no commit", i, got, gotc)
		}
	}
	c.mustGet("k", data)
	st, err := c.s.StatObject(ctx, testBucket, "k")
	if err != nil || st.VersionID != client.NullVersion || st.ETag != info.ETag {
		t.Fatalf("stat: %+v, %v; want version id null, ETag %s", st, err, info.ETag)
	}
	// The shards the re-code skipped are hinted on its holders (missing,
	// or stale once a read saw the older version on their nodes).
	missing := make(map[int]bool)
	for _, hs := range c.allHints() {
		for _, h := range hs {
			if h.Version == info.Version {
				missing[h.Shard] = true
			}
		}
	}
	if len(missing) != 2 || !missing[1] || !missing[4] {
		t.Errorf("re-code hinted shards %v, want 1 and 4", missing)
	}

	// The two return, holding V staged and the old version committed.
	f.set(c, "k")
	c.mustGet("k", data)
	for i := range 6 {
		n := c.shardNode("k", i)
		ks, err := n.Stat(ctx, testBucket, "k")
		if err != nil || ks.Committed == nil {
			t.Fatalf("stat shard %d's node: %+v, %v", i, ks, err)
		}
		want := info.Version
		if i == 1 || i == 4 {
			want = oldInfo.Version
		}
		if ks.Committed.Version != want {
			t.Errorf("shard %d's node has %s committed, want %s", i, ks.Committed.Version, want)
		}
		for _, sr := range ks.Staged {
			if sr.Version >= info.Version {
				t.Errorf("shard %d's node has %s staged, at or above the re-code %s", i, sr.Version, info.Version)
			}
		}
	}
	// The next write of the key is named above the re-code and wins.
	next := payload(200, 9)
	ni := c.put("k", next)
	if ni.Version <= info.Version || client.IsRecode(ni.Version) {
		t.Fatalf("next write's version %s, want a fresh one above %s", ni.Version, info.Version)
	}
	c.mustGet("k", next)
}

// TestPutRecodeBelowLaterWrite: as above, but while the commit fails a
// PUT of the key through another gateway is staged and committed on
// every node and acknowledged. The first PUT's re-code is named below
// that write, so every node refuses it, and the first PUT answers
// ErrSuperseded; it is not named anew above the later write. The later
// write's bytes are read back, never the first's.
func TestPutRecodeBelowLaterWrite(t *testing.T) {
	c, f := newCommitFaultCluster(t, false)
	ctx := context.Background()
	c.put("k", payload(100, 1))
	other := c.newStoreOn(t, c.s.Map())
	failing := []int{1, 4}
	f.set(c, "k", failing...)
	later := payload(2*testBlock+3, 8)
	var laterInfo ObjectInfo
	var laterErr error
	f.before = func(meta client.ObjectMeta) {
		// Wait for the four others to hold the first PUT committed:
		// it may be visible from now on.
		deadline := time.Now().Add(10 * time.Second)
		for _, i := range []int{0, 2, 3, 5} {
			for {
				rec := c.shardNode("k", i).Committed(testBucket, "k")
				if rec != nil && rec.Version == meta.Version {
					break
				}
				if time.Now().After(deadline) {
					laterErr = errors.New("the first PUT was not committed on the live nodes")
					return
				}
				time.Sleep(time.Millisecond)
			}
		}
		laterInfo, laterErr = other.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: int64(len(later)), Body: bytes.NewReader(later)})
	}
	data := payload(3*testBlock+17, 5)
	_, err := c.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)})
	if laterErr != nil {
		t.Fatalf("later put: %v", laterErr)
	}
	if !errors.Is(err, ErrSuperseded) || !errors.Is(err, ErrQuorum) || kerr.KindOf(err) != kerr.Unavailable {
		t.Fatalf("first put: %v; want ErrSuperseded", err)
	}
	c.mustGet("k", later)
	c.assertNoRecode("k")
	f.set(c, "k")
	c.mustGet("k", later)
	for i := range 6 {
		if rec := c.shardNode("k", i).Committed(testBucket, "k"); rec == nil || rec.Version != laterInfo.Version {
			t.Errorf("shard %d's node has %+v committed, want the later write's %s", i, rec, laterInfo.Version)
		}
	}
	next := payload(300, 10)
	c.put("k", next)
	c.mustGet("k", next)
}

// TestPutCommitShortfallNotFinished: the cases where a commit shortfall
// still answers 503 as before, with no re-code staged anywhere: a
// versioned or suspended bucket (the version id is visible there), more
// than p nodes failing, and a body longer than one stripe that the Store
// does not keep (spent).
func TestPutCommitShortfallNotFinished(t *testing.T) {
	for _, tc := range []struct {
		name       string
		versioning string
		failing    []int
		size       int
	}{
		{"versioned", client.VersioningEnabled, []int{1, 4}, 3*testBlock + 17},
		{"suspended", client.VersioningSuspended, []int{1, 4}, 3*testBlock + 17},
		{"three failing", "", []int{0, 2, 4}, 3*testBlock + 17},
		{"body not kept", "", []int{1, 4}, 4*testBlock + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f := newCommitFaultCluster(t, false, func(cfg *Config) { cfg.KeptBodies = -1 })
			ctx := context.Background()
			if tc.versioning != "" {
				if err := c.s.PutBucketVersioning(ctx, testBucket, tc.versioning); err != nil {
					t.Fatal(err)
				}
			}
			c.put("k", payload(100, 1))
			f.set(c, "k", tc.failing...)
			stages := c.calls("stage")
			data := payload(tc.size, 5)
			_, err := c.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)})
			wantErr(t, err, ErrQuorum, kerr.Unavailable)
			if errors.Is(err, ErrSuperseded) || errors.Is(err, ErrMapChanged) {
				t.Fatalf("put: %v; want a plain quorum error", err)
			}
			for id, before := range stages {
				if got := c.nodes[id].Calls("stage") - before; got != 1 {
					t.Errorf("node %s: %d stage calls, want 1 (no second attempt)", id, got)
				}
			}
			c.assertNoRecode("k")
		})
	}
}

// TestPutCommitRefusedAndFailedIsWrittenAgain: a concurrent write of the
// key reached four of its six nodes between a PUT's stage and its commit,
// and the two others went down meanwhile, their breakers open, so their
// commits were never sent. Four refusals and two failures: no node holds
// the PUT committed, so it is written again, under a version above the
// concurrent one, as 2+4 on the four nodes up, and wins there, as a
// commit refused by newer versions alone is retried above them
// (commitWrite). Both a body of at most one stripe and a longer one are
// kept for this.
func TestPutCommitRefusedAndFailedIsWrittenAgain(t *testing.T) {
	for _, size := range []int{3*testBlock + 17, 9*testBlock + 5} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			c, f := newCommitFaultCluster(t, false)
			ctx := context.Background()
			c.put("k", payload(100, 1))
			newer := newULID(ulid.Timestamp(testNow.Add(5 * time.Second))).String()
			live := []int{0, 1, 2, 3}
			for _, i := range live {
				n := c.shardNode("k", i)
				var seeded atomic.Bool
				n.Edit(func(st *nodetest.State) {
					st.BeforeCommit = func(client.ObjectMeta) {
						if seeded.CompareAndSwap(false, true) {
							if _, err := n.Commit(ctx, client.ObjectMeta{Bucket: testBucket, Key: "k", Version: newer, Deleted: true}); err != nil {
								t.Error(err)
							}
						}
					}
				})
			}
			f.open = true
			f.set(c, "k", 4, 5)
			data := payload(size, 6)
			info, err := c.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)})
			if err != nil {
				t.Fatalf("put: %v", err)
			}
			if info.Version <= newer || client.IsRecode(info.Version) || !info.Raised {
				t.Fatalf("put: %+v; want a raised version above the concurrent %s", info, newer)
			}
			for _, i := range live {
				rec := c.shardNode("k", i).Committed(testBucket, "k")
				if rec == nil || rec.Version != info.Version || rec.Data != 2 || rec.Parity != 4 {
					t.Fatalf("shard %d: %+v, want %s as 2+4", i, rec, info.Version)
				}
			}
			c.mustGet("k", data)
		})
	}
}

// TestDeleteMarkerFinishedAsRecode: two of a key's six nodes fail the
// commit of a delete marker the four others take, one short of its
// quorum. In an unversioned bucket the marker is finished as the re-code
// of its version, V.1, on those four, with the quorum of a write that
// took the two for down; the delete is acknowledged and the key reads
// as gone, before and after the two return. In a versioned bucket the
// marker's id is visible, and the delete answers 503 as before.
func TestDeleteMarkerFinishedAsRecode(t *testing.T) {
	for _, versioning := range []string{"", client.VersioningEnabled} {
		t.Run("versioning="+versioning, func(t *testing.T) {
			c, f := newCommitFaultCluster(t, false)
			ctx := context.Background()
			if versioning != "" {
				if err := c.s.PutBucketVersioning(ctx, testBucket, versioning); err != nil {
					t.Fatal(err)
				}
			}
			c.put("k", payload(100, 1))
			f.set(c, "k", 1, 4)
			err := c.s.DeleteObject(ctx, testBucket, "k")
			if versioning != "" {
				wantErr(t, err, ErrQuorum, kerr.Unavailable)
				c.assertNoRecode("k")
				return
			}
			if err != nil {
				t.Fatalf("delete with two commits failing: %v", err)
			}
			var version string
			for _, i := range []int{0, 2, 3, 5} {
				rec := c.shardNode("k", i).Committed(testBucket, "k")
				if rec == nil || !rec.Deleted || !client.IsRecode(rec.Version) || rec.Quorum != 4 {
					t.Fatalf("shard %d's node: %+v, want a re-coded delete marker with quorum 4", i, rec)
				}
				if version != "" && rec.Version != version {
					t.Fatalf("shard %d's node holds %s, others %s", i, rec.Version, version)
				}
				version = rec.Version
			}
			_, err = c.get("k")
			wantErr(t, err, ErrNoSuchKey, kerr.NotExist)
			f.set(c, "k")
			_, err = c.get("k")
			wantErr(t, err, ErrNoSuchKey, kerr.NotExist)
			next := payload(300, 4)
			if info := c.put("k", next); info.Version <= version {
				t.Fatalf("next write %s, want above the marker %s", info.Version, version)
			}
			c.mustGet("k", next)
		})
	}
}

// TestDeleteMarkerCommitSentAgain: three of a delete marker's six nodes
// fail its commit once (with health tracking, their breakers open), so
// it misses its quorum of five with three committed, too few to finish
// it as a re-code. Those nodes are asked again and answer, and the
// marker's commit is sent to them once more, same version: the delete is
// acknowledged and every node holds that one marker. Before, the DELETE
// answered 503 with only a moment's fault on half the nodes.
func TestDeleteMarkerCommitSentAgain(t *testing.T) {
	for _, tracked := range []bool{false, true} {
		for _, versioning := range []string{"", client.VersioningEnabled} {
			t.Run(fmt.Sprintf("health=%v/versioning=%q", tracked, versioning), func(t *testing.T) {
				c, f := newCommitFaultCluster(t, tracked)
				ctx := context.Background()
				if versioning != "" {
					if err := c.s.PutBucketVersioning(ctx, testBucket, versioning); err != nil {
						t.Fatal(err)
					}
				}
				c.put("k", payload(100, 1))
				before := c.calls("commit")
				f.once = true
				f.set(c, "k", 1, 2, 4)
				if err := c.s.DeleteObject(ctx, testBucket, "k"); err != nil {
					t.Fatalf("delete with three commits failing once: %v", err)
				}
				c.flush()
				var version string
				for i := range 6 {
					rec := c.shardNode("k", i).Committed(testBucket, "k")
					if rec == nil || !rec.Deleted || client.IsRecode(rec.Version) {
						t.Fatalf("shard %d's node: %+v, want the delete marker", i, rec)
					}
					if version != "" && rec.Version != version {
						t.Fatalf("shard %d's node holds %s, others %s", i, rec.Version, version)
					}
					version = rec.Version
				}
				after := c.calls("commit")
				for _, i := range []int{1, 2, 4} {
					id := c.shardNode("k", i).ID()
					// The failed commit never reached the node.
					if got := after[id] - before[id]; got != 1 {
						t.Errorf("shard %d's node took %d commits, want 1 (the one sent again)", i, got)
					}
				}
				_, err := c.get("k")
				wantErr(t, err, ErrNoSuchKey, kerr.NotExist)
			})
		}
	}
}

// TestPutCommitSentAgain: three of a PUT's six nodes stage their shards
// and fail its commit once, more than a re-code can do without, so the
// commit misses its quorum of five with three committed. The commit is
// sent to those three once more, same version: the PUT is acknowledged
// as written, 4+2 on all six. Before, it answered 503.
func TestPutCommitSentAgain(t *testing.T) {
	for _, tracked := range []bool{false, true} {
		t.Run(fmt.Sprintf("health=%v", tracked), func(t *testing.T) {
			c, f := newCommitFaultCluster(t, tracked)
			f.once = true
			f.set(c, "k", 0, 3, 5)
			body := payload(3*testBlock+17, 7)
			info := c.put("k", body)
			if info.Raised || client.IsRecode(info.Version) {
				t.Fatalf("PUT answered %+v, want the plain 4+2 version", info)
			}
			c.flush()
			for i := range 6 {
				rec := c.shardNode("k", i).Committed(testBucket, "k")
				if rec == nil || rec.Version != info.Version {
					t.Fatalf("shard %d's node holds %+v, want %s", i, rec, info.Version)
				}
			}
			c.mustGet("k", body)
		})
	}
}
