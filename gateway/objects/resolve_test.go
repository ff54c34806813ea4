package objects

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/testcluster"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// answer is what a GET answered, for comparing reads.
func answer(data []byte, err error) string {
	switch {
	case errors.Is(err, ErrNoSuchKey):
		return "404"
	case err != nil:
		return "error: " + err.Error()
	}
	return fmt.Sprintf("200, %d bytes %x", len(data), data[:min(len(data), 8)])
}

// bothPaths reads key through the fast path (the data shards' nodes
// alone, as on a healthy cluster) and then through the full one (every
// node: forced by a map change that places the key on the same nodes),
// twice each, and returns the answers.
func bothPaths(s *Store, get func() ([]byte, error)) []string {
	var got []string
	for range 2 {
		got = append(got, answer(get()))
	}
	m := *s.Map()
	m.Epoch++
	s.SetMap(&m)
	for range 2 {
		got = append(got, answer(get()))
	}
	return got
}

// A delete marker committed on one node only (the delete was never
// acknowledged) must not make the answer depend on which nodes a read
// asked: the fast path asks only the data shards' nodes, the full one
// every node. Both serve the version the marker failed to delete.
func TestUnacknowledgedMarkerSameOnEveryPath(t *testing.T) {
	for _, shard := range []int{0, 4} { // a data node, a parity node
		t.Run(fmt.Sprintf("marker on shard %d's node", shard), func(t *testing.T) {
			c := newCluster(t, 6, 4, 2)
			data := payload(4*testBlock+5, 3)
			c.put("k", data)
			marker := client.ObjectMeta{Bucket: testBucket, Key: "k", Version: c.s.newVersion(), Deleted: true, Modified: testNow}
			if _, err := c.shardNode("k", shard).Commit(context.Background(), marker); err != nil {
				t.Fatal(err)
			}
			want := answer(data, nil)
			for i, got := range bothPaths(c.s, func() ([]byte, error) { return c.get("k") }) {
				if got != want {
					t.Errorf("read %d (%s path): %s, want %s", i, map[bool]string{true: "fast", false: "full"}[i < 2], got, want)
				}
			}
		})
	}
}

// nodeCluster is a Store over six real storage nodes (4+2) on loopback.
type nodeCluster struct {
	s     *Store
	nodes map[string]*client.Client
}

func newNodeCluster(t *testing.T) *nodeCluster {
	t.Helper()
	rc := &nodeCluster{nodes: make(map[string]*client.Client)}
	tc := testcluster.New(t, testcluster.Options{Real: true, Partitions: 64, BlockSize: testBlock})
	for _, nd := range tc.Nodes {
		rc.nodes[nd.ID] = nd.Client
	}
	s, err := New(Config{
		Map:         tc.Map,
		Dial:        func(n placement.Node) client.Node { return rc.nodes[n.ID] },
		CallTimeout: 5 * time.Second,
		Logger:      slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.bg.Wait)
	if err := s.CreateBucket(context.Background(), testBucket); err != nil {
		t.Fatal(err)
	}
	rc.s = s
	return rc
}

func (rc *nodeCluster) get(key string) ([]byte, error) {
	obj, err := rc.s.OpenObject(context.Background(), testBucket, key)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = obj.WriteRange(context.Background(), &buf, 0, obj.Info().Size)
	return buf.Bytes(), err
}

// TestUnacknowledgedMarkerSameOnEveryPathRealNodes is the same state on
// real nodes.
func TestUnacknowledgedMarkerSameOnEveryPathRealNodes(t *testing.T) {
	for _, shard := range []int{0, 4} {
		t.Run(fmt.Sprintf("marker on shard %d's node", shard), func(t *testing.T) {
			rc := newNodeCluster(t)
			ctx := context.Background()
			data := payload(4*testBlock+5, 3)
			if _, err := rc.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)}); err != nil {
				t.Fatal(err)
			}
			marker := client.ObjectMeta{Bucket: testBucket, Key: "k", Version: rc.s.newVersion(), Deleted: true, Modified: time.Now().UTC()}
			id := rc.s.Map().PlaceKey(testBucket, "k")[shard].ID
			if _, err := rc.nodes[id].Commit(ctx, marker); err != nil {
				t.Fatal(err)
			}
			want := answer(data, nil)
			for i, got := range bothPaths(rc.s, func() ([]byte, error) { return rc.get("k") }) {
				if got != want {
					t.Errorf("read %d (%s path): %s, want %s", i, map[bool]string{true: "fast", false: "full"}[i < 2], got, want)
				}
			}
		})
	}
}

// Answers taken at different moments of a write, on a machine too loaded
// to finish a commit round quickly: three nodes have committed V, and the
// other three go on answering as before V's stage reached them for more
// looks than a reader made in 150 ms. Every node is up, so this is a
// write in progress, never a 503: the reader asks until the stages show,
// then finishes V's commit.
func TestReadOutlastsSlowCommitRound(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	nodes, data := halfCommitted(t, c)
	// Shard 3's node is asked twice per look (the quick look at the data
	// shards' nodes, then all six), the others once.
	for i, n := range nodes[3:] {
		n.Edit(func(n *nodetest.State) { n.HideStaged = 7 * (1 + max(1-i, 0)) })
	}
	c.mustGet("k", data)
	v := nodes[0].Committed(testBucket, "k").Version
	for _, n := range nodes {
		if rec := n.Committed(testBucket, "k"); rec == nil || rec.Version != v {
			t.Fatalf("node %s committed %+v after the read, want version %s", n.ID(), rec, v)
		}
	}
}
