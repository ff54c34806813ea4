package nodetest_test

import (
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/testcluster"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// TestConformanceNode runs the suite against the real node over HTTP: the
// reference.
func TestConformanceNode(t *testing.T) {
	nodetest.RunConformance(t, func(t *testing.T) nodetest.Client {
		c := testcluster.New(t, testcluster.Options{Nodes: 1, Data: 1, Parity: 0, Real: true})
		return realNode{c.Nodes[0].Client, c.Nodes[0]}
	})
}

// TestConformanceFake runs the suite against the in-memory fake.
func TestConformanceFake(t *testing.T) {
	nodetest.RunConformance(t, func(t *testing.T) nodetest.Client { return nodetest.New("fake") })
}

// realNode is a real node's client that can corrupt the node's shards.
type realNode struct {
	*client.Client
	n *testcluster.Node
}

func (r realNode) CorruptShard(bucket, key, version string, shard int, off int64) error {
	return r.n.CorruptShard(bucket, key, version, shard, off)
}
