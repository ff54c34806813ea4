package objects

import (
	"context"
	"slices"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// DeleteObject deletes bucket/key by committing a delete marker, a version
// without shards, on the key's nodes; it needs its write quorum of acks
// (else ErrQuorum), like any write, so an acknowledged delete cannot be
// outvoted by an older version later. With k <= p of the key's nodes known
// down that quorum is lowered as for a write with raised parity
// (shardlessQuorum). As in S3, deleting a missing key succeeds; when
// every node answers that it holds no live version, nothing is written.
//
// Deleting a multipart object also deletes its parts, in the background
// and best effort; SweepUploads frees what that misses.
func (s *Store) DeleteObject(ctx context.Context, bucket, key string) error {
	return fenced0(ctx, s, func(ctx context.Context) error { return s.deleteObject(ctx, bucket, key) })
}

// deleteObject is DeleteObject under one map.
func (s *Store) deleteObject(ctx context.Context, bucket, key string) error {
	const op = "objects.DeleteObject"
	if err := s.checkClientKey(ctx, op, bucket, key); err != nil {
		return err
	}
	_, err := s.deleteCurrent(ctx, bucket, key)
	return err
}

// deleteCurrent is deleteObject answering the delete marker it wrote, if
// any.
func (s *Store) deleteCurrent(ctx context.Context, bucket, key string) (*client.ObjectMeta, error) {
	const op = "objects.DeleteObject"
	if err := s.checkBucket(ctx, bucket); err != nil {
		return nil, kerr.E(op, err)
	}
	// A marker stages nothing: the bucket's versioning state is read
	// from a majority of the nodes (docs/versioning.md).
	state, err := s.freshState(ctx, bucket)
	if err != nil {
		return nil, kerr.E(op, err)
	}
	old, marker, err := s.deleteKeyIn(ctx, bucket, key, state)
	if err != nil {
		return nil, kerr.E(op, err)
	}
	// In a versioned bucket the old version stays, parts and all.
	if old != nil && len(old.Parts) > 0 && state.Versioning == "" {
		s.freeParts(ctx, bucket, old.Parts)
	}
	return marker, nil
}

// deleteKey commits a delete marker for bucket/key (see DeleteObject) and
// returns the newest live record the nodes held before, if any.
func (s *Store) deleteKey(ctx context.Context, bucket, key string) (*client.Record, error) {
	old, _, err := s.deleteKeyIn(ctx, bucket, key, client.BucketState{})
	return old, err
}

// deleteKeyIn is deleteKey in a bucket of versioning state state: in a
// versioned bucket a marker is written whatever the key holds, as S3
// does. It also returns the marker written, if any.
func (s *Store) deleteKeyIn(ctx context.Context, bucket, key string, state client.BucketState) (*client.Record, *client.ObjectMeta, error) {
	const op = "objects.deleteKey"
	m := s.Map()
	placed := s.placed(m.PlaceKey(bucket, key))
	n, wq := m.N(), s.shardlessQuorum(ctx, m, placed)

	live, answered := false, 0
	states := make([]client.KeyState, len(placed))
	errs := make([]error, len(placed))
	// A straggler only makes the marker necessary (see below).
	s.gather(ctx, placed, func(ctx context.Context, i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		states[i], errs[i] = placed[i].Client.Stat(cctx, bucket, key)
	}, func(done []bool) bool { return count(done) >= wq })
	if err := ctx.Err(); err != nil {
		return nil, nil, kerr.E(op, kerr.Transient, err)
	}
	var old *client.Record
	for i, err := range errs {
		switch {
		case err == nil:
			answered++
			// The marker is named above every version the stats
			// revealed, so it wins over them on every node.
			s.observeState(states[i])
			if c := states[i].Committed; c != nil && !c.Deleted {
				live = true
				if old == nil || c.Version > old.Version {
					old = c
				}
			}
		case kerr.Is(kerr.NotExist, err):
			answered++
		}
	}
	// A silent node may hold a version nobody else has (a roll-forward
	// candidate), so only a unanimous "nothing here" skips the marker.
	if !live && answered == n && state.Versioning == "" {
		return nil, nil, nil
	}

	// Named and committed under the key's lock, as a PUT's commit
	// (keylock.go).
	unlock := s.commits.lock(bucket, key)
	now := s.now().UTC()
	marker := client.ObjectMeta{
		Bucket: bucket, Key: key, Version: s.newVersion(), Deleted: true, Modified: now,
		Data: m.DataShards, Parity: m.ParityShards, BlockSize: m.BlockSize, Format: codec.FormatVersion,
	}
	if wq < m.WriteQuorum {
		marker.Quorum = wq
	}
	setVersioning(&marker, state)
	marker, to, refused := s.commitAndHint(ctx, placed, placed, marker, wq)
	if len(to) < wq && refused.newer == 0 && refused.staleMap == 0 {
		to = s.commitMissed(ctx, placed, to, marker, wq)
	}
	if len(to) < wq && refused.newer == 0 && refused.staleMap == 0 && state.Versioning == "" && !client.IsRecode(marker.Version) {
		// Nodes failed the marker's commit after others took it: as a
		// PUT's (putKept), it is finished as the re-code of its
		// version, V.1, on the nodes that hold it, with the quorum of
		// a write that took the others for down, if they are at most
		// p. V.1 replaces exactly V (docs/ordering.md), and its id is
		// "null" either way in an unversioned bucket.
		if k := n - len(to); k <= m.ParityShards && len(to) >= m.RaisedQuorum(k) {
			held := make([]member, n)
			for i, p := range placed {
				if slices.ContainsFunc(to, func(h member) bool { return h.Node.ID == p.Node.ID }) {
					held[i] = p
				}
			}
			rc := marker
			rc.Version, rc.Quorum = client.RecodeVersion(marker.Version), m.RaisedQuorum(k)
			s.metrics.retried(retryRecode)
			s.log.Info("objects: delete marker missed its quorum for nodes that failed; finishing it as its re-code",
				"bucket", bucket, "key", key, "version", marker.Version, "committed", len(to))
			rc, rto, rrefused := s.commitAndHint(ctx, placed, held, rc, rc.Quorum)
			if len(rto) >= rc.Quorum {
				unlock()
				return old, &rc, nil
			}
			if rrefused.newer > 0 {
				refused, to, wq = rrefused, rto, rc.Quorum
			}
		}
	}
	unlock()
	if len(to) < wq {
		return nil, nil, kerr.E(op, kerr.Unavailable, shortfallErr(len(to), refused, wq, "delete marker committed on %d of %d nodes, need %d", len(to), n, wq))
	}
	return old, &marker, nil
}

// shardlessQuorum is the write quorum of a version without shards (a
// delete marker or a multipart manifest) placed on placed: with k of them
// known down, k <= p, it is lowered as for a write with raised parity
// (placement.Map.RaisedQuorum), so that such writes go on while a PUT
// would; the version records it (ObjectMeta.Quorum) for readers. It stays
// a majority of n, which is all the order of writes needs
// (docs/ordering.md).
//
// With more of them known down than that quorum allows, the write would
// fail on their refusing breakers: they are asked first (recheck), as for
// a PUT, and the quorum is taken again if some answer.
func (s *Store) shardlessQuorum(ctx context.Context, m *placement.Map, placed []member) int {
	q, down := s.shardlessQuorumNow(m, placed)
	if count(down) > m.N()-q && s.recheck(ctx, placed, down, nil) {
		q, _ = s.shardlessQuorumNow(m, placed)
	}
	return q
}

// shardlessQuorumNow is shardlessQuorum as the breakers stand, with the
// shards whose node is known down or missing.
func (s *Store) shardlessQuorumNow(m *placement.Map, placed []member) (int, []bool) {
	n, k := m.N(), 0
	down := make([]bool, n)
	for i := range n {
		if i >= len(placed) || !s.available(placed[i].Node.ID) {
			down[i] = true
			k++
		}
	}
	if k == 0 || k > m.ParityShards {
		return m.WriteQuorum, down
	}
	if q := m.RaisedQuorum(k); q <= n-k {
		return q, down
	}
	return m.WriteQuorum, down
}
