package storagenode

import (
	"context"
	"slices"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/meta"
)

// DropShard removes the node's copy of a version that now lives elsewhere,
// if it is still version holding shard index shard (-1: a version without
// a shard of its own), and reports whether it dropped anything; see
// dropShard and client.Client.DropShard. The call is fenced (see admit).
func (n *Node) DropShard(ctx context.Context, bucket, key, version string, shard int) (bool, error) {
	if err := n.admit(ctx, true); err != nil {
		return false, err
	}
	dropped, err := n.dropShard(bucket, key, version, shard)
	return dropped, n.settle(err)
}

// dropShard removes the node's copy of a version that now lives elsewhere:
// the committed record of bucket/key, if it is still version holding
// shard index shard (-1: a version without a shard of its own), together
// with any staged copy of that same shard, so that no reader rolls it
// forward here again; then its files. It reports whether it dropped
// anything. Staged shards of the version with other indexes stay: the
// rebalancer stages the shard a node is to hold next before dropping the
// one it holds (a swap), then commits.
//
// The node cannot tell whether the version is safe elsewhere; the caller
// (the rebalancer) must, which is why the drop is a compare-and-delete
// that never touches a newer or older version.
func (n *Node) dropShard(bucket, key, version string, shard int) (bool, error) {
	const op = "storagenode.DropShard"
	if err := client.CheckObject(bucket, key, version); err != nil {
		return false, kerr.E(op, err)
	}
	if shard != -1 {
		if err := client.CheckShard(shard); err != nil {
			return false, kerr.E(op, err)
		}
	}
	unlock := n.lock(bucket, key)
	defer unlock()
	staged, err := n.stagedVersion(bucket, key, version, "")
	if err != nil {
		return false, kerr.E(op, err)
	}
	staged = slices.DeleteFunc(staged, func(s meta.Staged) bool { return s.Shard != shard })
	var garbage string
	if shard >= 0 {
		garbage = shardFile(bucket, key, version, shard)
	}
	dropped, err := n.db.DropRecord(bucket, key, version, shard, staged, garbage)
	if err != nil {
		return false, kerr.E(op, err)
	}
	if !dropped {
		return false, nil
	}
	// Dropped. What follows is cleanup: a failure only strands files that
	// Sweep removes later (the garbage note, the quarantine of a version
	// the node no longer holds).
	for _, s := range staged {
		n.removeFile(s.File)
	}
	if garbage != "" {
		if _, err := n.removeFile(garbage); err != nil {
			n.log.Warn("removing dropped shard", "file", garbage, "err", err)
		}
		if q, err := n.db.QuarantinedShard(bucket, key, version, shard); err == nil && q != nil {
			if err := n.db.DeleteQuarantined(*q); err == nil {
				n.removeFile(q.File)
			}
		}
	}
	n.log.Info("dropped moved copy", "bucket", bucket, "key", key, "version", version, "shard", shard)
	return true, nil
}
