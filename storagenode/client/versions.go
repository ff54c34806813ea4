package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/wire"
)

// Versioning's names and types are declared in package wire; these keep
// their names in this package.
const (
	VersioningEnabled   = wire.VersioningEnabled
	VersioningSuspended = wire.VersioningSuspended
	NullVersion         = wire.NullVersion
)

type (
	BucketState = wire.BucketState
	KeyVersions = wire.KeyVersions
	VersionPage = wire.VersionPage
	TagUpdate   = wire.TagUpdate
)

// KeyVersions returns every version the node holds of bucket/key. A key the
// node has never seen gives an empty answer and a nil error.
func (c *Client) KeyVersions(ctx context.Context, bucket, key string) (KeyVersions, error) {
	const op = "client.KeyVersions"
	if err := CheckKey(bucket, key); err != nil {
		return KeyVersions{}, kerr.E(op, err)
	}
	var kv KeyVersions
	err := c.call(ctx, op, http.MethodGet, "/v1/key/versions", url.Values{"bucket": {bucket}, "key": {key}}, nil, &kv)
	return kv, err
}

// ListVersions returns up to limit versions of bucket's keys having prefix,
// starting after the version afterVersion of key afterKey (afterVersion ""
// : after every version of afterKey; both "": from the start). limit is
// clamped as List's is.
func (c *Client) ListVersions(ctx context.Context, bucket, prefix, afterKey, afterVersion string, limit int) (VersionPage, error) {
	const op = "client.ListVersions"
	if err := CheckBucket(bucket); err != nil {
		return VersionPage{}, kerr.E(op, err)
	}
	q := url.Values{"bucket": {bucket}, "limit": {strconv.Itoa(ListLimit(limit))}}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if afterKey != "" {
		q.Set("after_key", afterKey)
	}
	if afterVersion != "" {
		q.Set("after_version", afterVersion)
	}
	var page VersionPage
	err := c.call(ctx, op, http.MethodGet, "/v1/versions", q, nil, &page)
	return page, err
}

// DeleteVersion deletes one version of a key for good: the node drops its
// record and shard and remembers that the version was deleted, so that no
// commit (a late write, a rebuild) installs it again. If it was the
// key's current version, the newest remaining one becomes current. It
// answers the key's current record afterwards (nil if none). Deleting a
// version the node never held records the deletion all the same.
func (c *Client) DeleteVersion(ctx context.Context, bucket, key, version string) (*Record, error) {
	const op = "client.DeleteVersion"
	if err := CheckObject(bucket, key, version); err != nil {
		return nil, kerr.E(op, err)
	}
	var out struct {
		Current *Record `json:"current"`
	}
	err := c.call(ctx, op, http.MethodPost, "/v1/version/delete", objectQuery(bucket, key, version), nil, &out)
	return out.Current, err
}

// CommitNoncurrent commits meta as a rebuild of any version of a key does:
// a version newer than the node's current one (or that one) as Commit
// would; an older one as a noncurrent version, installing the shard
// staged under meta.Version. A version deleted by version is refused with
// ErrVersionDeleted.
func (c *Client) CommitNoncurrent(ctx context.Context, meta ObjectMeta) (Record, error) {
	const op = "client.CommitNoncurrent"
	if err := CheckObject(meta.Bucket, meta.Key, meta.Version); err != nil {
		return Record{}, kerr.E(op, err)
	}
	var rec Record
	err := c.call(ctx, op, http.MethodPost, "/v1/commit/noncurrent", nil, meta, &rec)
	return rec, err
}

// SetTags replaces the tag set of version u.Version of u.Bucket/u.Key,
// current or noncurrent, unless the node's tags of it carry a stamp as new
// as u.At or newer. It answers the record afterwards (with the tags the
// node keeps). A version the node does not hold, or a delete marker, is
// refused with kind NotExist.
func (c *Client) SetTags(ctx context.Context, u TagUpdate) (Record, error) {
	const op = "client.SetTags"
	if err := CheckTagUpdate(u); err != nil {
		return Record{}, kerr.E(op, err)
	}
	var rec Record
	err := c.call(ctx, op, http.MethodPost, "/v1/tags", nil, u, &rec)
	return rec, err
}

// CheckTagUpdate reports whether u names a version and carries a stamp.
func CheckTagUpdate(u TagUpdate) error {
	if err := CheckObject(u.Bucket, u.Key, u.Version); err != nil {
		return err
	}
	return CheckVersion(u.At)
}
