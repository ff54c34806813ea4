package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// ShardRef names one shard of an object version: its index, Shard, is the
// one the caller expects the node to hold. A node holding another shard of
// the version (the rebalancer swapped them) answers VerifyAbsent, never a
// verdict on a shard the caller did not mean. On the wire the index is
// "index", so that a VerifyResult carries both the index asked for and the
// one the node holds.
type ShardRef struct {
	Bucket  string `json:"bucket"`
	Key     string `json:"key"`
	Version string `json:"version"`
	Shard   int    `json:"index"`
}

// Verify statuses.
const (
	// VerifyOK: every block digest and the root digest verified.
	VerifyOK = "ok"
	// VerifyCorrupt: the shard failed verification or could not be read,
	// now or before; it is quarantined and never served.
	VerifyCorrupt = "corrupt"
	// VerifyMissing: the node committed the version but its shard file is
	// gone.
	VerifyMissing = "missing"
	// VerifyAbsent: the node's committed version of the key is another
	// one (VerifyResult.Current, "" if none) or a delete marker, or the
	// node holds another shard of the version (VerifyResult.Shard).
	VerifyAbsent = "absent"
)

// MaxVerify bounds the shards in one Verify call.
const MaxVerify = 1000

// VerifyResult is a node's verdict on one ShardRef. Its Shard, the index
// the node holds, hides the ref's, the index asked for (ShardRef.Shard).
type VerifyResult struct {
	ShardRef
	Shard   int    `json:"shard"`             // index the node holds of the version; -1 if none
	Status  string `json:"status"`            // VerifyOK, VerifyCorrupt, VerifyMissing or VerifyAbsent
	Current string `json:"current,omitempty"` // the node's committed version, if not the one asked for
	Bytes   int64  `json:"bytes"`             // shard bytes hashed
	Detail  string `json:"detail,omitempty"`
}

// VerifyRequest is the body of POST /v1/verify.
type VerifyRequest struct {
	Shards []ShardRef `json:"shards"`
}

// QuarantinedShard is a shard a node found corrupt and set aside.
type QuarantinedShard struct {
	Bucket  string    `json:"bucket"`
	Key     string    `json:"key"`
	Version string    `json:"version"`
	Shard   int       `json:"shard"`
	Reason  string    `json:"reason"`
	Time    time.Time `json:"time"`
}

// ScrubStatus is the state of a node's background verifier.
type ScrubStatus struct {
	Rate          int64   `json:"rate"`           // bytes/s; 0 means the verifier is off
	PeriodSeconds float64 `json:"period_seconds"` // least time between the starts of two passes
	Running       bool    `json:"running"`        // a pass is in progress

	Pass        int64     `json:"pass"` // number of the current (or last) pass; 0 before the first
	PassStarted time.Time `json:"pass_started,omitzero"`
	Position    string    `json:"position,omitempty"` // "bucket/key" last verified by the current pass
	PassShards  int64     `json:"pass_shards"`        // verified by the current pass so far
	PassBytes   int64     `json:"pass_bytes"`

	LastPassStarted  time.Time `json:"last_pass_started,omitzero"` // of the last completed pass
	LastPassFinished time.Time `json:"last_pass_finished,omitzero"`

	Shards  int64 `json:"shards"` // verified since the node's index was created
	Bytes   int64 `json:"bytes"`
	Corrupt int64 `json:"corrupt"` // found corrupt, by the verifier or a Verify call
	Missing int64 `json:"missing"`

	Quarantined       int                `json:"quarantined"`                  // shards quarantined now
	QuarantinedShards []QuarantinedShard `json:"quarantined_shards,omitempty"` // some of them
}

// StagedShard is a staged shard with the key it belongs to.
type StagedShard struct {
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	StagedRef
}

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
