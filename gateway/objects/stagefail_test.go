package objects

import (
	"bytes"
	"context"
	"fmt"
	"testing"
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
