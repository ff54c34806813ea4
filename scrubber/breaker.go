package scrubber

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// A node that keeps failing (timeouts, refused or reset connections, 5xx)
// is skipped at once rather than waited for on every object: after
// breakerTrip failures in a row its calls fail immediately for
// breakerOpen, then one call probes it. Answers about the data (not
// found, corrupt, invalid) are successes for the breaker.
const (
	breakerTrip = 3
	breakerOpen = 5 * time.Second
)

// guarded is a NodeClient behind a circuit breaker.
type guarded struct {
	NodeClient
	id string
	cb *gobreaker.CircuitBreaker[any]
}

func guard(id string, c NodeClient) *guarded {
	return &guarded{NodeClient: c, id: id, cb: gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        id,
		Timeout:     breakerOpen,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= breakerTrip },
		IsSuccessful: func(err error) bool {
			return err == nil || !(kerr.Is(kerr.Transient, err) || kerr.Is(kerr.Unavailable, err))
		},
		// The caller gave up (its pass ends, or starts over under a new
		// map): not the node's fault.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) || errors.Is(err, errNewMap) },
	})}
}

// do runs fn through g's breaker.
func do[T any](g *guarded, op string, fn func() (T, error)) (T, error) {
	var out T
	_, err := g.cb.Execute(func() (any, error) {
		var err error
		out, err = fn()
		return nil, err
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return out, kerr.E(op, kerr.Unavailable, fmt.Errorf("node %s is failing; skipped: %w", g.id, err))
	}
	return out, err
}

func do0(g *guarded, op string, fn func() error) error {
	_, err := do(g, op, func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

func (g *guarded) Health(ctx context.Context) (client.Health, error) {
	return do(g, "scrubber.Health", func() (client.Health, error) { return g.NodeClient.Health(ctx) })
}

func (g *guarded) Stage(ctx context.Context, bucket, key, version string, shard, blockSize int, body io.Reader) (client.StagedRef, error) {
	return do(g, "scrubber.Stage", func() (client.StagedRef, error) {
		return g.NodeClient.Stage(ctx, bucket, key, version, shard, blockSize, body)
	})
}

func (g *guarded) Commit(ctx context.Context, meta client.ObjectMeta) (client.Record, error) {
	return do(g, "scrubber.Commit", func() (client.Record, error) { return g.NodeClient.Commit(ctx, meta) })
}

func (g *guarded) Abort(ctx context.Context, bucket, key, version string) error {
	return do0(g, "scrubber.Abort", func() error { return g.NodeClient.Abort(ctx, bucket, key, version) })
}

// ReadShard guards the opening of the stream; read errors in it are left
// to the decoder, which drops the shard.
func (g *guarded) ReadShard(ctx context.Context, bucket, key, version string, shard int, off, length int64) (io.ReadCloser, error) {
	return do(g, "scrubber.ReadShard", func() (io.ReadCloser, error) {
		return g.NodeClient.ReadShard(ctx, bucket, key, version, shard, off, length)
	})
}

func (g *guarded) Stat(ctx context.Context, bucket, key string) (client.KeyState, error) {
	return do(g, "scrubber.Stat", func() (client.KeyState, error) { return g.NodeClient.Stat(ctx, bucket, key) })
}

func (g *guarded) List(ctx context.Context, bucket, prefix, after string, limit int) (client.ListPage, error) {
	return do(g, "scrubber.List", func() (client.ListPage, error) {
		return g.NodeClient.List(ctx, bucket, prefix, after, limit)
	})
}

func (g *guarded) PutBucket(ctx context.Context, rec client.BucketRecord) error {
	return do0(g, "scrubber.PutBucket", func() error { return g.NodeClient.PutBucket(ctx, rec) })
}

func (g *guarded) ListBuckets(ctx context.Context) ([]client.BucketRecord, error) {
	return do(g, "scrubber.ListBuckets", func() ([]client.BucketRecord, error) { return g.NodeClient.ListBuckets(ctx) })
}

func (g *guarded) ListHints(ctx context.Context, limit int) ([]client.Hint, error) {
	return do(g, "scrubber.ListHints", func() ([]client.Hint, error) { return g.NodeClient.ListHints(ctx, limit) })
}

func (g *guarded) DeleteHints(ctx context.Context, hints []client.Hint) error {
	return do0(g, "scrubber.DeleteHints", func() error { return g.NodeClient.DeleteHints(ctx, hints) })
}

func (g *guarded) Verify(ctx context.Context, refs []client.ShardRef) ([]client.VerifyResult, error) {
	return do(g, "scrubber.Verify", func() ([]client.VerifyResult, error) { return g.NodeClient.Verify(ctx, refs) })
}

func (g *guarded) DropMarker(ctx context.Context, bucket, key, version string) (bool, error) {
	return do(g, "scrubber.DropMarker", func() (bool, error) { return g.NodeClient.DropMarker(ctx, bucket, key, version) })
}

func (g *guarded) ListStaged(ctx context.Context, limit int) ([]client.StagedShard, error) {
	return do(g, "scrubber.ListStaged", func() ([]client.StagedShard, error) { return g.NodeClient.ListStaged(ctx, limit) })
}

func (g *guarded) PutMap(ctx context.Context, m *placement.Map) error {
	return do0(g, "scrubber.PutMap", func() error { return g.NodeClient.PutMap(ctx, m) })
}

func (g *guarded) DropShard(ctx context.Context, bucket, key, version string, shard int) (bool, error) {
	return do(g, "scrubber.DropShard", func() (bool, error) { return g.NodeClient.DropShard(ctx, bucket, key, version, shard) })
}
