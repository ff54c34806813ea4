package objects

import (
	"bytes"
	"context"
	"fmt"
	"testing"

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
	held := 0
	for i := range 6 {
		rec := c.shardNode("k", i).Committed(testBucket, "k")
		if rec == nil || rec.Version != info.Version {
			continue
		}
		held++
		if rec.Data != 3 || rec.Parity != 3 {
			t.Fatalf("shard %d: committed %d+%d, want 3+3", i, rec.Data, rec.Parity)
		}
	}
	if held != 5 {
		t.Fatalf("%d nodes hold the version, want the 5 that staged", held)
	}
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
