package nodeaccess

import (
	"context"
	"io"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// guarded is a client.Node whose every call passes the node's circuit
// breaker first and reports how it ended. Calls whose duration says more
// about the size of what they move than about the node (stages, pages,
// verifies) report only their outcome; a shard read counts as answered,
// and is timed, once its stream opens.
type guarded struct {
	n  client.Node
	id string
	h  *health.Tracker
	// bypass makes calls even through an open breaker (see Bypass).
	bypass bool
}

// Guard returns n behind the breaker of node id in h. With a nil h it
// returns n unchanged.
func Guard(n client.Node, id string, h *health.Tracker) client.Node {
	if h == nil {
		return n
	}
	return guarded{n: n, id: id, h: h}
}

type bypassKey struct{}

// WithBypass returns a context whose node calls go through open breakers.
// Breakers exist so that a dead node costs nothing; they must never refuse
// a request the nodes could serve, as happens for a heartbeat or two after
// a node comes back (or after every node of a cluster restarted at once).
func WithBypass(ctx context.Context) context.Context {
	return context.WithValue(ctx, bypassKey{}, true)
}

// Bypass returns n, if it is guarded, as a node whose calls go through an
// open breaker; any other n unchanged.
func Bypass(n client.Node) client.Node {
	if g, ok := n.(guarded); ok {
		g.bypass = true
		return g
	}
	return n
}

// Bypassed reports whether n was returned by Bypass.
func Bypassed(n client.Node) bool {
	g, ok := n.(guarded)
	return ok && g.bypass
}

// begin passes the node's breaker. An open breaker refuses the call unless
// the caller bypasses breakers; a bypassing call through an open breaker is
// made but not reported (the breaker learns from its own probes).
// In the second pass of an Attempt, a node that failed in the first is
// refused before its breaker, and one its breaker refused goes through.
func (g guarded) begin(ctx context.Context) (call health.Call, report bool, err error) {
	again := againOf(ctx)
	if again != nil && again.has(again.failed, g.id) {
		return health.Call{}, false, failedBefore(g.id)
	}
	call, err = g.h.Begin(g.id)
	switch {
	case err == nil:
		return call, true, nil
	case g.bypass || ctx.Value(bypassKey{}) != nil:
		return call, false, nil
	case again != nil && again.has(again.refused, g.id):
		return call, false, nil
	default:
		if a := attemptOf(ctx); a != nil {
			a.note(a.refused, g.id)
		}
		return call, false, err
	}
}

// timed and untimed tell do whether the call's duration is worth learning.
const (
	timed   = true
	untimed = false
)

// do makes one call through g's breaker.
func do[T any](ctx context.Context, g guarded, withTime bool, fn func() (T, error)) (T, error) {
	call, report, err := g.begin(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	out, err := fn()
	if a := attemptOf(ctx); a != nil && err != nil && health.CountsAgainst(ctx, err) {
		a.note(a.failed, g.id)
	}
	switch {
	case !report:
	case withTime:
		call.End(ctx, err)
	default:
		call.EndStream(ctx, err)
	}
	return out, err
}

// do0 is do for a call that returns only an error.
func do0(ctx context.Context, g guarded, withTime bool, fn func() error) error {
	_, err := do(ctx, g, withTime, func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

func (g guarded) Stage(ctx context.Context, bucket, key, version string, shard, blockSize int, body io.Reader) (client.StagedRef, error) {
	return do(ctx, g, untimed, func() (client.StagedRef, error) {
		return g.n.Stage(ctx, bucket, key, version, shard, blockSize, body)
	})
}

func (g guarded) Commit(ctx context.Context, meta client.ObjectMeta) (client.Record, error) {
	return do(ctx, g, timed, func() (client.Record, error) { return g.n.Commit(ctx, meta) })
}

func (g guarded) Abort(ctx context.Context, bucket, key, version string) error {
	return do0(ctx, g, timed, func() error { return g.n.Abort(ctx, bucket, key, version) })
}

// ReadShard guards the opening of the stream; errors while reading it are
// the reader's to judge (a stall, a corrupt block).
func (g guarded) ReadShard(ctx context.Context, bucket, key, version string, shard int, off, length int64) (io.ReadCloser, error) {
	return do(ctx, g, timed, func() (io.ReadCloser, error) {
		return g.n.ReadShard(ctx, bucket, key, version, shard, off, length)
	})
}

func (g guarded) Stat(ctx context.Context, bucket, key string) (client.KeyState, error) {
	return do(ctx, g, timed, func() (client.KeyState, error) { return g.n.Stat(ctx, bucket, key) })
}

func (g guarded) StatData(ctx context.Context, bucket, key string, limit int64, parity bool) (client.KeyState, error) {
	return do(ctx, g, timed, func() (client.KeyState, error) { return g.n.StatData(ctx, bucket, key, limit, parity) })
}

func (g guarded) List(ctx context.Context, bucket, prefix, after string, limit int) (client.ListPage, error) {
	return do(ctx, g, untimed, func() (client.ListPage, error) { return g.n.List(ctx, bucket, prefix, after, limit) })
}

func (g guarded) ListStaged(ctx context.Context, limit int) ([]client.StagedShard, error) {
	return do(ctx, g, untimed, func() ([]client.StagedShard, error) { return g.n.ListStaged(ctx, limit) })
}

func (g guarded) PutBucket(ctx context.Context, rec client.BucketRecord) error {
	return do0(ctx, g, timed, func() error { return g.n.PutBucket(ctx, rec) })
}

func (g guarded) GetBucket(ctx context.Context, name string) (client.BucketRecord, error) {
	return do(ctx, g, timed, func() (client.BucketRecord, error) { return g.n.GetBucket(ctx, name) })
}

func (g guarded) ListBuckets(ctx context.Context) ([]client.BucketRecord, error) {
	return do(ctx, g, untimed, func() ([]client.BucketRecord, error) { return g.n.ListBuckets(ctx) })
}

func (g guarded) AddHints(ctx context.Context, hints []client.Hint) error {
	return do0(ctx, g, timed, func() error { return g.n.AddHints(ctx, hints) })
}

func (g guarded) ListHints(ctx context.Context, limit int) ([]client.Hint, error) {
	return do(ctx, g, untimed, func() ([]client.Hint, error) { return g.n.ListHints(ctx, limit) })
}

func (g guarded) DeleteHints(ctx context.Context, hints []client.Hint) error {
	return do0(ctx, g, timed, func() error { return g.n.DeleteHints(ctx, hints) })
}

func (g guarded) Verify(ctx context.Context, refs []client.ShardRef) ([]client.VerifyResult, error) {
	return do(ctx, g, untimed, func() ([]client.VerifyResult, error) { return g.n.Verify(ctx, refs) })
}

func (g guarded) DropShard(ctx context.Context, bucket, key, version string, shard int) (bool, error) {
	return do(ctx, g, timed, func() (bool, error) { return g.n.DropShard(ctx, bucket, key, version, shard) })
}

func (g guarded) DropMarker(ctx context.Context, bucket, key, version string) (bool, error) {
	return do(ctx, g, timed, func() (bool, error) { return g.n.DropMarker(ctx, bucket, key, version) })
}

func (g guarded) PutMap(ctx context.Context, m *placement.Map) error {
	return do0(ctx, g, timed, func() error { return g.n.PutMap(ctx, m) })
}

func (g guarded) Health(ctx context.Context) (client.Health, error) {
	return do(ctx, g, timed, func() (client.Health, error) { return g.n.Health(ctx) })
}
