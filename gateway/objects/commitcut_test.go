package objects

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestCommitCutWhenNodeGoesDown: two nodes take a PUT's stage and then
// stop answering, their commits hanging. Once heartbeats mark them down,
// their commit calls are cut off as a stage's streams are, rather than
// held for the commit timeout (30 s here), and the write, short of its
// quorum on the four others, is finished as its re-code with raised
// parity on those four: acknowledged within seconds, and read back.
func TestCommitCutWhenNodeGoesDown(t *testing.T) {
	hc := newHealthCluster(t, 6, 4, 2, func(cfg *Config) { cfg.CallTimeout = 30 * time.Second })
	hc.heartbeats()
	c := hc.cluster
	c.put("k", payload(1000, 1))
	gone := []*fakeNode{c.shardNode("k", 1), c.shardNode("k", 4)}
	for _, n := range gone {
		n.SetStall("commit", true)
	}
	// When both hold a hanging commit, their heartbeats stop answering too.
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if gone[0].Calls("commit") > 1 && gone[1].Calls("commit") > 1 {
				for _, n := range gone {
					n.SetStall("health", true)
				}
				return
			}
		}
	}()

	data := payload(3*testBlock+17, 2)
	start := time.Now()
	info, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("put: %v after %v", err, elapsed)
	}
	if elapsed > 15*time.Second {
		t.Errorf("put took %v: its commits waited for the nodes that went down", elapsed)
	}
	if !info.Raised {
		t.Errorf("put answered %+v, want the re-code with raised parity", info)
	}
	c.mustGet("k", data)
}
