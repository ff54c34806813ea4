package objects

import (
	"context"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// DeleteObject deletes bucket/key by committing a delete marker, a version
// without shards, on the key's nodes; it needs WriteQuorum acks (else
// ErrQuorum), like any write, so an acknowledged delete cannot be outvoted
// by an older version later. As in S3, deleting a missing key succeeds; when
// every node answers that it holds no live version, nothing is written.
func (s *Store) DeleteObject(ctx context.Context, bucket, key string) error {
	const op = "objects.DeleteObject"
	if err := validName(op, bucket, key, true); err != nil {
		return err
	}
	if err := s.checkBucket(ctx, bucket); err != nil {
		return kerr.E(op, err)
	}
	m := s.Map()
	n, wq := m.DataShards+m.ParityShards, m.WriteQuorum
	placed := s.placed(m.PlaceKey(bucket, key))

	live, answered := false, 0
	states := make([]client.KeyState, len(placed))
	errs := make([]error, len(placed))
	each(len(placed), func(i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		states[i], errs[i] = placed[i].c.Stat(cctx, bucket, key)
	})
	if err := ctx.Err(); err != nil {
		return kerr.E(op, kerr.Transient, err)
	}
	for i, err := range errs {
		switch {
		case err == nil:
			answered++
			if c := states[i].Committed; c != nil && !c.Deleted {
				live = true
			}
		case kerr.Is(kerr.NotExist, err):
			answered++
		}
	}
	// A silent node may hold a version nobody else has (a roll-forward
	// candidate), so only a unanimous "nothing here" skips the marker.
	if !live && answered == n {
		return nil
	}

	now := s.now().UTC()
	marker := client.ObjectMeta{
		Bucket: bucket, Key: key, Version: s.newVersion(), Deleted: true, Modified: now,
		Data: m.DataShards, Parity: m.ParityShards, BlockSize: m.BlockSize, Format: codec.FormatVersion,
	}
	acked := make([]bool, len(placed))
	each(len(placed), func(i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		if _, err := placed[i].c.Commit(cctx, marker); err != nil {
			s.log.Debug("objects: delete marker commit failed", "node", placed[i].node.ID, "err", err)
			return
		}
		acked[i] = true
	})
	var to []member
	var hints []client.Hint
	for i, ok := range acked {
		if ok {
			to = append(to, placed[i])
			continue
		}
		hints = append(hints, client.Hint{
			Bucket: bucket, Key: key, Version: marker.Version, Shard: -1,
			NodeID: placed[i].node.ID, Reason: "missing", Time: now,
		})
	}
	s.sendHints(ctx, to, hints)
	if len(to) < wq {
		return kerr.E(op, kerr.Unavailable, quorumErr("delete marker committed on %d of %d nodes, need %d", len(to), n, wq))
	}
	return nil
}
