package client

import (
	"context"
	"errors"
	"io"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
)

// The interfaces below name the node API by concern, each as small as the
// callers that need it, in the way io.Reader and io.Writer name a stream.
// Their methods are those of *Client, with the contracts documented there;
// any implementation (over HTTP, in process, or a test fake) keeps the same
// error kinds, so that callers and the wrappers around them (health
// tracking, breakers) work the same over every one.

// Stager streams one shard of a version to the node as a staged write.
type Stager interface {
	Stage(ctx context.Context, bucket, key, version string, shard, blockSize int, body io.Reader) (StagedRef, error)
}

// Committer makes a staged version visible, or drops one that will never
// be committed.
type Committer interface {
	Commit(ctx context.Context, meta ObjectMeta) (Record, error)
	Abort(ctx context.Context, bucket, key, version string) error
}

// ShardReader opens a range of the node's shard of a version. The caller
// closes the stream.
type ShardReader interface {
	ReadShard(ctx context.Context, bucket, key, version string, shard int, off, length int64) (io.ReadCloser, error)
}

// Stater reports what the node holds of a key, optionally with the data of
// a small shard.
type Stater interface {
	Stat(ctx context.Context, bucket, key string) (KeyState, error)
	StatData(ctx context.Context, bucket, key string, limit int64, parity bool) (KeyState, error)
}

// Lister pages through the keys the node holds in a bucket.
type Lister interface {
	List(ctx context.Context, bucket, prefix, after string, limit int) (ListPage, error)
}

// StagedLister lists the node's staged, uncommitted shards.
type StagedLister interface {
	ListStaged(ctx context.Context, limit int) ([]StagedShard, error)
}

// BucketStore keeps the node's copy of the bucket records.
type BucketStore interface {
	PutBucket(ctx context.Context, rec BucketRecord) error
	GetBucket(ctx context.Context, name string) (BucketRecord, error)
	ListBuckets(ctx context.Context) ([]BucketRecord, error)
}

// Hinter keeps the repair hints left on the node for the scrubber.
type Hinter interface {
	AddHints(ctx context.Context, hints []Hint) error
	ListHints(ctx context.Context, limit int) ([]Hint, error)
	DeleteHints(ctx context.Context, hints []Hint) error
}

// Verifier re-hashes shards where they lie on the node.
type Verifier interface {
	Verify(ctx context.Context, refs []ShardRef) ([]VerifyResult, error)
}

// Dropper removes copies the cluster no longer needs, each by compare and
// delete.
type Dropper interface {
	DropShard(ctx context.Context, bucket, key, version string, shard int) (bool, error)
	DropMarker(ctx context.Context, bucket, key, version string) (bool, error)
}

// MapPusher hands the node a newer cluster map.
type MapPusher interface {
	PutMap(ctx context.Context, m *placement.Map) error
}

// HealthChecker asks the node for its identity and disk usage.
type HealthChecker interface {
	Health(ctx context.Context) (Health, error)
}

// Node is the node API the object protocol and the scrubber use. Callers
// that need one concern take the small interface instead.
type Node interface {
	Stager
	Committer
	ShardReader
	Stater
	Lister
	StagedLister
	BucketStore
	Hinter
	Verifier
	Dropper
	MapPusher
	HealthChecker
}

var _ Node = (*Client)(nil)

// Versioner reads and removes the noncurrent versions of versioned
// buckets' keys. It is apart from Node because only versioned keys need
// it: a node (or fake) without it answers those calls with ErrNoVersions
// through VersionsOf.
type Versioner interface {
	KeyVersions(ctx context.Context, bucket, key string) (KeyVersions, error)
	ListVersions(ctx context.Context, bucket, prefix, afterKey, afterVersion string, limit int) (VersionPage, error)
	DeleteVersion(ctx context.Context, bucket, key, version string) (*Record, error)
	CommitNoncurrent(ctx context.Context, meta ObjectMeta) (Record, error)
	SetTags(ctx context.Context, u TagUpdate) (Record, error)
}

var _ Versioner = (*Client)(nil)

// ErrNoVersions is the leaf error of a versioned call to a node client that
// does not serve versions (kind Internal).
var ErrNoVersions = errors.New("node client does not serve versions")

// VersionsOf returns n as a Versioner, or, if n is none, one whose every
// call fails with ErrNoVersions.
func VersionsOf(n Node) Versioner {
	if v, ok := n.(Versioner); ok {
		return v
	}
	return noVersions{}
}

type noVersions struct{}

func (noVersions) KeyVersions(context.Context, string, string) (KeyVersions, error) {
	return KeyVersions{}, kerr.E("client.KeyVersions", kerr.Internal, ErrNoVersions)
}

func (noVersions) ListVersions(context.Context, string, string, string, string, int) (VersionPage, error) {
	return VersionPage{}, kerr.E("client.ListVersions", kerr.Internal, ErrNoVersions)
}

func (noVersions) DeleteVersion(context.Context, string, string, string) (*Record, error) {
	return nil, kerr.E("client.DeleteVersion", kerr.Internal, ErrNoVersions)
}

func (noVersions) CommitNoncurrent(context.Context, ObjectMeta) (Record, error) {
	return Record{}, kerr.E("client.CommitNoncurrent", kerr.Internal, ErrNoVersions)
}

func (noVersions) SetTags(context.Context, TagUpdate) (Record, error) {
	return Record{}, kerr.E("client.SetTags", kerr.Internal, ErrNoVersions)
}
