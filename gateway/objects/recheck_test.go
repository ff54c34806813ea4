package objects

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// newRecheckCluster is a 4+2 health cluster on six nodes whose breakers,
// once open, stay open for the whole test unless a write's recheck closes
// them: a node back from an outage is marked down for as long as the
// test looks. Its call timeout is long, so that a refusal coming back
// quickly shows the recheck's own deadline at work.
func newRecheckCluster(t *testing.T) *healthCluster {
	return newHealthClusterWith(t, func(cfg *health.Config) { cfg.OpenFor = time.Hour }, 6, 4, 2,
		func(cfg *Config) { cfg.CallTimeout = 30 * time.Second })
}

// healthCalls returns the health calls each of key's shard nodes got so
// far, by shard.
func (hc *healthCluster) healthCalls(key string) []int {
	out := make([]int, 6)
	for i := range out {
		out[i] = hc.shardNode(key, i).Calls("health")
	}
	return out
}

// TestPutAsksNodesMarkedDown: a PUT that the nodes marked down would have
// refused asks them first. Those that answer are up again for everyone
// and take their shards: all back, the version is written at full
// layout; one back, with raised parity on the five up. Nodes that do not
// answer get the same refusal as before, within the recheck's deadline
// although they hold its probe for an hour. A write that is raised, not
// refused, asks nobody.
func TestPutAsksNodesMarkedDown(t *testing.T) {
	tests := []struct {
		name string
		down []int // shards whose nodes are marked down before the PUT
		back []int // of those, the ones that answer again; the others hang
		// want: data and parity shards and recorded quorum, or 0, 0, 0
		// for a refusal.
		data, parity, quorum int
		asked                bool // the nodes marked down got a health call
	}{
		{"three down, all back", []int{0, 2, 4}, []int{0, 2, 4}, 4, 2, 0, true},
		{"three down, one back", []int{0, 2, 4}, []int{2}, 2, 4, 4, true},
		{"three down, none answers", []int{0, 2, 4}, nil, 0, 0, 0, true},
		{"two down, both back", []int{1, 4}, []int{1, 4}, 2, 4, 4, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := newRecheckCluster(t)
			c := hc.cluster
			old := payload(2*4*testBlock+9, 1)
			c.put("k", old)
			hc.downNodes("k", tt.down...)
			for _, i := range tt.down {
				n := c.shardNode("k", i)
				n.SetDown("*", false)
				if !slices.Contains(tt.back, i) {
					n.SetStall("*", true) // cut off: nothing answers
				}
			}
			calls, stages := hc.healthCalls("k"), 0
			for _, n := range c.list {
				stages += n.Calls("stage")
			}

			data := payload(5*4*testBlock+333, 7)
			start := time.Now()
			info, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)})
			elapsed := time.Since(start)

			after := hc.healthCalls("k")
			for i := range 6 {
				want := calls[i]
				if tt.asked && slices.Contains(tt.down, i) {
					want++
				}
				if after[i] != want {
					t.Errorf("shard %d's node: %d health calls during the put, want %d", i, after[i]-calls[i], want-calls[i])
				}
			}
			if tt.data == 0 {
				wantErr(t, err, ErrQuorum, kerr.Unavailable)
				if !strings.Contains(err.Error(), "3 of 6 nodes for bkt/k are down, need 5") {
					t.Fatalf("error %q: want the refusal for nodes down", err)
				}
				// Bounded by the recheck's deadline, not the hour the
				// nodes hang nor the call timeout.
				if elapsed >= 10*time.Second {
					t.Fatalf("refusal took %v", elapsed)
				}
				for _, n := range c.list {
					stages -= n.Calls("stage")
				}
				if stages != 0 {
					t.Fatalf("%d stages sent for a refused put", -stages)
				}
				for _, i := range tt.down {
					if s := hc.h.State(c.shardNode("k", i).ID()); s != health.Down {
						t.Errorf("silent shard %d's node is %v, want down", i, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("put: %v", err)
			}
			if info.Raised != (tt.data < 4) {
				t.Fatalf("info %+v: Raised %v, want %v", info, info.Raised, tt.data < 4)
			}
			wantNodes := c.nodeIDs("k")
			for _, i := range tt.down {
				if !slices.Contains(tt.back, i) || !tt.asked {
					wantNodes[i] = ""
				}
			}
			for i, id := range wantNodes {
				if id == "" {
					continue
				}
				rec := c.shardNode("k", i).Committed(testBucket, "k")
				if rec == nil || rec.Version != info.Version || rec.Data != tt.data || rec.Parity != tt.parity || rec.Quorum != tt.quorum || !slices.Equal(rec.Nodes, wantNodes) {
					t.Fatalf("shard %d: record %+v, want %d+%d, quorum %d, nodes %q", i, rec, tt.data, tt.parity, tt.quorum, wantNodes)
				}
			}
			for _, i := range tt.back {
				id := c.shardNode("k", i).ID()
				if s := hc.h.State(id); tt.asked && (s != health.Up || !c.s.available(id)) {
					t.Errorf("shard %d's node answered but is %v (available %v)", i, s, c.s.available(id))
				}
			}
			for _, i := range tt.down {
				c.shardNode("k", i).SetStall("*", false)
			}
			c.mustGet("k", data)
		})
	}
}

// TestDeleteAndCompleteAskNodesMarkedDown: a delete marker and a
// multipart completion with three of six nodes marked down but back ask
// them, as a PUT does, and are written on all six at the full write
// quorum. Without asking, the commits those breakers refuse leave them
// one short.
func TestDeleteAndCompleteAskNodesMarkedDown(t *testing.T) {
	for _, op := range []string{"delete", "complete"} {
		t.Run(op, func(t *testing.T) {
			hc := newRecheckCluster(t)
			c := hc.cluster
			ctx := context.Background()
			c.put("k", payload(100, 1))
			id := c.create("k")
			p1, p2 := payload(MinPartSize, 3), payload(1000, 4)
			parts := []PartInfo{c.putPart("k", id, 1, p1), c.putPart("k", id, 2, p2)}
			hc.downNodes("k", 0, 2, 4)
			for _, i := range []int{0, 2, 4} {
				c.shardNode("k", i).SetDown("*", false)
			}

			switch op {
			case "delete":
				if err := c.s.DeleteObject(ctx, testBucket, "k"); err != nil {
					t.Fatalf("delete with three nodes marked down but back: %v", err)
				}
			case "complete":
				if _, err := c.s.CompleteUpload(ctx, CompleteInput{Bucket: testBucket, Key: "k", UploadID: id, Parts: complete(parts...)}); err != nil {
					t.Fatalf("complete with three nodes marked down but back: %v", err)
				}
			}
			for i := range 6 {
				rec := c.shardNode("k", i).Committed(testBucket, "k")
				if rec == nil || rec.Deleted != (op == "delete") || (len(rec.Parts) == 2) != (op == "complete") || rec.Quorum != 0 {
					t.Fatalf("shard %d: record %+v, want the %s's version at full quorum", i, rec, op)
				}
				if n := c.shardNode("k", i); hc.h.State(n.ID()) != health.Up {
					t.Errorf("shard %d's node is %v, want up", i, hc.h.State(n.ID()))
				}
			}
			switch op {
			case "delete":
				_, err := c.s.StatObject(ctx, testBucket, "k")
				wantErr(t, err, ErrNoSuchKey, kerr.NotExist)
			case "complete":
				c.mustGet("k", append(append([]byte(nil), p1...), p2...))
			}
		})
	}
}
