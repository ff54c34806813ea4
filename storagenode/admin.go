package storagenode

import (
	"context"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// PutBucket stores b if its Version is newer than the node's record of
// that bucket; an equal one is a no-op success, an older one kerr.Conflict
// wrapping a *client.ConflictError that names the node's version. The call
// is fenced (see admit).
func (n *Node) PutBucket(ctx context.Context, b client.BucketRecord) error {
	const op = "storagenode.PutBucket"
	if err := n.admit(ctx, true); err != nil {
		return err
	}
	if err := client.CheckBucket(b.Name); err != nil {
		return kerr.E(op, err)
	}
	if err := client.CheckVersion(b.Version); err != nil {
		return kerr.E(op, err)
	}
	stored, err := n.db.PutBucket(b)
	if err != nil {
		return n.settle(kerr.E(op, err))
	}
	if !stored {
		// An older record than the node's must not count as stored.
		switch cur, err := n.db.Bucket(b.Name); {
		case err != nil:
			return n.settle(kerr.E(op, err))
		case cur.Version > b.Version:
			return kerr.E(op, kerr.Conflict, &client.ConflictError{Newer: cur.Version})
		}
	}
	return nil
}

// GetBucket returns the node's record of bucket name, tombstone or not. A
// bucket the node has never seen is kerr.NotExist. The call is fenced
// (see admit).
func (n *Node) GetBucket(ctx context.Context, name string) (client.BucketRecord, error) {
	const op = "storagenode.GetBucket"
	if err := n.admit(ctx, true); err != nil {
		return client.BucketRecord{}, err
	}
	if err := client.CheckBucket(name); err != nil {
		return client.BucketRecord{}, kerr.E(op, err)
	}
	b, err := n.db.Bucket(name)
	if err != nil {
		return client.BucketRecord{}, n.settle(kerr.E(op, err))
	}
	return b, nil
}

// ListBuckets returns every bucket record on the node, tombstones
// included, sorted by name. The call is fenced (see admit).
func (n *Node) ListBuckets(ctx context.Context) ([]client.BucketRecord, error) {
	if err := n.admit(ctx, true); err != nil {
		return nil, err
	}
	bs, err := n.db.Buckets()
	if err != nil {
		return nil, n.settle(kerr.E("storagenode.ListBuckets", err))
	}
	return bs, nil
}

// AddHints records repair hints for the scrubber; adding a hint again
// replaces the stored one (see client.Client.AddHints). The call is fenced
// (see admit).
func (n *Node) AddHints(ctx context.Context, hints []client.Hint) error {
	const op = "storagenode.AddHints"
	if err := n.admit(ctx, true); err != nil {
		return err
	}
	if err := client.CheckHints(hints); err != nil {
		return kerr.E(op, err)
	}
	if err := n.db.AddHints(hints); err != nil {
		return n.settle(kerr.E(op, err))
	}
	return nil
}

// ListHints returns up to limit of the node's hints (<= 0 means
// client.DefaultListLen, capped at client.MaxListLen), in no particular
// order. The call is fenced (see admit).
func (n *Node) ListHints(ctx context.Context, limit int) ([]client.Hint, error) {
	if err := n.admit(ctx, true); err != nil {
		return nil, err
	}
	hs, err := n.db.Hints(client.ListLimit(limit))
	if err != nil {
		return nil, n.settle(kerr.E("storagenode.ListHints", err))
	}
	return hs, nil
}

// DeleteHints removes the hints with the same identity as hints; unknown
// ones are ignored. The call is fenced (see admit).
func (n *Node) DeleteHints(ctx context.Context, hints []client.Hint) error {
	const op = "storagenode.DeleteHints"
	if err := n.admit(ctx, true); err != nil {
		return err
	}
	if err := client.CheckHints(hints); err != nil {
		return kerr.E(op, err)
	}
	if err := n.db.DeleteHints(hints); err != nil {
		return n.settle(kerr.E(op, err))
	}
	return nil
}

// Health returns the node's identity, map epoch, object count and disk
// usage. A node stopped after a failed fsync answers with its failure, so
// that callers' breakers open. Never fenced.
func (n *Node) Health(ctx context.Context) (client.Health, error) {
	if err := n.admit(ctx, false); err != nil {
		return client.Health{}, err
	}
	h := client.Health{ID: n.cfg.ID, Epoch: n.mapEpoch(), Objects: n.db.Objects()}
	if free, total, err := diskSpace(n.dir); err == nil {
		h.DiskFree, h.DiskTotal = free, total
	}
	return h, nil
}
