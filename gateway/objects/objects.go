package objects

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors the S3 layer maps to S3 error codes. Returned errors wrap
// them (errors.Is), usually inside a *kerr.Error.
var (
	ErrNoSuchBucket    = errors.New("no such bucket")
	ErrNoSuchKey       = errors.New("no such key")
	ErrBucketExists    = errors.New("bucket already exists")
	ErrBucketNotEmpty  = errors.New("bucket not empty")
	ErrIncompleteBody  = errors.New("body shorter than declared length")
	ErrQuorum          = errors.New("not enough storage nodes to meet quorum")
	ErrInvalidRange    = errors.New("range not satisfiable")
	ErrInvalidArgument = errors.New("invalid argument")

	// ErrSuperseded is wrapped, with ErrQuorum, by a write whose commit
	// missed its quorum only because nodes refused it as holding a newer
	// version of the key: a concurrent write of the key won the race.
	// The nodes were there; the write run again, under a new version,
	// can succeed at once.
	ErrSuperseded = errors.New("a concurrent write of the key with a newer version won")

	// ErrMapChanged is wrapped, with ErrQuorum, by a write whose stage or
	// commit missed its quorum only because nodes refused it as made
	// under an older cluster map than theirs (docs/fencing.md): the map
	// changed while the write ran. The nodes were there; the write run
	// again, under the new map the gateway has installed, can succeed.
	ErrMapChanged = errors.New("the cluster map changed during the write")

	// Multipart uploads.
	ErrNoSuchUpload     = errors.New("no such multipart upload")
	ErrInvalidPart      = errors.New("a listed part is missing or its ETag or checksum does not match")
	ErrInvalidPartOrder = errors.New("parts are not listed in ascending order")
	ErrEntityTooSmall   = errors.New("a part other than the last is smaller than the minimum part size")
)

// BucketInfo describes a bucket.
type BucketInfo struct {
	Name    string
	Created time.Time
	Config  BucketConfig
	// Versioning is the bucket's versioning state ("", "Enabled" or
	// "Suspended") as of the bucket record of version VersioningAt.
	Versioning   string
	VersioningAt string
	// Lifecycle is the bucket's lifecycle configuration (S3 XML), "" if
	// none.
	Lifecycle string
}

// BucketConfig is the configuration a bucket record carries. The store
// keeps it opaque: the gateway owns its format.
type BucketConfig struct {
	Tagging string // URL-encoded tag set; "" means none
	CORS    string // CORS configuration document; "" means none
}

// ObjectInfo describes one object version.
type ObjectInfo struct {
	Bucket      string
	Key         string
	Version     string
	Size        int64
	ETag        string // hex MD5, no quotes
	ContentType string
	UserMeta    map[string]string // lower-case names, without the x-amz-meta- prefix
	Headers     map[string]string // stored representation headers, canonical names
	Tagging     string            // URL-encoded tag set
	Modified    time.Time
	// Checksums are the verified whole-object checksums stored with the
	// version: lower-case algorithm ("crc32", "sha256", ...) to base64
	// value; a multipart object's are composite ("<base64>-<parts>").
	Checksums map[string]string
	// PartSizes are the sizes of a multipart object's parts, in order; nil
	// for an object written in one piece.
	PartSizes []int64
	// VersionID is the id S3 clients see: Version for a version written
	// while the bucket's versioning was Enabled, "null" for any other.
	// Versioned says whether the bucket had versioning (enabled or
	// suspended) when the version was written: only then do answers
	// carry x-amz-version-id.
	VersionID string
	Versioned bool
	// DeleteMarker is set on a delete marker's description (in version
	// listings and version deletes).
	DeleteMarker bool
	// Raised is set on the description PutObject returns when the
	// version was written with raised parity (fewer data shards than the
	// map's) because some of its nodes were down.
	Raised bool
}

// ListOptions selects a page of a bucket listing.
type ListOptions struct {
	Prefix    string
	Delimiter string
	After     string // exclusive lower bound on keys (start-after / continuation)
	MaxKeys   int    // 0 means 1000; capped at 1000
}

// ListResult is one page of a listing. NextAfter is set when Truncated and is
// the value to pass as After for the next page.
type ListResult struct {
	Objects        []ObjectInfo
	CommonPrefixes []string
	Truncated      bool
	NextAfter      string
}

// PutInput is an object write. Size is the declared length (-1 if unknown);
// a body that ends before Size bytes fails with ErrIncompleteBody and
// leaves nothing behind.
type PutInput struct {
	Bucket      string
	Key         string
	Size        int64
	Body        io.Reader
	ContentType string
	UserMeta    map[string]string
	Headers     map[string]string // representation headers to store, canonical names
	Tagging     string            // URL-encoded tag set
	// Checksums, if not nil, is called once Body has ended and passed its
	// checks, before the version is committed; what it returns is stored
	// as ObjectInfo.Checksums. Checksums that arrive as trailers are only
	// known then.
	Checksums func() map[string]string

	target string // internal records only: the client key they belong to
	// avoid names nodes a first attempt of this write failed to stage
	// on: a second one takes them for down (see PutObject).
	avoid []string
	// recode, if set, is the version this write is staged and committed
	// as, whatever the clock says: client.RecodeVersion of the version a
	// first attempt committed on too few nodes (see finishAsRecode).
	recode string
	// restage says that the body is kept and this is the write's first
	// attempt: a stage that nodes failed is then staged again with
	// raised parity rather than committed short of shards (stageAll).
	restage bool
}

// Object is an object version resolved by OpenObject, ready to stream.
type Object interface {
	// Info describes the version that will be streamed.
	Info() ObjectInfo
	// WriteRange writes bytes [off, off+length) of the object to w. Every
	// byte written has passed its block checksum. An error after some bytes
	// were written means the caller must abort its response, not finish it.
	WriteRange(ctx context.Context, w io.Writer, off, length int64) error
}
