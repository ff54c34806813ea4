package objects

import (
	"context"
	"testing"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// TestManifestCommitHints: a node that answers a manifest's commit
// without committing it is hinted to the nodes that did, under the
// manifest's version and with no shard of its own.
func TestManifestCommitHints(t *testing.T) {
	c, _ := mpCluster(t)
	id := c.create("mh")
	p := c.putPart("mh", id, 1, payload(3000, 5))
	placed := c.s.Map().PlaceKey(testBucket, "mh")
	missed := c.nodes[placed[0].ID]
	missed.Edit(func(st *nodetest.State) { st.DropCommit = true })
	c.allHints()
	if _, err := c.s.CompleteUpload(context.Background(), CompleteInput{Bucket: testBucket, Key: "mh", UploadID: id, Parts: complete(p)}); err != nil {
		t.Fatal(err)
	}
	rec := c.nodes[placed[1].ID].Committed(testBucket, "mh")
	if rec == nil || len(rec.Parts) != 1 {
		t.Fatalf("manifest on %s: %+v", placed[1].ID, rec)
	}
	// The upload's record, deleted by the completion, is hinted too.
	hints := make(map[string][]client.Hint)
	for id, hs := range c.allHints() {
		for _, h := range hs {
			if h.Key == "mh" {
				hints[id] = append(hints[id], h)
			}
		}
	}
	if len(hints) != len(placed)-1 {
		t.Errorf("hints on %d nodes, want %d: %+v", len(hints), len(placed)-1, hints)
	}
	for _, n := range placed[1:] {
		hs := hints[n.ID]
		if len(hs) != 1 {
			t.Errorf("node %s: hints %+v, want one", n.ID, hs)
			continue
		}
		h := hs[0]
		if h.Bucket != testBucket || h.Key != "mh" || h.Version != rec.Version || h.Shard != -1 ||
			h.NodeID != missed.ID() || h.Reason != "missing" || !h.Time.Equal(rec.Modified) {
			t.Errorf("node %s: hint %+v, want the manifest %s missing on %s", n.ID, h, rec.Version, missed.ID())
		}
	}
}
