package storagenode

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// fencedCalls are the node calls that read or change object, bucket or
// hint state, each made once with ctx against a node holding "bk"/"k" at
// ver(1), shard 0 of o.
func fencedCalls(o object) []struct {
	name string
	call func(ctx context.Context, c *client.Client) error
} {
	meta := o.meta("bk", "k", ver(2))
	hint := client.Hint{Bucket: "bk", Key: "k", Version: ver(1), Shard: 0, Reason: "missing"}
	return []struct {
		name string
		call func(ctx context.Context, c *client.Client) error
	}{
		{"stage", func(ctx context.Context, c *client.Client) error {
			_, err := c.Stage(ctx, "bk", "k", ver(2), 0, testBlock, bytes.NewReader(o.shards[0]))
			return err
		}},
		{"commit", func(ctx context.Context, c *client.Client) error { _, err := c.Commit(ctx, meta); return err }},
		{"abort", func(ctx context.Context, c *client.Client) error { return c.Abort(ctx, "bk", "k", ver(2)) }},
		{"stat", func(ctx context.Context, c *client.Client) error { _, err := c.Stat(ctx, "bk", "k"); return err }},
		{"stat data", func(ctx context.Context, c *client.Client) error {
			_, err := c.StatData(ctx, "bk", "k", 1<<20, true)
			return err
		}},
		{"list", func(ctx context.Context, c *client.Client) error { _, err := c.List(ctx, "bk", "", "", 0); return err }},
		{"verify", func(ctx context.Context, c *client.Client) error {
			_, err := c.Verify(ctx, []client.ShardRef{{Bucket: "bk", Key: "k", Version: ver(1)}})
			return err
		}},
		{"drop marker", func(ctx context.Context, c *client.Client) error {
			_, err := c.DropMarker(ctx, "bk", "k", ver(1))
			return err
		}},
		{"drop shard", func(ctx context.Context, c *client.Client) error {
			_, err := c.DropShard(ctx, "bk", "k", ver(1), 1) // another index: a no-op when accepted
			return err
		}},
		{"add hints", func(ctx context.Context, c *client.Client) error { return c.AddHints(ctx, []client.Hint{hint}) }},
		{"list hints", func(ctx context.Context, c *client.Client) error { _, err := c.ListHints(ctx, 0); return err }},
		{"delete hints", func(ctx context.Context, c *client.Client) error {
			return c.DeleteHints(ctx, []client.Hint{hint})
		}},
		{"list staged", func(ctx context.Context, c *client.Client) error { _, err := c.ListStaged(ctx, 0); return err }},
		{"put bucket", func(ctx context.Context, c *client.Client) error {
			return c.PutBucket(ctx, client.BucketRecord{Name: "bk", Version: ver(0)})
		}},
		{"get bucket", func(ctx context.Context, c *client.Client) error { _, err := c.GetBucket(ctx, "bk"); return err }},
		{"list buckets", func(ctx context.Context, c *client.Client) error { _, err := c.ListBuckets(ctx); return err }},
	}
}

// A call made under an older map epoch than the node holds is refused,
// with the node's map in the error and in the call's Fence, and changes
// nothing; the node's committed shard is still there afterwards. A shard
// read, which names the exact version, is served whatever the epoch.
func TestCallUnderOlderEpochIsRefusedWithNewerMap(t *testing.T) {
	tn := startNode(t, "", func(c *Config) { c.Secret = []byte("secret") })
	o := encode(t, 3*testBlock+5, 1)
	tn.put(t, "bk", "k", ver(1), o, 0)
	if err := tn.c.PutMap(context.Background(), testMap(3, 4)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range fencedCalls(o) {
		t.Run(tt.name, func(t *testing.T) {
			f := client.NewFence(2, nil)
			err := tt.call(client.WithFence(context.Background(), f), tn.c)
			var stale *client.StaleMapError
			if !errors.Is(err, client.ErrStaleMap) || !errors.As(err, &stale) || !kerr.Is(kerr.Conflict, err) {
				t.Fatalf("call under epoch 2 on a node at epoch 3: %v, want a refusal with ErrStaleMap", err)
			}
			if stale.Map.Epoch != 3 || len(stale.Map.Nodes) != 4 || stale.Epoch != 2 {
				t.Fatalf("refusal carries map epoch %d (%d nodes), call epoch %d; want the node's map (3, 4 nodes), 2",
					stale.Map.Epoch, len(stale.Map.Nodes), stale.Epoch)
			}
			if m := f.Newer(); m == nil || m.Epoch != 3 {
				t.Fatalf("fence learned %v, want the node's map", m)
			}
		})
	}
	f := client.NewFence(2, nil)
	rc, err := tn.c.ReadShard(client.WithFence(context.Background(), f), "bk", "k", ver(1), 0, 0, -1)
	if err != nil {
		t.Fatalf("shard read under epoch 2: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, o.shards[0]) || f.Newer() != nil {
		t.Fatalf("shard read under epoch 2: %d bytes, %v; want the node's shard, unchanged by the refused calls", len(got), err)
	}
}

// A call with the node's epoch, a newer one (the node has not heard of the
// change yet) or none (admin tools, older callers) is served.
func TestCallUnderCurrentNewerOrNoEpochIsServed(t *testing.T) {
	tn := startNode(t, "", nil)
	o := encode(t, 3*testBlock+5, 1)
	tn.put(t, "bk", "k", ver(1), o, 0)
	if err := tn.c.PutMap(context.Background(), testMap(3, 4)); err != nil {
		t.Fatal(err)
	}
	for _, epoch := range []uint64{0, 3, 4} {
		for _, tt := range fencedCalls(o) {
			f := client.NewFence(epoch, nil)
			err := tt.call(client.WithFence(context.Background(), f), tn.c)
			if errors.Is(err, client.ErrStaleMap) || f.Newer() != nil {
				t.Errorf("%s under epoch %d on a node at epoch 3: refused: %v", tt.name, epoch, err)
			}
		}
	}
}
