// Package wire holds the storage node's types that cross a process
// boundary: the values of its API, in the JSON form both ends of the HTTP
// protocol agree on. The node server, its HTTP client and its in-process
// client all speak these types, and storagenode/client re-exports them by
// alias, so that callers name them as client.ObjectMeta and never see this
// package.
//
// It is a leaf: it imports no package of the project, so that anything may
// use it without a cycle. It must never hold behaviour beyond what the
// types need to describe themselves (no validation, no I/O), and it is
// not the node's on-disk format: the node index keeps its own durable
// types (storagenode/internal/meta), converted at its boundary, so that a
// change here cannot silently change what is on disk.
//
// The JSON field names are the wire API: add fields, never rename them.
package wire

import (
	"time"

	"github.com/segmentio/encoding/json"
)

// ObjectMeta is an object version's metadata, identical on every node that
// holds one of its shards. A delete marker has Deleted set and no shards.
type ObjectMeta struct {
	Bucket      string            `json:"bucket"`
	Key         string            `json:"key"`
	Version     string            `json:"version"` // ULID; lexical order is time order
	Deleted     bool              `json:"deleted,omitempty"`
	Size        int64             `json:"size"`
	ETag        string            `json:"etag,omitempty"` // hex MD5 (no quotes)
	ContentType string            `json:"content_type,omitempty"`
	UserMeta    map[string]string `json:"user_meta,omitempty"` // lower-case names without x-amz-meta-
	Modified    time.Time         `json:"modified"`
	Data        int               `json:"data"`
	Parity      int               `json:"parity"`
	BlockSize   int               `json:"block_size"`
	Format      int               `json:"format"`
	Roots       []string          `json:"roots,omitempty"` // hex root digest per shard index
	Nodes       []string          `json:"nodes,omitempty"` // node id per shard index at write time ("" = not written)

	// Checksums are the whole-object checksums the client sent and the
	// gateway verified: algorithm ("crc32", "crc32c", "sha1", "sha256",
	// ...) to base64 value. A multipart object's may be composite
	// ("<base64>-<parts>").
	Checksums map[string]string `json:"checksums,omitempty"`
	// Parts is set on the manifest of a completed multipart upload: the
	// object is the concatenation of these part objects, in order. A
	// manifest has no shards of its own (its Roots are empty and a node
	// commits it without a staged shard, with Shard -1); its Size is the
	// sum of the parts' sizes.
	Parts []PartRef `json:"parts,omitempty"`
	// Target is set on internal records that belong to a client key: the
	// record of a multipart upload in progress and each of its parts name
	// the key the upload will complete to.
	Target string `json:"target,omitempty"`
	// Staged, if set, is the version the shards were staged under when
	// the gateway committed them under a newer Version (see
	// the node's Commit). Nodes keep it in the record, so that a commit rolled
	// forward from the record finds the staged shard it binds.
	Staged string `json:"staged,omitempty"`
	// Headers are the standard representation headers stored with the
	// object (Cache-Control, Content-Disposition, Content-Encoding,
	// Content-Language, Expires), by canonical name.
	Headers map[string]string `json:"headers,omitempty"`
	// Tagging is the object's tag set, URL-encoded as in x-amz-tagging.
	Tagging string `json:"tagging,omitempty"`
	// TagsAt is the stamp (a version name from the writer's clock) of the
	// last change of Tagging by a tag update (the node's SetTags); "" for
	// the tags the version was written with. Nodes keep the tag set of the
	// newest stamp, readers take it from the answer with the newest one.
	TagsAt string `json:"tags_at,omitempty"`
	// Versioning is the bucket's versioning state the writer commits
	// under (VersioningEnabled, VersioningSuspended, or "" for a bucket
	// never versioned), and VersioningAt the version of the bucket record
	// it was read from. A node keeps the version a commit supersedes when
	// this state, or its own newer bucket record, says so (see
	// docs/versioning.md).
	Versioning   string `json:"versioning,omitempty"`
	VersioningAt string `json:"versioning_at,omitempty"`
	// Versioned says the version has an id of its own that clients see:
	// it was written while the bucket's versioning was Enabled. Every
	// other version is the key's "null" version, which the next null
	// write replaces.
	Versioned bool `json:"versioned,omitempty"`
	// Quorum, when set, is the write quorum the version was acknowledged
	// under, below the map's: it was written while some of its nodes were
	// known down, with its parity raised by as many (docs/ordering.md).
	// Readers judge whether it could have been acknowledged by this
	// quorum; 0 means the map's write quorum.
	Quorum int `json:"quorum,omitempty"`
}

// StageVersion is the version m's shards were staged under.
func (m ObjectMeta) StageVersion() string {
	if m.Staged != "" {
		return m.Staged
	}
	return m.Version
}

// PartRef names one part of a multipart object: an ordinary erasure-coded
// object version under an internal key of the same bucket.
type PartRef struct {
	Number    int               `json:"number"` // the client's part number, 1..10000
	Key       string            `json:"key"`    // internal key of the part object
	Version   string            `json:"version"`
	Size      int64             `json:"size"`
	ETag      string            `json:"etag"` // hex MD5 of the part
	Checksums map[string]string `json:"checksums,omitempty"`
}

// Record is a committed version as stored on one node: the object's
// metadata plus which shard index this node holds (-1 for delete markers).
type Record struct {
	ObjectMeta
	Shard int `json:"shard"`
}

// StagedRef is a staged (uncommitted) shard on a node.
type StagedRef struct {
	Version string    `json:"version"`
	Shard   int       `json:"shard"`
	Root    string    `json:"root"` // hex
	Size    int64     `json:"size"` // framed bytes
	Staged  time.Time `json:"staged"`
	// Newest, in a Stage answer only, is the newest version the node has
	// committed or staged for the key, this stage's included: the
	// gateway commits above it. Empty from nodes that predate it.
	Newest string `json:"newest,omitempty"`
	// Bucket, in a Stage answer only, is the node's record of the
	// bucket's versioning state, if the bucket is versioned: the writer
	// commits under the newest such state it has seen (see
	// docs/versioning.md).
	Bucket *BucketState `json:"bucket,omitempty"`
}

// KeyState is what one node knows about a key: its newest committed record
// (nil if none) and any staged versions newer than it.
type KeyState struct {
	Committed *Record     `json:"committed,omitempty"`
	Staged    []StagedRef `json:"staged,omitempty"`
	// Previous is the superseded record of a version older than
	// Committed whose shard the node still holds (its superseded grace,
	// or its hold after an underwritten overwrite, has not ended):
	// ReadShard of exactly that version and shard is served. A read
	// that falls back to that version counts it as a holder.
	Previous *Record `json:"previous,omitempty"`
	// Data, only when asked for (StatData), is the node's whole
	// shard stream of Committed if that is a data shard (index < Data),
	// or any shard if parity was asked for too, no longer than asked: a
	// small object's GET then needs no second round trip. It is not
	// verified; the reader checks its frames.
	Data []byte `json:"data,omitempty"`
	// Purged lists versions newer than Committed that were deleted by
	// version (see Client.DeleteVersion): a reader must not serve them
	// from a node that missed the deletion.
	Purged []string `json:"purged,omitempty"`
}

// BucketRecord is a bucket as stored on every node. Deleting a bucket writes
// a newer record with Deleted set (a tombstone), so the newest record wins.
type BucketRecord struct {
	Name    string    `json:"name"`
	Version string    `json:"version"` // ULID
	Created time.Time `json:"created"`
	Deleted bool      `json:"deleted,omitempty"`
	// Tagging is the bucket's tag set, URL-encoded; CORS its CORS
	// configuration document. Both are opaque to nodes.
	Tagging string `json:"tagging,omitempty"`
	CORS    string `json:"cors,omitempty"`
	// Versioning is the bucket's versioning state: "" (never enabled),
	// VersioningEnabled or VersioningSuspended.
	Versioning string `json:"versioning,omitempty"`
	// Lifecycle is the bucket's lifecycle configuration as the S3 client
	// sent it (XML), "" if none.
	Lifecycle string `json:"lifecycle,omitempty"`
}

// Hint asks the scrubber to check and repair one shard of a version.
type Hint struct {
	Bucket  string    `json:"bucket"`
	Key     string    `json:"key"`
	Version string    `json:"version"`
	Shard   int       `json:"shard"`
	NodeID  string    `json:"node_id,omitempty"`
	Reason  string    `json:"reason"` // "missing", "corrupt", "unreachable", "stale"
	Time    time.Time `json:"time"`
}

// Health is a node's answer to a health check.
type Health struct {
	ID        string `json:"id"`
	Epoch     uint64 `json:"epoch,omitempty"`
	Objects   int64  `json:"objects"`
	DiskFree  uint64 `json:"disk_free"`
	DiskTotal uint64 `json:"disk_total"`
}

// ListPage is one page of a node's committed records for a bucket, in key
// order, one record per key (its newest), delete markers included.
type ListPage struct {
	Records   []Record `json:"records"`
	Truncated bool     `json:"truncated"`
}

// ErrorBody is the JSON body of every non-2xx answer from a node. Kind is a
// kerr.Kind name ("not exist", "corrupt", ...). Sentinel, if set, names a
// leaf error of storagenode/client (see client.SentinelName), e.g. "wrong shard" for
// ErrWrongShard. Map is set only on the refusal of a call made under an
// older map epoch than the node's: it is the node's map (see client.Fence).
type ErrorBody struct {
	Kind     string          `json:"kind"`
	Message  string          `json:"message"`
	Sentinel string          `json:"sentinel,omitempty"`
	Map      json.RawMessage `json:"map,omitempty"`
	// Newer is set on a conflict: the newer version the node holds
	// (see ConflictError).
	Newer string `json:"newer,omitempty"`
}

// ConflictError is a node's refusal of a write older than what it holds:
// a commit of an object version (or a bucket record) when the node's
// record of the key is newer. The node changed nothing. Newer is the
// version it holds, so that the writer can name its next version above
// it. It unwraps to nothing; the error around it is kerr.Conflict.
type ConflictError struct {
	Newer string
}

func (e *ConflictError) Error() string { return "node holds newer version " + e.Newer }
