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
}

var _ NodeClient = tracked{}

func (t tracked) Stage(ctx context.Context, bucket, key, version string, shard, blockSize int, body io.Reader) (client.StagedRef, error) {
	call, err := t.h.Begin(t.id)
	if err != nil {
		return client.StagedRef{}, err
	}
	ref, err := t.c.Stage(ctx, bucket, key, version, shard, blockSize, body)
	call.EndStream(ctx, err)
	return ref, err
}

func (t tracked) Commit(ctx context.Context, meta client.ObjectMeta) (client.Record, error) {
	call, err := t.h.Begin(t.id)
	if err != nil {
		return client.Record{}, err
	}
	rec, err := t.c.Commit(ctx, meta)
	call.End(ctx, err)
	return rec, err
}

func (t tracked) Abort(ctx context.Context, bucket, key, version string) error {
	call, err := t.h.Begin(t.id)
	if err != nil {
		return err
	}
	err = t.c.Abort(ctx, bucket, key, version)
	call.End(ctx, err)
	return err
}

func (t tracked) ReadShard(ctx context.Context, bucket, key, version string, off, length int64) (io.ReadCloser, error) {
	call, err := t.h.Begin(t.id)
	if err != nil {
		return nil, err
	}
	rc, err := t.c.ReadShard(ctx, bucket, key, version, off, length)
	call.End(ctx, err)
	return rc, err
}

func (t tracked) Stat(ctx context.Context, bucket, key string) (client.KeyState, error) {
	call, err := t.h.Begin(t.id)
	if err != nil {
		return client.KeyState{}, err
	}
	st, err := t.c.Stat(ctx, bucket, key)
	call.End(ctx, err)
	return st, err
}

func (t tracked) List(ctx context.Context, bucket, prefix, after string, limit int) (client.ListPage, error) {
	call, err := t.h.Begin(t.id)
	if err != nil {
		return client.ListPage{}, err
	}
	p, err := t.c.List(ctx, bucket, prefix, after, limit)
	// A page's time depends on its size; only its outcome says something.
	call.EndStream(ctx, err)
	return p, err
}

func (t tracked) PutBucket(ctx context.Context, rec client.BucketRecord) error {
	call, err := t.h.Begin(t.id)
	if err != nil {
		return err
	}
	err = t.c.PutBucket(ctx, rec)
	call.End(ctx, err)
	return err
}

func (t tracked) GetBucket(ctx context.Context, name string) (client.BucketRecord, error) {
	call, err := t.h.Begin(t.id)
	if err != nil {
		return client.BucketRecord{}, err
	}
	rec, err := t.c.GetBucket(ctx, name)
	call.End(ctx, err)
	return rec, err
}

func (t tracked) ListBuckets(ctx context.Context) ([]client.BucketRecord, error) {
	call, err := t.h.Begin(t.id)
	if err != nil {
		return nil, err
	}
	recs, err := t.c.ListBuckets(ctx)
	call.EndStream(ctx, err)
	return recs, err
}

func (t tracked) AddHints(ctx context.Context, hints []client.Hint) error {
	call, err := t.h.Begin(t.id)
	if err != nil {
		return err
	}
	err = t.c.AddHints(ctx, hints)
	call.End(ctx, err)
	return err
}

// available reports whether node id's breaker lets calls through; without
// health tracking every node is.
func (s *Store) available(id string) bool {
	return s.health == nil || s.health.Available(id)
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
