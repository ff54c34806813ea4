package client

import (
	"context"
	"net/http"
	"strconv"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/wire"
)

// DropResult is the answer of POST /v1/shard/drop.
type DropResult = wire.DropResult

// DropShard removes the node's copy of a version of bucket/key that now
// lives on other nodes: its committed record, its shard file and any
// staged copy of the same shard, if, and only if, the committed record is
// still version holding shard index shard (compare and delete); shard -1
// names a version without a shard of its own (a delete marker or a
// multipart manifest). It reports whether it dropped anything. A newer or
// older version, or another shard index, is never touched; staged shards
// of the version with other indexes stay, so that a Commit afterwards
// installs one (the node then holds another shard of the version).
//
// Callers must know the version is safe without this copy: the rebalancer
// drops a shard only once its new home holds it committed and verified.
func (c *Client) DropShard(ctx context.Context, bucket, key, version string, shard int) (bool, error) {
	const op = "client.DropShard"
	if err := CheckObject(bucket, key, version); err != nil {
		return false, kerr.E(op, err)
	}
	if shard != -1 {
		if err := CheckShard(shard); err != nil {
			return false, kerr.E(op, err)
		}
	}
	q := objectQuery(bucket, key, version)
	q.Set("shard", strconv.Itoa(shard))
	var out DropResult
	if err := c.call(ctx, op, http.MethodPost, "/v1/shard/drop", q, nil, &out); err != nil {
		return false, err
	}
	return out.Dropped, nil
}
