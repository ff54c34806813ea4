package objects

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/testcluster"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// realCluster is six real storage nodes (4+2) served over loopback HTTP,
// with a client per node for doing to them what the scrubber does.
type realCluster struct {
	m       *placement.Map
	secret  []byte
	logger  *slog.Logger
	clients map[string]*client.Client
}

func newRealCluster(t *testing.T) *realCluster {
	t.Helper()
	secret := []byte("shard-index-test-secret")
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	rc := &realCluster{secret: secret, logger: logger, clients: make(map[string]*client.Client)}
	base := storagenode.DefaultConfig()
	base.Logger, base.SweepInterval, base.ScrubRate = logger, 0, 0
	tc := testcluster.New(t, testcluster.Options{Real: true, Partitions: 64, BlockSize: testBlock, Secret: secret, Node: base})
	for _, nd := range tc.Nodes {
		rc.clients[nd.ID] = nd.Client
	}
	rc.m = tc.Map
	return rc
}

// store returns a Store over the nodes; preload lets it fetch small shards
// with the key's state, else every shard is streamed, opened lazily.
func (rc *realCluster) store(t *testing.T, preload bool) *Store {
	t.Helper()
	cfg := Config{
		Map:           rc.m,
		ClientOptions: &client.Options{Secret: rc.secret},
		CallTimeout:   5 * time.Second,
		PreloadMax:    -1,
		Logger:        rc.logger,
	}
	if preload {
		cfg.PreloadMax = 0 // the default, which covers these shards
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.bg.Wait)
	if err := s.CreateBucket(context.Background(), testBucket); err != nil && !errors.Is(err, ErrBucketExists) {
		t.Fatal(err)
	}
	return s
}

// swap exchanges shards a and b of key's committed version between the
// nodes holding them, in the rebalancer's order: stage each shard on the
// other node, then on each node drop the shard it holds and commit the
// version, which installs the staged one.
func (rc *realCluster) swap(t *testing.T, key string, a, b int) {
	t.Helper()
	ctx := context.Background()
	holder := make(map[int]string)
	var meta client.ObjectMeta
	for id, c := range rc.clients {
		ks, err := c.Stat(ctx, testBucket, key)
		if err != nil {
			t.Fatal(err)
		}
		if r := ks.Committed; r != nil && (r.Shard == a || r.Shard == b) {
			holder[r.Shard], meta = id, r.ObjectMeta
		}
	}
	if holder[a] == "" || holder[b] == "" {
		t.Fatalf("holders of shards %d and %d: %v", a, b, holder)
	}
	move := func(i int, from, to string) {
		rd, err := rc.clients[from].ReadShard(ctx, testBucket, key, meta.Version, i, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		if _, err := rc.clients[to].Stage(ctx, testBucket, key, meta.Version, i, meta.BlockSize, rd); err != nil {
			t.Fatal(err)
		}
	}
	move(a, holder[a], holder[b])
	move(b, holder[b], holder[a])
	for _, give := range []int{a, b} {
		c := rc.clients[holder[give]]
		if ok, err := c.DropShard(ctx, testBucket, key, meta.Version, give); err != nil || !ok {
			t.Fatalf("DropShard(%d) on %s = %v, %v", give, holder[give], ok, err)
		}
		if rec, err := c.Commit(ctx, meta); err != nil || rec.Shard == give {
			t.Fatalf("Commit on %s after the drop = %+v, %v", holder[give], rec, err)
		}
	}
}

// TestGetAcrossRebalanceSwapReturnsExactBytes: a GET that resolved a
// version before the rebalancer swapped two of its shards between their
// nodes, and opens its shard streams after the swap, returns exactly the
// object's bytes. Each node now holds the other shard under the same
// version, as long and with every block digest valid: a read that did
// not name the index would decode it as the one it asked for. Named, the
// nodes refuse and the GET decodes from the other shards, opening parity
// streams as it goes. Shards preloaded with the key's state are used as
// the index their record names, before and after the swap.
func TestGetAcrossRebalanceSwapReturnsExactBytes(t *testing.T) {
	rc := newRealCluster(t)
	for _, tc := range []struct {
		name    string
		a, b    int
		preload bool
	}{
		{"two data shards", 0, 1, false},
		{"a data and a parity shard", 1, 4, false},
		{"two preloaded data shards", 0, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := rc.store(t, tc.preload)
			ctx := context.Background()
			key := tc.name
			data := payload(3*4*testBlock+1234, 9)
			if _, err := s.PutObject(ctx, PutInput{Bucket: testBucket, Key: key, Size: int64(len(data)), Body: bytes.NewReader(data)}); err != nil {
				t.Fatal(err)
			}
			obj, err := s.OpenObject(ctx, testBucket, key)
			if err != nil {
				t.Fatal(err)
			}
			rc.swap(t, key, tc.a, tc.b)
			var buf bytes.Buffer
			if err := obj.WriteRange(ctx, &buf, 0, obj.Info().Size); err != nil {
				t.Fatalf("GET resolved before the swap: %v", err)
			}
			if !bytes.Equal(buf.Bytes(), data) {
				t.Fatalf("GET resolved before the swap returned %d bytes that differ from the %d written (first at %d)",
					buf.Len(), len(data), firstDiff(buf.Bytes(), data))
			}
			// A range inside one stripe, after the swap too.
			buf.Reset()
			if err := obj.WriteRange(ctx, &buf, 4*testBlock+10, 100); err != nil || !bytes.Equal(buf.Bytes(), data[4*testBlock+10:4*testBlock+110]) {
				t.Fatalf("range GET resolved before the swap: %v, bytes equal %v", err, bytes.Equal(buf.Bytes(), data[4*testBlock+10:4*testBlock+110]))
			}
			// A GET resolved after the swap reads every shard where it is.
			obj, err = s.OpenObject(ctx, testBucket, key)
			if err != nil {
				t.Fatal(err)
			}
			buf.Reset()
			if err := obj.WriteRange(ctx, &buf, 0, obj.Info().Size); err != nil || !bytes.Equal(buf.Bytes(), data) {
				t.Fatalf("GET after the swap: %v, bytes equal %v", err, bytes.Equal(buf.Bytes(), data))
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// swapShards exchanges key's committed shards between fake nodes n and o
// as the rebalancer's swap leaves them: the same version, each node now
// holding the other's index.
func swapShards(n, o *fakeNode, bucket, key string) {
	id := nodetest.KeyID(bucket, key)
	n.Edit(func(ns *nodetest.State) {
		o.Edit(func(os *nodetest.State) {
			a, b := ns.Keys[id], os.Keys[id]
			ra, rb := *a.Committed, *b.Committed
			ra.Shard, rb.Shard = rb.Shard, ra.Shard
			a.Committed, b.Committed = &ra, &rb
			a.Shard, b.Shard = b.Shard, a.Shard
		})
	})
}

// TestGetAcrossSwapOnFakeNodes is TestGetAcrossRebalanceSwapReturnsExactBytes
// on the fake nodes, with and without health tracking (hedged reads): the
// fakes refuse a read naming another index like a node does, the GET
// decodes around both swapped shards, and each is hinted missing.
func TestGetAcrossSwapOnFakeNodes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		health bool
	}{
		{"plain", false},
		{"health", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c *cluster
			if tc.health {
				c = newHealthCluster(t, 6, 4, 2, noPreload).cluster
			} else {
				c = newCluster(t, 6, 4, 2, noPreload)
			}
			data := payload(3*4*testBlock+77, 4)
			c.put("k", data)
			obj, err := c.s.OpenObject(context.Background(), testBucket, "k")
			if err != nil {
				t.Fatal(err)
			}
			x, y := c.shardNode("k", 0), c.shardNode("k", 2)
			swapShards(x, y, testBucket, "k")
			var buf bytes.Buffer
			if err := obj.WriteRange(context.Background(), &buf, 0, obj.Info().Size); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), data) {
				t.Fatalf("GET resolved before the swap: %d bytes differ from the %d written", buf.Len(), len(data))
			}
			missing := make(map[int]bool)
			for _, hs := range c.allHints() {
				for _, h := range hs {
					if h.Reason == "missing" {
						missing[h.Shard] = true
					}
				}
			}
			if !missing[0] || !missing[2] {
				t.Errorf("shards hinted missing: %v; want 0 and 2", missing)
			}
			c.mustGet("k", data)
		})
	}
}
