package wire

import "time"

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

// DropResult is the answer of a shard drop (POST /v1/shard/drop).
type DropResult struct {
	Dropped bool `json:"dropped"`
}
