package objects

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// TestPutStageFailureRaisesParity: one node fails its stage call while the
// other five stage their shards, enough for the write quorum. Committed
// as it stood, the version would lack that shard and survive only one
// further failure, not p; the kept body is staged again instead, with
// that node taken for down, as 3+3 on the other five, and survives any
// two of them failing. A body longer than a stripe is kept as it streams.
func TestPutStageFailureRaisesParity(t *testing.T) {
	for _, size := range []int{2*testBlock + 5, 11*testBlock + 7} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) { testPutStageFailureRaisesParity(t, size) })
	}
}

func testPutStageFailureRaisesParity(t *testing.T, size int) {
	c := newCluster(t, 6, 4, 2)
	c.put("k", payload(100, 1))
	bad := c.shardNode("k", 2)
	bad.SetDown("stage", true)
	data := payload(size, 2)
	info, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	if !info.Raised {
		t.Fatalf("put answered %+v, want raised parity", info)
	}
	c.wantHolders("k", info.Version, 3, 3, 5)
	// Any two of the five down: still read back.
	for _, pair := range [][2]int{{0, 1}, {3, 5}, {1, 4}} {
		for _, i := range pair {
			c.shardNode("k", i).SetDown("*", true)
		}
		c.mustGet("k", data)
		for _, i := range pair {
			c.shardNode("k", i).SetDown("*", false)
		}
	}
}

// TestPutPartStageFailureRaisesParity: a part whose stage fails on one
// node is written again with that node taken for down, 3+3 on the other
// five, as a PUT's is: its body is kept like a PUT's. The completed
// object reads back whole with two more nodes down. Before, the part
// answered 503.
func TestPutPartStageFailureRaisesParity(t *testing.T) {
	for _, size := range []int{2*testBlock + 5, 11*testBlock + 7} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			c, _ := mpCluster(t)
			id := c.create("mp")
			bad := c.list[2]
			bad.SetDown("stage", true)
			data := payload(size, 3)
			p := c.putPart("mp", id, 1, data)
			bad.SetDown("stage", false)
			c.flush()
			raised := 0
			for _, n := range c.list {
				n.Edit(func(st *nodetest.State) {
					for _, fk := range st.Keys {
						if rec := fk.Committed; rec != nil && rec.Size == int64(size) && rec.Data == 3 && rec.Parity == 3 {
							raised++
						}
					}
				})
			}
			if raised != 5 {
				t.Fatalf("%d nodes hold the part 3+3, want the 5 that staged", raised)
			}
			if _, err := c.s.CompleteUpload(context.Background(), CompleteInput{Bucket: testBucket, Key: "mp", UploadID: id, Parts: complete(p)}); err != nil {
				t.Fatal(err)
			}
			others := 0
			for _, n := range c.list {
				if n != bad && others < 2 {
					n.SetDown("*", true)
					others++
				}
			}
			c.mustGet("mp", data)
		})
	}
}

// stageFaults makes a node fail its n-th Stage call, by node ID.
type stageFaults struct {
	mu     sync.Mutex
	failOn map[string]int
	calls  map[string]int
}

type stageFaultNode struct {
	*fakeNode
	f *stageFaults
}

func (n stageFaultNode) Stage(ctx context.Context, bucket, key, version string, shard, blockSize int, body io.Reader) (client.StagedRef, error) {
	n.f.mu.Lock()
	n.f.calls[n.ID()]++
	fail := n.f.calls[n.ID()] == n.f.failOn[n.ID()]
	n.f.mu.Unlock()
	if fail {
		io.Copy(io.Discard, body)
		return client.StagedRef{}, kerr.E("test.Stage", kerr.Transient, errors.New("connection reset by peer"))
	}
	return n.fakeNode.Stage(ctx, bucket, key, version, shard, blockSize, body)
}

// TestPutStagedAgainUntilPFailed: a PUT whose nodes fail one by one, one
// in each attempt, is staged again each time with every node that failed
// taken for down, while they are at most p. Here a node the gateway
// takes for down (its breaker open) is left out of the first two
// attempts; A fails the first, B the second, which is then short of its
// quorum. The third, with A and B out, asks the node behind the open
// breaker, which answers, and writes 2+4 on the four others. Before,
// the second attempt's shortfall answered 503.
func TestPutStagedAgainUntilPFailed(t *testing.T) {
	sf := &stageFaults{failOn: map[string]int{}, calls: map[string]int{}}
	hc := newHealthClusterWith(t, func(cfg *health.Config) { cfg.OpenFor = time.Hour }, 6, 4, 2, func(cfg *Config) {
		dial := cfg.Dial
		cfg.Dial = func(pn placement.Node) client.Node {
			return stageFaultNode{fakeNode: dial(pn).(*fakeNode), f: sf}
		}
	})
	hc.put("k", payload(100, 1))
	hc.staleBreakers("k", 1) // shard 0's node: up, breaker open
	a, b := hc.shardNode("k", 1), hc.shardNode("k", 2)
	sf.mu.Lock()
	sf.calls = map[string]int{}
	sf.failOn[a.ID()], sf.failOn[b.ID()] = 1, 2
	sf.mu.Unlock()
	data := payload(3*testBlock+9, 2)
	info := hc.put("k", data)
	if !info.Raised {
		t.Fatalf("put answered %+v, want raised parity", info)
	}
	hc.flush()
	hc.wantHolders("k", info.Version, 2, 4, 4)
	hc.mustGet("k", data)
}

// wantHolders fails the test unless exactly holders of key's nodes hold
// version committed, each coded data+parity.
func (c *cluster) wantHolders(key, version string, data, parity, holders int) {
	c.t.Helper()
	held := 0
	for i := range data + parity {
		rec := c.shardNode(key, i).Committed(testBucket, key)
		if rec == nil || rec.Version != version {
			continue
		}
		held++
		if rec.Data != data || rec.Parity != parity {
			c.t.Fatalf("shard %d: committed %d+%d, want %d+%d", i, rec.Data, rec.Parity, data, parity)
		}
	}
	if held != holders {
		c.t.Fatalf("%d nodes hold version %s, want %d", held, version, holders)
	}
}
