package scrubber

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/testcluster"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

const testBlock = 4096

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// tnode is an in-process storage node served over loopback HTTP, with a
// client for it.
type tnode struct {
	*testcluster.Node
	id string
	c  *client.Client
}

// cluster is a set of in-process nodes and the map naming them; it plays
// the gateway's part in tests (writes, reads) without the gateway.
type cluster struct {
	t     *testing.T
	tc    *testcluster.Cluster
	m     *placement.Map
	nodes []*tnode
	byID  map[string]*tnode
	// versioning, if set, is the bucket versioning state writes commit
	// under, as a gateway's would.
	versioning string
}

func newCluster(t *testing.T, n, d, p int) *cluster {
	t.Helper()
	c := &cluster{t: t, byID: make(map[string]*tnode)}
	c.tc = testcluster.New(t, testcluster.Options{
		Nodes: n, Data: d, Parity: p, BlockSize: testBlock, Real: true, WithDefaults: true,
		First: 1, Zone: func(i int) string { return "z" + strconv.Itoa(i) },
	})
	for _, tn := range c.tc.Nodes {
		c.track(tn)
	}
	c.m = c.tc.Map
	c.createBucket("bk")
	return c
}

// track makes a node of c.tc known to the cluster's helpers.
func (c *cluster) track(n *testcluster.Node) *tnode {
	tn := &tnode{Node: n, id: n.ID, c: n.Client}
	c.nodes = append(c.nodes, tn)
	c.byID[tn.id] = tn
	return tn
}

// down makes node id fail every request until the returned func is called.
func (c *cluster) down(id string) (up func()) { return c.byID[id].Down() }

// hang makes node id hold every request until the client gives up,
// counting them, until the returned func is called.
func (c *cluster) hang(id string, calls *atomic.Int64) (up func()) {
	return c.byID[id].Hang(func() { calls.Add(1) })
}

// reconfigure reopens every node with edit applied to its configuration.
func (c *cluster) reconfigure(edit func(*storagenode.Config)) {
	c.t.Helper()
	for _, tn := range c.nodes {
		tn.Reopen(edit)
	}
}

// wipe replaces the node by an empty one at the same address.
func (c *cluster) wipe(id string) {
	c.t.Helper()
	c.byID[id].Wipe()
}

func (c *cluster) createBucket(name string) {
	c.t.Helper()
	b := client.BucketRecord{Name: name, Version: ulid.Make().String(), Created: time.Now().UTC()}
	for _, tn := range c.nodes {
		if err := tn.c.PutBucket(context.Background(), b); err != nil {
			c.t.Fatal(err)
		}
	}
}

func testData(size int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// shards encodes data under the map's layout.
func (c *cluster) encode(data []byte) ([][]byte, codec.Encoded) {
	c.t.Helper()
	cd, err := codec.New(c.m.DataShards, c.m.ParityShards, codec.WithBlockSize(c.m.BlockSize))
	if err != nil {
		c.t.Fatal(err)
	}
	bufs := make([]*bytes.Buffer, c.m.N())
	ws := make([]io.Writer, len(bufs))
	for i := range bufs {
		bufs[i] = new(bytes.Buffer)
		ws[i] = bufs[i]
	}
	enc, err := cd.Encode(bytes.NewReader(data), ws)
	if err != nil {
		c.t.Fatal(err)
	}
	out := make([][]byte, len(bufs))
	for i, b := range bufs {
		out[i] = b.Bytes()
	}
	return out, enc
}

// write stages a new version of bucket/key on the placement's nodes and
// commits it on those in commit (nil: all); shards not in stage are not
// written at all (the version still names their nodes).
func (c *cluster) write(bucket, key string, data []byte, stage, commit func(i int) bool) client.ObjectMeta {
	c.t.Helper()
	return c.writeNodes(bucket, key, data, stage, commit, false)
}

// underwrite is write of a version that names no node for the shards not
// in stage, as a gateway's write whose stage failed there.
func (c *cluster) underwrite(bucket, key string, data []byte, stage, commit func(i int) bool) client.ObjectMeta {
	c.t.Helper()
	return c.writeNodes(bucket, key, data, stage, commit, true)
}

func (c *cluster) writeNodes(bucket, key string, data []byte, stage, commit func(i int) bool, unnamed bool) client.ObjectMeta {
	c.t.Helper()
	ctx := context.Background()
	shards, enc := c.encode(data)
	placed := c.m.PlaceKey(bucket, key)
	meta := client.ObjectMeta{
		Bucket: bucket, Key: key, Version: ulid.Make().String(), Size: enc.Size,
		Modified: time.Now().UTC(), Data: c.m.DataShards, Parity: c.m.ParityShards,
		BlockSize: c.m.BlockSize, Format: codec.FormatVersion,
		Versioning: c.versioning, Versioned: c.versioning == client.VersioningEnabled,
	}
	for i := range shards {
		meta.Roots = append(meta.Roots, enc.Roots[i].String())
		meta.Nodes = append(meta.Nodes, placed[i].ID)
	}
	for i := range placed {
		if unnamed && stage != nil && !stage(i) {
			meta.Nodes[i] = ""
		}
	}
	for i, n := range placed {
		if stage != nil && !stage(i) {
			continue
		}
		tn := c.byID[n.ID]
		if _, err := tn.c.Stage(ctx, bucket, key, meta.Version, i, meta.BlockSize, bytes.NewReader(shards[i])); err != nil {
			c.t.Fatal(err)
		}
		if commit != nil && !commit(i) {
			continue
		}
		if _, err := tn.c.Commit(ctx, meta); err != nil {
			c.t.Fatal(err)
		}
	}
	return meta
}

// put writes a whole new version.
func (c *cluster) put(bucket, key string, data []byte) client.ObjectMeta {
	c.t.Helper()
	return c.write(bucket, key, data, nil, nil)
}

// del commits a delete marker on the placement's nodes for which on says so
// (nil: all).
func (c *cluster) del(bucket, key string, on func(i int) bool) client.ObjectMeta {
	c.t.Helper()
	meta := client.ObjectMeta{Bucket: bucket, Key: key, Version: ulid.Make().String(), Deleted: true, Modified: time.Now().UTC()}
	for i, n := range c.m.PlaceKey(bucket, key) {
		if on != nil && !on(i) {
			continue
		}
		if _, err := c.byID[n.ID].c.Commit(context.Background(), meta); err != nil {
			c.t.Fatal(err)
		}
	}
	return meta
}

// read returns the newest committed version's bytes, decoded from
// whatever shards the nodes serve (verified by the codec).
func (c *cluster) read(bucket, key string) ([]byte, error) {
	ctx := context.Background()
	placed := c.m.PlaceKey(bucket, key)
	var newest *client.Record
	recs := make([]*client.Record, len(placed))
	for i, n := range placed {
		ks, err := c.byID[n.ID].c.Stat(ctx, bucket, key)
		if err != nil {
			continue
		}
		recs[i] = ks.Committed
		if ks.Committed != nil && (newest == nil || ks.Committed.Version > newest.Version) {
			newest = ks.Committed
		}
	}
	if newest == nil || newest.Deleted {
		return nil, kerr.E("test.read", kerr.NotExist, "no such key")
	}
	readers := make([]io.Reader, newest.Data+newest.Parity)
	for i, r := range recs {
		if r == nil || r.Version != newest.Version || r.Shard < 0 {
			continue
		}
		rc, err := c.byID[placed[i].ID].c.ReadShard(ctx, bucket, key, newest.Version, r.Shard, 0, -1)
		if err != nil {
			continue
		}
		defer rc.Close()
		readers[r.Shard] = rc
	}
	cd, err := codec.New(newest.Data, newest.Parity, codec.WithBlockSize(newest.BlockSize))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err = cd.Decode(&buf, readers, newest.Size, 0, newest.Size)
	return buf.Bytes(), err
}

// shardPath is where node id keeps shard i of a version.
func (c *cluster) shardPath(id, bucket, key, version string, shard int) string {
	return c.byID[id].ShardPath(bucket, key, version, shard)
}

// holder returns the node the placement names for shard i of bucket/key.
func (c *cluster) holder(bucket, key string, i int) string { return c.m.PlaceKey(bucket, key)[i].ID }

// flip corrupts one byte of a committed shard file and returns its
// original bytes.
func (c *cluster) flip(meta client.ObjectMeta, shard int, at int) []byte {
	c.t.Helper()
	path := c.shardPath(c.holder(meta.Bucket, meta.Key, shard), meta.Bucket, meta.Key, meta.Version, shard)
	b, err := os.ReadFile(path)
	if err != nil {
		c.t.Fatal(err)
	}
	orig := slices.Clone(b)
	b[at%len(b)] ^= 0x5a
	if err := os.WriteFile(path, b, 0o644); err != nil {
		c.t.Fatal(err)
	}
	return orig
}

func (c *cluster) scrubber(edit func(*Config)) *Scrubber {
	c.t.Helper()
	cfg := Config{Map: c.m, Concurrency: 2, Logger: quiet()}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { s.Close() })
	return s
}

func mustRun(t *testing.T, s *Scrubber) *Report {
	t.Helper()
	rep, err := s.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v (report %+v)", err, rep)
	}
	return rep
}

// stat returns every node's committed record of bucket/key (nil: none).
func (c *cluster) stat(bucket, key string) map[string]*client.Record {
	c.t.Helper()
	out := make(map[string]*client.Record)
	for _, tn := range c.nodes {
		ks, err := tn.c.Stat(context.Background(), bucket, key)
		if err != nil {
			c.t.Fatal(err)
		}
		out[tn.id] = ks.Committed
	}
	return out
}
