package nodeaccess

import (
	"context"
	"errors"
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// tagNode is a statNode that serves versions: SetTags answers err.
type tagNode struct {
	statNode
	client.Versioner
	tags int
}

func (n *tagNode) SetTags(ctx context.Context, u client.TagUpdate) (client.Record, error) {
	n.tags++
	return client.Record{ObjectMeta: client.ObjectMeta{Version: u.Version, Tagging: u.Tagging, TagsAt: u.At}}, n.err
}

// TestGuardSetTags: a tag update goes through the node's breaker like any
// call (failures trip it, an open one refuses); a node that serves no
// versions answers client.ErrNoVersions and leaves its breaker alone.
func TestGuardSetTags(t *testing.T) {
	ctx := context.Background()
	u := client.TagUpdate{Bucket: "b", Key: "k", Version: "v", Tagging: "a=1", At: "s"}

	h := newTracker(t)
	n := &tagNode{}
	g := client.VersionsOf(Guard(n, "n1", h))
	if rec, err := g.SetTags(ctx, u); err != nil || rec.Tagging != "a=1" || n.tags != 1 {
		t.Fatalf("SetTags = %+v, %v after %d calls", rec, err, n.tags)
	}
	n.err = kerr.E("t", kerr.Unavailable, errors.New("connection refused"))
	for range tripAfter {
		g.SetTags(ctx, u)
	}
	if _, err := g.SetTags(ctx, u); !errors.Is(err, health.ErrOpen) {
		t.Fatalf("SetTags through an open breaker = %v, want health.ErrOpen", err)
	}
	if n.tags != 1+tripAfter {
		t.Fatalf("node got %d tag updates, want %d", n.tags, 1+tripAfter)
	}

	h = newTracker(t)
	plain := Guard(&statNode{}, "n2", h)
	for range tripAfter + 1 {
		if _, err := client.VersionsOf(plain).SetTags(ctx, u); !errors.Is(err, client.ErrNoVersions) {
			t.Fatalf("SetTags of a node without versions = %v, want ErrNoVersions", err)
		}
	}
	if _, err := plain.Stat(ctx, "b", "k"); err != nil {
		t.Fatalf("Stat after refused tag updates = %v: the breaker must stay closed", err)
	}
}
