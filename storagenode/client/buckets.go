package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// PutBucket stores b on the node if its Version is newer than the node's
// record of that bucket; an equal one is a no-op success, an older one
// kerr.Conflict wrapping a *ConflictError that names the node's version.
// Deleting a bucket is putting a newer record with Deleted set.
func (c *Client) PutBucket(ctx context.Context, b BucketRecord) error {
	const op = "client.PutBucket"
	if err := CheckBucket(b.Name); err != nil {
		return kerr.E(op, err)
	}
	if err := CheckVersion(b.Version); err != nil {
		return kerr.E(op, err)
	}
	return c.call(ctx, op, http.MethodPut, "/v1/bucket", nil, b, nil)
}

// GetBucket returns the node's record of bucket name, tombstone or not. A
// bucket the node has never seen is kerr.NotExist.
func (c *Client) GetBucket(ctx context.Context, name string) (BucketRecord, error) {
	const op = "client.GetBucket"
	if err := CheckBucket(name); err != nil {
		return BucketRecord{}, kerr.E(op, err)
	}
	var b BucketRecord
	err := c.call(ctx, op, http.MethodGet, "/v1/bucket", url.Values{"name": {name}}, nil, &b)
	return b, err
}

// ListBuckets returns every bucket record on the node, tombstones
// included, sorted by name.
func (c *Client) ListBuckets(ctx context.Context) ([]BucketRecord, error) {
	var bs []BucketRecord
	err := c.call(ctx, "client.ListBuckets", http.MethodGet, "/v1/buckets", nil, nil, &bs)
	return bs, err
}
