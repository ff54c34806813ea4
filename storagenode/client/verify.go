package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/wire"
)

// The verifier's wire types; see package wire.
type (
	ShardRef         = wire.ShardRef
	VerifyResult     = wire.VerifyResult
	VerifyRequest    = wire.VerifyRequest
	QuarantinedShard = wire.QuarantinedShard
	ScrubStatus      = wire.ScrubStatus
	StagedShard      = wire.StagedShard
)

// Verify statuses (see wire.VerifyOK).
const (
	VerifyOK      = wire.VerifyOK
	VerifyCorrupt = wire.VerifyCorrupt
	VerifyMissing = wire.VerifyMissing
	VerifyAbsent  = wire.VerifyAbsent
)

// MaxVerify bounds the shards in one Verify call.
const MaxVerify = 1000

// Verify asks the node to re-hash, now and where it lies, the shard it
// holds of each ref, against the block digests in the shard file and the
// root digest in the committed record. It returns one result per ref, in
// order. A shard that fails is quarantined by the node (never served
// again) and reported as VerifyCorrupt.
//
// Verify reads whole shards on the node, so callers verifying large ones
// give ctx a deadline to match; without one, the Client's default timeout
// applies. At most MaxVerify refs per call.
func (c *Client) Verify(ctx context.Context, refs []ShardRef) ([]VerifyResult, error) {
	const op = "client.Verify"
	if err := CheckShardRefs(refs); err != nil {
		return nil, kerr.E(op, err)
	}
	if len(refs) == 0 {
		return []VerifyResult{}, nil
	}
	var out []VerifyResult
	if err := c.call(ctx, op, http.MethodPost, "/v1/verify", nil, VerifyRequest{Shards: refs}, &out); err != nil {
		return nil, err
	}
	if len(out) != len(refs) {
		return nil, kerr.E(op, kerr.Transient, c.wrap(fmt.Errorf("%d results for %d shards", len(out), len(refs))))
	}
	return out, nil
}

// CheckShardRefs validates a batch of refs as a node would.
func CheckShardRefs(refs []ShardRef) error {
	const op = "client.CheckShardRefs"
	if len(refs) > MaxVerify {
		return kerr.E(op, kerr.TooLarge, fmt.Errorf("%d shards, more than %d", len(refs), MaxVerify))
	}
	for _, r := range refs {
		if err := CheckObject(r.Bucket, r.Key, r.Version); err != nil {
			return kerr.E(op, err)
		}
		if err := CheckShard(r.Shard); err != nil {
			return kerr.E(op, err)
		}
	}
	return nil
}

// ScrubStatus returns the state of the node's background verifier and the
// shards it holds in quarantine.
func (c *Client) ScrubStatus(ctx context.Context) (ScrubStatus, error) {
	var st ScrubStatus
	err := c.call(ctx, "client.ScrubStatus", http.MethodGet, "/v1/scrub/status", nil, nil, &st)
	return st, err
}

// DropMarker removes the node's committed record of bucket/key if, and
// only if, it is still the delete marker of version (compare and delete),
// and reports whether it did. A newer version, or an older one, is never
// touched. Callers must know that no node holds an older version of the
// key, or the older version comes back.
func (c *Client) DropMarker(ctx context.Context, bucket, key, version string) (bool, error) {
	const op = "client.DropMarker"
	if err := CheckObject(bucket, key, version); err != nil {
		return false, kerr.E(op, err)
	}
	var out struct {
		Dropped bool `json:"dropped"`
	}
	err := c.call(ctx, op, http.MethodPost, "/v1/marker/drop", objectQuery(bucket, key, version), nil, &out)
	return out.Dropped, err
}

// ListStaged returns up to limit of the node's staged shards (<= 0 means
// DefaultListLen, capped at MaxListLen), oldest first.
func (c *Client) ListStaged(ctx context.Context, limit int) ([]StagedShard, error) {
	var out []StagedShard
	q := url.Values{"limit": {strconv.Itoa(ListLimit(limit))}}
	err := c.call(ctx, "client.ListStaged", http.MethodGet, "/v1/staged", q, nil, &out)
	return out, err
}
