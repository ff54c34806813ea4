package storagenode

import (
	"context"
	"io"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Local is a client of a Node in the same process: it has the methods,
// signatures and contract of *client.Client, so that whatever takes a
// node client (the gateway's, the scrubber's) can be given either. Calls
// go straight to the Node's methods: no loopback, no JSON, no signing. A
// stage's shard bytes go from the caller's reader to the node's file, and
// ReadShard returns the node's own reader of the shard.
//
// Errors have the kinds, sentinels and concrete types a *client.Client
// returns for the same call (kerr kinds, client.ErrWrongShard,
// *client.ConflictError, *client.StaleMapError and the client.Fence
// told), so that a caller cannot tell a Local from a remote node by its
// errors: a node's internal failure, which a remote node answers with 500,
// is kerr.Unavailable, and a call whose ctx is done fails kerr.Transient
// with ctx's error in the chain. Only the messages differ.
//
// A Local checks every shard frame a remote node checks unless its
// LocalOptions say otherwise. It is safe for concurrent use. It does not
// own the Node: closing the Node is its opener's business.
// Local answers to the same small interfaces as the HTTP client, so callers
// (and the breaker layer) cannot tell an in-process node from a remote one.
var _ client.Node = (*Local)(nil)

type Local struct {
	n    *Node
	opts LocalOptions
}

// LocalOptions configure a Local. A nil *LocalOptions means all defaults.
type LocalOptions struct {
	// TrustFrames makes Stage skip checking each block against its
	// frame's digest: the frames are split and the root is computed from
	// their digests only. It is for callers that framed the stream
	// themselves from bytes that never left memory, where a second hash
	// of every block finds nothing; a commit still checks the root
	// against the object's metadata. Off by default: a stream read from
	// a disk or a network must be checked where it lands.
	TrustFrames bool
}

// NewLocal returns a Local client of n.
func NewLocal(n *Node, opts *LocalOptions) *Local {
	l := &Local{n: n}
	if opts != nil {
		l.opts = *opts
	}
	return l
}

// Addr returns "local:" and the node's ID, for logs and errors.
func (l *Local) Addr() string { return "local:" + l.n.cfg.ID }

// result gives err the kind a *client.Client would have: a node's own
// failure (500 over HTTP) is Unavailable. REQUIRES: err came from a Node
// method.
func result(op string, err error) error {
	if err == nil {
		return nil
	}
	switch kerr.KindOf(err) {
	case kerr.Internal, kerr.Other:
		return kerr.E(op, kerr.Unavailable, err)
	}
	return err
}

// begin fails a call whose ctx is done, as the HTTP client's transport
// would.
func begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return kerr.E(op, kerr.Transient, err)
	}
	return nil
}

// Stage is client.Client.Stage; see Node.Stage and LocalOptions.TrustFrames.
func (l *Local) Stage(ctx context.Context, bucket, key, version string, shard, blockSize int, body io.Reader) (client.StagedRef, error) {
	const op = "storagenode.Local.Stage"
	if err := begin(ctx, op); err != nil {
		return client.StagedRef{}, err
	}
	ref, err := l.n.stageCall(ctx, bucket, key, version, shard, blockSize, body, l.opts.TrustFrames)
	return ref, result(op, err)
}

// Commit is client.Client.Commit.
func (l *Local) Commit(ctx context.Context, meta client.ObjectMeta) (client.Record, error) {
	const op = "storagenode.Local.Commit"
	if err := begin(ctx, op); err != nil {
		return client.Record{}, err
	}
	rec, err := l.n.Commit(ctx, meta)
	return rec, result(op, err)
}

// Abort is client.Client.Abort.
func (l *Local) Abort(ctx context.Context, bucket, key, version string) error {
	const op = "storagenode.Local.Abort"
	if err := begin(ctx, op); err != nil {
		return err
	}
	return result(op, l.n.Abort(ctx, bucket, key, version))
}

// ReadShard is client.Client.ReadShard. The stream reads the node's file
// (or its index entry) directly; the caller closes it.
func (l *Local) ReadShard(ctx context.Context, bucket, key, version string, shard int, off, length int64) (io.ReadCloser, error) {
	const op = "storagenode.Local.ReadShard"
	if err := begin(ctx, op); err != nil {
		return nil, err
	}
	rc, err := l.n.ReadShard(ctx, bucket, key, version, shard, off, length)
	return rc, result(op, err)
}

// Stat is client.Client.Stat.
func (l *Local) Stat(ctx context.Context, bucket, key string) (client.KeyState, error) {
	const op = "storagenode.Local.Stat"
	if err := begin(ctx, op); err != nil {
		return client.KeyState{}, err
	}
	ks, err := l.n.Stat(ctx, bucket, key)
	return ks, result(op, err)
}

// StatData is client.Client.StatData.
func (l *Local) StatData(ctx context.Context, bucket, key string, max int64, parity bool) (client.KeyState, error) {
	const op = "storagenode.Local.StatData"
	if err := begin(ctx, op); err != nil {
		return client.KeyState{}, err
	}
	ks, err := l.n.StatData(ctx, bucket, key, max, parity)
	return ks, result(op, err)
}

// List is client.Client.List.
func (l *Local) List(ctx context.Context, bucket, prefix, after string, limit int) (client.ListPage, error) {
	const op = "storagenode.Local.List"
	if err := begin(ctx, op); err != nil {
		return client.ListPage{}, err
	}
	page, err := l.n.List(ctx, bucket, prefix, after, limit)
	return page, result(op, err)
}

// PutBucket is client.Client.PutBucket.
func (l *Local) PutBucket(ctx context.Context, b client.BucketRecord) error {
	const op = "storagenode.Local.PutBucket"
	if err := begin(ctx, op); err != nil {
		return err
	}
	return result(op, l.n.PutBucket(ctx, b))
}

// GetBucket is client.Client.GetBucket.
func (l *Local) GetBucket(ctx context.Context, name string) (client.BucketRecord, error) {
	const op = "storagenode.Local.GetBucket"
	if err := begin(ctx, op); err != nil {
		return client.BucketRecord{}, err
	}
	b, err := l.n.GetBucket(ctx, name)
	return b, result(op, err)
}

// ListBuckets is client.Client.ListBuckets.
func (l *Local) ListBuckets(ctx context.Context) ([]client.BucketRecord, error) {
	const op = "storagenode.Local.ListBuckets"
	if err := begin(ctx, op); err != nil {
		return nil, err
	}
	bs, err := l.n.ListBuckets(ctx)
	return bs, result(op, err)
}

// AddHints is client.Client.AddHints.
func (l *Local) AddHints(ctx context.Context, hints []client.Hint) error {
	const op = "storagenode.Local.AddHints"
	if err := begin(ctx, op); err != nil {
		return err
	}
	return result(op, l.n.AddHints(ctx, hints))
}

// ListHints is client.Client.ListHints.
func (l *Local) ListHints(ctx context.Context, limit int) ([]client.Hint, error) {
	const op = "storagenode.Local.ListHints"
	if err := begin(ctx, op); err != nil {
		return nil, err
	}
	hs, err := l.n.ListHints(ctx, limit)
	return hs, result(op, err)
}

// DeleteHints is client.Client.DeleteHints.
func (l *Local) DeleteHints(ctx context.Context, hints []client.Hint) error {
	const op = "storagenode.Local.DeleteHints"
	if err := begin(ctx, op); err != nil {
		return err
	}
	return result(op, l.n.DeleteHints(ctx, hints))
}

// Health is client.Client.Health.
func (l *Local) Health(ctx context.Context) (client.Health, error) {
	const op = "storagenode.Local.Health"
	if err := begin(ctx, op); err != nil {
		return client.Health{}, err
	}
	h, err := l.n.Health(ctx)
	return h, result(op, err)
}

// GetMap is client.Client.GetMap.
func (l *Local) GetMap(ctx context.Context) (*placement.Map, error) {
	const op = "storagenode.Local.GetMap"
	if err := begin(ctx, op); err != nil {
		return nil, err
	}
	m, err := l.n.GetMap(ctx)
	return m, result(op, err)
}

// PutMap is client.Client.PutMap.
func (l *Local) PutMap(ctx context.Context, m *placement.Map) error {
	const op = "storagenode.Local.PutMap"
	if err := begin(ctx, op); err != nil {
		return err
	}
	return result(op, l.n.PutMap(ctx, m))
}

// Verify is client.Client.Verify.
func (l *Local) Verify(ctx context.Context, refs []client.ShardRef) ([]client.VerifyResult, error) {
	const op = "storagenode.Local.Verify"
	if err := begin(ctx, op); err != nil {
		return nil, err
	}
	out, err := l.n.Verify(ctx, refs)
	return out, result(op, err)
}

// ScrubStatus is client.Client.ScrubStatus.
func (l *Local) ScrubStatus(ctx context.Context) (client.ScrubStatus, error) {
	const op = "storagenode.Local.ScrubStatus"
	if err := begin(ctx, op); err != nil {
		return client.ScrubStatus{}, err
	}
	st, err := l.n.ScrubStatus(ctx)
	return st, result(op, err)
}

// DropMarker is client.Client.DropMarker.
func (l *Local) DropMarker(ctx context.Context, bucket, key, version string) (bool, error) {
	const op = "storagenode.Local.DropMarker"
	if err := begin(ctx, op); err != nil {
		return false, err
	}
	dropped, err := l.n.DropMarker(ctx, bucket, key, version)
	return dropped, result(op, err)
}

// ListStaged is client.Client.ListStaged.
func (l *Local) ListStaged(ctx context.Context, limit int) ([]client.StagedShard, error) {
	const op = "storagenode.Local.ListStaged"
	if err := begin(ctx, op); err != nil {
		return nil, err
	}
	out, err := l.n.ListStaged(ctx, limit)
	return out, result(op, err)
}

// DropShard is client.Client.DropShard.
func (l *Local) DropShard(ctx context.Context, bucket, key, version string, shard int) (bool, error) {
	const op = "storagenode.Local.DropShard"
	if err := begin(ctx, op); err != nil {
		return false, err
	}
	dropped, err := l.n.DropShard(ctx, bucket, key, version, shard)
	return dropped, result(op, err)
}

// KeyVersions is Client.KeyVersions, in process.
func (l *Local) KeyVersions(ctx context.Context, bucket, key string) (client.KeyVersions, error) {
	const op = "storagenode.Local.KeyVersions"
	if err := begin(ctx, op); err != nil {
		return client.KeyVersions{}, err
	}
	kv, err := l.n.KeyVersions(ctx, bucket, key)
	return kv, result(op, err)
}

// ListVersions is Client.ListVersions, in process.
func (l *Local) ListVersions(ctx context.Context, bucket, prefix, afterKey, afterVersion string, limit int) (client.VersionPage, error) {
	const op = "storagenode.Local.ListVersions"
	if err := begin(ctx, op); err != nil {
		return client.VersionPage{}, err
	}
	page, err := l.n.ListVersions(ctx, bucket, prefix, afterKey, afterVersion, limit)
	return page, result(op, err)
}

// DeleteVersion is Client.DeleteVersion, in process.
func (l *Local) DeleteVersion(ctx context.Context, bucket, key, version string) (*client.Record, error) {
	const op = "storagenode.Local.DeleteVersion"
	if err := begin(ctx, op); err != nil {
		return nil, err
	}
	cur, err := l.n.DeleteVersion(ctx, bucket, key, version)
	return cur, result(op, err)
}

// CommitNoncurrent is Client.CommitNoncurrent, in process.
func (l *Local) CommitNoncurrent(ctx context.Context, meta client.ObjectMeta) (client.Record, error) {
	const op = "storagenode.Local.CommitNoncurrent"
	if err := begin(ctx, op); err != nil {
		return client.Record{}, err
	}
	rec, err := l.n.CommitNoncurrent(ctx, meta)
	return rec, result(op, err)
}

// SetTags is Client.SetTags, in process.
func (l *Local) SetTags(ctx context.Context, u client.TagUpdate) (client.Record, error) {
	const op = "storagenode.Local.SetTags"
	if err := begin(ctx, op); err != nil {
		return client.Record{}, err
	}
	rec, err := l.n.SetTags(ctx, u)
	return rec, result(op, err)
}
