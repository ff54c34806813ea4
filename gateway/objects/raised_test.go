package objects

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// downNodes takes the nodes of key's shards at positions down and waits
// until the store knows them down.
func (hc *healthCluster) downNodes(key string, down ...int) {
	hc.t.Helper()
	for _, i := range down {
		n := hc.shardNode(key, i)
		n.SetDown("*", true)
		hc.waitState(n.ID(), health.Down)
	}
}

// upNodes brings the nodes of key's shards at positions up back and waits
// until the store knows them up.
func (hc *healthCluster) upNodes(key string, up ...int) {
	hc.t.Helper()
	for _, i := range up {
		n := hc.shardNode(key, i)
		n.SetDown("*", false)
		hc.waitState(n.ID(), health.Up)
	}
}

// TestPutTwoDownRaised is a write with p = 2 of its 6 nodes known down:
// coded 2+4 on the 4 up nodes, with write quorum 4 recorded, and readable
// after the two down nodes return empty-handed and two of the four that
// took it fail. Four nodes silent at once is one too many for the read
// rule (a newer write raised the same way could be on those four alone),
// so that read is refused rather than risk a stale answer.
func TestPutTwoDownRaised(t *testing.T) {
	for _, down := range [][]int{{1, 4}, {0, 1}, {4, 5}} {
		t.Run("", func(t *testing.T) {
			hc := newHealthCluster(t, 6, 4, 2)
			c := hc.cluster
			old := payload(3*4*testBlock+5, 3)
			c.put("k", old)
			hc.downNodes("k", down...)

			data := payload(5*4*testBlock+333, 7)
			info := c.put("k", data)
			if !info.Raised {
				t.Fatalf("info %+v: want Raised", info)
			}
			var up []int
			for i := range 6 {
				if !slices.Contains(down, i) {
					up = append(up, i)
				}
			}
			wantNodes := c.nodeIDs("k")
			for _, i := range down {
				wantNodes[i] = ""
			}
			for _, i := range up {
				rec := c.shardNode("k", i).Committed(testBucket, "k")
				if rec == nil || rec.Version != info.Version || rec.Data != 2 || rec.Parity != 4 || rec.Quorum != 4 || !slices.Equal(rec.Nodes, wantNodes) {
					t.Fatalf("shard %d: record %+v, want 2+4, quorum 4, nodes %q", i, rec, wantNodes)
				}
			}
			c.mustGet("k", data)

			// The down nodes return holding the old version only.
			hc.upNodes("k", down...)
			c.mustGet("k", data)
			// Two of the nodes that took the write fail: p further
			// failures, and the bytes are still there.
			hc.downNodes("k", up[0], up[3])
			c.mustGet("k", data)

			// The first two down again too: four silent.
			hc.downNodes("k", down...)
			_, err := c.get("k")
			wantErr(t, err, ErrQuorum, kerr.Unavailable)
		})
	}
}

// TestPutThreeDownRefused: with more than p of a key's nodes known down
// the PUT is refused at once, nothing streamed, and the old version stays.
func TestPutThreeDownRefused(t *testing.T) {
	hc := newHealthCluster(t, 6, 4, 2)
	c := hc.cluster
	old := payload(2*4*testBlock, 1)
	c.put("k", old)
	hc.downNodes("k", 0, 2, 4)
	before := 0
	for _, n := range c.list {
		before += n.Calls("stage")
	}
	data := payload(100, 2)
	_, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: 100, Body: bytes.NewReader(data)})
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
	after := 0
	for _, n := range c.list {
		after += n.Calls("stage")
	}
	if after != before {
		t.Fatalf("%d stages sent for a refused put", after-before)
	}
	hc.upNodes("k", 0, 2, 4)
	c.mustGet("k", old)
}

// TestRaisedQuorumEveryUpNode: with two of six nodes down a raised write
// needs all four up nodes; one of them refusing its commit fails the PUT.
// Like any unacknowledged write it may or may not become visible (three
// commits of a 2+4 version are readable), but reads are exact either way.
func TestRaisedQuorumEveryUpNode(t *testing.T) {
	hc := newHealthCluster(t, 6, 4, 2)
	c := hc.cluster
	old := payload(4*testBlock, 1)
	c.put("k", old)
	hc.downNodes("k", 2, 3)
	c.shardNode("k", 5).SetDown("commit", true)
	data := payload(4*testBlock+1, 2)
	_, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)})
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
	c.shardNode("k", 5).SetDown("commit", false)
	hc.upNodes("k", 2, 3)
	if got, err := c.get("k"); err != nil || !bytes.Equal(got, old) && !bytes.Equal(got, data) {
		t.Fatalf("get: %d bytes, %v; want the old or the new bytes", len(got), err)
	}
}

// TestDeleteAndCompleteTwoDown: a delete marker and a multipart
// completion are written with two of six nodes down, and win once the
// nodes return holding the older versions.
func TestDeleteAndCompleteTwoDown(t *testing.T) {
	hc := newHealthCluster(t, 6, 4, 2)
	c := hc.cluster
	ctx := context.Background()
	c.put("k", payload(100, 1))
	c.put("big", payload(100, 2))
	hc.downNodes("k", 0, 3)

	if err := c.s.DeleteObject(ctx, testBucket, "k"); err != nil {
		t.Fatalf("delete with two down: %v", err)
	}
	id := c.create("big")
	p1, p2 := payload(MinPartSize, 3), payload(1000, 4)
	parts := []PartInfo{c.putPart("big", id, 1, p1), c.putPart("big", id, 2, p2)}
	if _, err := c.s.CompleteUpload(ctx, CompleteInput{Bucket: testBucket, Key: "big", UploadID: id, Parts: complete(parts...)}); err != nil {
		t.Fatalf("complete with two down: %v", err)
	}
	for _, i := range []int{1, 2, 4, 5} {
		if rec := c.shardNode("k", i).Committed(testBucket, "k"); rec == nil || !rec.Deleted || rec.Quorum != 4 {
			t.Fatalf("node %d: marker %+v, want quorum 4", i, rec)
		}
	}

	hc.upNodes("k", 0, 3)
	_, err := c.s.StatObject(ctx, testBucket, "k")
	wantErr(t, err, ErrNoSuchKey, kerr.NotExist)
	c.mustGet("big", append(append([]byte(nil), p1...), p2...))
}

// TestPutStagedAgainWhenNodesFailMidStage: two nodes the store still
// takes for up fail their stage calls, so a small PUT misses its stage
// quorum (4 of 6, need 5) with nothing committed anywhere. It is staged
// again at once with those two taken for down, raised to 2+4 on the four
// others, and acknowledged: a write is not refused while at most p of its
// nodes are out, even when they went out after it began.
func TestPutStagedAgainWhenNodesFailMidStage(t *testing.T) {
	hc := newHealthCluster(t, 6, 4, 2)
	c := hc.cluster
	failing := []int{1, 4}
	for _, i := range failing {
		c.shardNode("k", i).SetDown("stage", true)
	}
	data := payload(3*testBlock+17, 5) // within one stripe: kept for a second try
	info := c.put("k", data)
	if !info.Raised {
		t.Fatalf("info %+v: want Raised", info)
	}
	for _, i := range failing {
		n := c.shardNode("k", i)
		if got := n.Calls("stage"); got != 1 {
			t.Errorf("shard %d's node got %d stage calls, want 1 (the first try only)", i, got)
		}
		if rec := n.Committed(testBucket, "k"); rec != nil {
			t.Errorf("shard %d's node committed %+v", i, rec)
		}
	}
	c.mustGet("k", data)
}
