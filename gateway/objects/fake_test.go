package objects

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/clock"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/testcluster"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// fakeNode is the in-memory node the protocol tests run against; the
// node conformance suite (nodetest.RunConformance) checks it keeps the
// node's contract.
type fakeNode = nodetest.Node

var _ client.Node = (*fakeNode)(nil)

// corrupt flips one byte of n's committed shard of key at off.
func corrupt(t *testing.T, n *fakeNode, bucket, key string, off int64) {
	t.Helper()
	if err := n.Corrupt(bucket, key, off); err != nil {
		t.Fatal(err)
	}
}

// cluster is a Store over fake nodes, one per zone.
type cluster struct {
	t     testing.TB
	nodes map[string]*fakeNode
	list  []*fakeNode
	s     *Store
	// clock is the Store's Now unless a test sets its own: it reads
	// testNow until a test advances it.
	clock *clock.Manual
}

const (
	testBlock  = 4096
	testBucket = "bkt"
)

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// shortStall makes stalled streams fail fast. It must still be long enough
// for a healthy stream on a loaded machine under the race detector.
func shortStall(cfg *Config) { cfg.StallTimeout = 400 * time.Millisecond }

// noPreload makes every read stream its shards, as for large objects.
func noPreload(cfg *Config) { cfg.PreloadMax = -1 }

// newCluster starts a store over nodes fake nodes with d+p erasure and
// block size testBlock, and creates testBucket.
func newCluster(t testing.TB, nodes, d, p int, opts ...func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, nodes: make(map[string]*fakeNode), clock: clock.NewManual(testNow)}
	tc := testcluster.New(t, testcluster.Options{Nodes: nodes, Data: d, Parity: p, Partitions: 64, BlockSize: testBlock})
	for _, nd := range tc.Nodes {
		c.nodes[nd.ID] = nd.Fake
		c.list = append(c.list, nd.Fake)
	}
	cfg := Config{
		Map:          tc.Map,
		Dial:         func(n placement.Node) client.Node { return c.nodes[n.ID] },
		CallTimeout:  time.Second,
		StallTimeout: 5 * time.Second, // stall tests shorten it

		BucketCacheTTL: time.Hour,
		Now:            c.clock.Now,
		Logger:         slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.s = s
	if err := s.CreateBucket(context.Background(), testBucket); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.bg.Wait)
	return c
}

// shardNode returns the fake node the current map places shard i of key on.
func (c *cluster) shardNode(key string, i int) *fakeNode {
	return c.nodes[c.s.Map().PlaceKey(testBucket, key)[i].ID]
}

// flush waits for background hint and abort deliveries.
func (c *cluster) flush() { c.s.bg.Wait() }

// allHints returns and clears every node's hints, by node ID.
func (c *cluster) allHints() map[string][]client.Hint {
	c.flush()
	out := make(map[string][]client.Hint)
	for _, n := range c.list {
		if h := n.TakeHints(); len(h) > 0 {
			out[n.ID()] = h
		}
	}
	return out
}

func (c *cluster) put(key string, data []byte) ObjectInfo {
	c.t.Helper()
	info, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: key, Size: int64(len(data)), Body: bytes.NewReader(data)})
	if err != nil {
		c.t.Fatalf("put %s: %v", key, err)
	}
	return info
}

// get reads key whole.
func (c *cluster) get(key string) ([]byte, error) {
	obj, err := c.s.OpenObject(context.Background(), testBucket, key)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = obj.WriteRange(context.Background(), &buf, 0, obj.Info().Size)
	return buf.Bytes(), err
}

func (c *cluster) mustGet(key string, want []byte) {
	c.t.Helper()
	got, err := c.get(key)
	if err != nil {
		c.t.Fatalf("get %s: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		c.t.Fatalf("get %s: %d bytes differ from the %d written", key, len(got), len(want))
	}
}

// assertNothing fails unless no node has anything committed or staged for key.
func (c *cluster) assertNothing(key string) {
	c.t.Helper()
	c.flush()
	for _, n := range c.list {
		if rec := n.Committed(testBucket, key); rec != nil {
			c.t.Errorf("node %s has %s committed", n.ID(), rec.Version)
		}
		if st := n.StagedVersions(testBucket, key); len(st) > 0 {
			c.t.Errorf("node %s has %v staged", n.ID(), st)
		}
	}
}

// payload returns n deterministic, non-repeating-looking bytes.
func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func wantErr(t *testing.T, err, sentinel error, kind kerr.Kind) {
	t.Helper()
	if !errors.Is(err, sentinel) || kerr.KindOf(err) != kind {
		t.Fatalf("error %v: want %v with kind %v (got kind %v)", err, sentinel, kind, kerr.KindOf(err))
	}
}
