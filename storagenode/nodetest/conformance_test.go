package nodetest_test

import (
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/testcluster"
	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// TestConformanceNode runs the suite against the real node over HTTP: the
// reference.
func TestConformanceNode(t *testing.T) {
	nodetest.RunConformance(t, func(t *testing.T) nodetest.Client {
		c := testcluster.New(t, testcluster.Options{Nodes: 1, Data: 1, Parity: 0, Real: true})
		return newRealNode(c.Nodes[0].Client, c.Nodes[0])
	})
}

// TestConformanceLocal runs the suite against the real node called in
// process (storagenode.Local): it must be indistinguishable from the
// node over HTTP.
func TestConformanceLocal(t *testing.T) {
	nodetest.RunConformance(t, func(t *testing.T) nodetest.Client {
		c := testcluster.New(t, testcluster.Options{Nodes: 1, Data: 1, Parity: 0, Real: true})
		return newRealNode(c.Nodes[0].Local(nil), c.Nodes[0])
	})
}

// TestGraceConformanceNode runs the grace cases against a real node with a
// superseded grace.
func TestGraceConformanceNode(t *testing.T) {
	nodetest.RunGraceConformance(t, func(t *testing.T) nodetest.Client {
		c := testcluster.New(t, testcluster.Options{Nodes: 1, Data: 1, Parity: 0, Real: true,
			Node: storagenode.Config{SupersededGrace: time.Hour}})
		return c.Nodes[0].Client
	})
}

// TestGraceConformanceFake runs the grace cases against the fake set to
// keep superseded shards.
func TestGraceConformanceFake(t *testing.T) {
	nodetest.RunGraceConformance(t, func(t *testing.T) nodetest.Client {
		n := nodetest.New("fake")
		n.Edit(func(st *nodetest.State) { st.KeepSuperseded = true })
		return n
	})
}

// TestConformanceFake runs the suite against the in-memory fake.
func TestConformanceFake(t *testing.T) {
	nodetest.RunConformance(t, func(t *testing.T) nodetest.Client { return nodetest.New("fake") })
}

// realNode is a real node's client that can corrupt the node's shards
// and serves versions (client.Versioner) as the node does.
type realNode struct {
	nodetest.Client
	client.Versioner
	n *testcluster.Node
}

func newRealNode(c nodetest.Client, n *testcluster.Node) realNode {
	return realNode{Client: c, Versioner: client.VersionsOf(c), n: n}
}

func (r realNode) CorruptShard(bucket, key, version string, shard int, off int64) error {
	return r.n.CorruptShard(bucket, key, version, shard, off)
}
