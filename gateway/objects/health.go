package objects

import (
	"context"
	"io"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// tracked is a NodeClient whose every call passes the node's circuit
// breaker first and reports how it ended, so that a node found dead is
// skipped at once (the call fails with kerr.Unavailable wrapping
// health.ErrOpen) and every answer, good or bad, keeps its health current.
// Shard streams report only their outcome, and a shard read counts as
// answered once its stream opens.
type tracked struct {
	c  NodeClient
	id string
	h  *health.Tracker
	// bypass makes calls even through an open breaker (see withBypass).
	bypass bool
}

var _ NodeClient = tracked{}

func (t tracked) Stage(ctx context.Context, bucket, key, version string, shard, blockSize int, body io.Reader) (client.StagedRef, error) {
	call, report, err := t.begin(ctx)
	if err != nil {
		return client.StagedRef{}, err
	}
	ref, err := t.c.Stage(ctx, bucket, key, version, shard, blockSize, body)
	if report {
		call.EndStream(ctx, err)
	}
	return ref, err
}

func (t tracked) Commit(ctx context.Context, meta client.ObjectMeta) (client.Record, error) {
	call, report, err := t.begin(ctx)
	if err != nil {
		return client.Record{}, err
	}
	rec, err := t.c.Commit(ctx, meta)
	if report {
		call.End(ctx, err)
	}
	return rec, err
}

func (t tracked) Abort(ctx context.Context, bucket, key, version string) error {
	call, report, err := t.begin(ctx)
	if err != nil {
		return err
	}
	err = t.c.Abort(ctx, bucket, key, version)
	if report {
		call.End(ctx, err)
	}
	return err
}

func (t tracked) ReadShard(ctx context.Context, bucket, key, version string, shard int, off, length int64) (io.ReadCloser, error) {
	call, report, err := t.begin(ctx)
	if err != nil {
		return nil, err
	}
	rc, err := t.c.ReadShard(ctx, bucket, key, version, shard, off, length)
	if report {
		call.End(ctx, err)
	}
	return rc, err
}

func (t tracked) Stat(ctx context.Context, bucket, key string) (client.KeyState, error) {
	call, report, err := t.begin(ctx)
	if err != nil {
		return client.KeyState{}, err
	}
	st, err := t.c.Stat(ctx, bucket, key)
	if report {
		call.End(ctx, err)
	}
	return st, err
}

func (t tracked) StatData(ctx context.Context, bucket, key string, limit int64, parity bool) (client.KeyState, error) {
	call, report, err := t.begin(ctx)
	if err != nil {
		return client.KeyState{}, err
	}
	st, err := t.c.StatData(ctx, bucket, key, limit, parity)
	if report {
		call.End(ctx, err)
	}
	return st, err
}

func (t tracked) List(ctx context.Context, bucket, prefix, after string, limit int) (client.ListPage, error) {
	call, report, err := t.begin(ctx)
	if err != nil {
		return client.ListPage{}, err
	}
	p, err := t.c.List(ctx, bucket, prefix, after, limit)
	// A page's time depends on its size; only its outcome says something.
	if report {
		call.EndStream(ctx, err)
	}
	return p, err
}

func (t tracked) PutBucket(ctx context.Context, rec client.BucketRecord) error {
	call, report, err := t.begin(ctx)
	if err != nil {
		return err
	}
	err = t.c.PutBucket(ctx, rec)
	if report {
		call.End(ctx, err)
	}
	return err
}

func (t tracked) GetBucket(ctx context.Context, name string) (client.BucketRecord, error) {
	call, report, err := t.begin(ctx)
	if err != nil {
		return client.BucketRecord{}, err
	}
	rec, err := t.c.GetBucket(ctx, name)
	if report {
		call.End(ctx, err)
	}
	return rec, err
}

func (t tracked) ListBuckets(ctx context.Context) ([]client.BucketRecord, error) {
	call, report, err := t.begin(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := t.c.ListBuckets(ctx)
	if report {
		call.EndStream(ctx, err)
	}
	return recs, err
}

func (t tracked) AddHints(ctx context.Context, hints []client.Hint) error {
	call, report, err := t.begin(ctx)
	if err != nil {
		return err
	}
	err = t.c.AddHints(ctx, hints)
	if report {
		call.End(ctx, err)
	}
	return err
}

// begin passes the node's breaker. An open breaker refuses the call unless
// the caller bypasses breakers; a bypassing call through an open breaker is
// made but not reported (the breaker learns from its own probes).
func (t tracked) begin(ctx context.Context) (call health.Call, report bool, err error) {
	call, err = t.h.Begin(t.id)
	switch {
	case err == nil:
		return call, true, nil
	case t.bypass || ctx.Value(bypassKey{}) != nil:
		return call, false, nil
	default:
		return call, false, err
	}
}

type bypassKey struct{}

// withBypass returns a context whose node calls go through open breakers.
// Breakers exist so that a dead node costs nothing; they must never refuse
// a request the nodes could serve, as happens for a heartbeat or two after
// a node comes back (or after every node of a cluster restarted at once).
func withBypass(ctx context.Context) context.Context {
	return context.WithValue(ctx, bypassKey{}, true)
}

// bypassing returns holders whose calls go through open breakers.
func bypassing(holders []member) []member {
	out := make([]member, len(holders))
	for i, m := range holders {
		if t, ok := m.c.(tracked); ok {
			t.bypass = true
			m.c = t
		}
		out[i] = m
	}
	return out
}

// bypassed reports whether m's calls go through open breakers. Such a
// member answered a moment ago although its node is still marked down, so
// the down signal says nothing about its streams; the stall timeout still
// guards them.
func bypassed(m member) bool {
	t, ok := m.c.(tracked)
	return ok && t.bypass
}

// anyOpen reports whether some node of the current map sits behind a
// breaker that refuses calls (open, or half-open and probing); false
// without health tracking.
func (s *Store) anyOpen() bool {
	if s.health == nil {
		return false
	}
	for _, n := range s.Map().Nodes {
		if !s.health.Available(n.ID) {
			return true
		}
	}
	return false
}

// available reports whether node id's breaker lets every call through
// (it is closed); without health tracking every node is.
func (s *Store) available(id string) bool {
	return s.health == nil || s.health.Available(id)
}

// progress tells the health tracker that a stream to or from node id just
// moved bytes (see health.Tracker.Progress).
func (s *Store) progress(id string) {
	if s.health != nil {
		s.health.Progress(id)
	}
}

// hedgeDelay is how long a call to node id may take before the protocol
// stops waiting for it where it can do without; 0 without health tracking,
// which means: wait for every node up to its own timeouts.
func (s *Store) hedgeDelay(id string) time.Duration {
	if s.health == nil {
		return 0
	}
	return s.health.HedgeDelay(id)
}

// downChan is closed when node id goes down; nil (never ready) without
// health tracking.
func (s *Store) downChan(id string) <-chan struct{} {
	if s.health == nil {
		return nil
	}
	return s.health.Down(id)
}

// trackNodes tells the health tracker which nodes to send heartbeats to:
// every node of the current and previous map that was not removed.
func (s *Store) trackNodes(p *mapPair) {
	if s.health == nil {
		return
	}
	var ids []string
	for _, m := range []*placement.Map{p.cur, p.prev} {
		if m == nil {
			continue
		}
		for _, n := range liveNodes(m) {
			ids = append(ids, n.ID)
		}
	}
	s.health.SetNodes(ids)
}
