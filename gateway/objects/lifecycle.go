package objects

import (
	"context"
	"errors"
	"fmt"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// ErrNoSuchLifecycle is the answer for a bucket without a lifecycle
// configuration.
var ErrNoSuchLifecycle = errors.New("no lifecycle configuration")

// PutBucketLifecycle stores the bucket's lifecycle configuration, an S3
// XML document the caller has validated (internal/lifecycle). The
// scrubber's pass applies it (see scrubber/lifecycle.go).
func (s *Store) PutBucketLifecycle(ctx context.Context, bucket, doc string) error {
	return s.updateBucket(ctx, "objects.PutBucketLifecycle", bucket, func(rec *client.BucketRecord) { rec.Lifecycle = doc })
}

// DeleteBucketLifecycle removes the bucket's lifecycle configuration.
func (s *Store) DeleteBucketLifecycle(ctx context.Context, bucket string) error {
	return s.updateBucket(ctx, "objects.DeleteBucketLifecycle", bucket, func(rec *client.BucketRecord) { rec.Lifecycle = "" })
}

// GetBucketLifecycle returns the bucket's lifecycle configuration, read
// from a majority of the nodes. Errors: ErrNoSuchBucket,
// ErrNoSuchLifecycle, ErrQuorum.
func (s *Store) GetBucketLifecycle(ctx context.Context, bucket string) (string, error) {
	return fenced(ctx, s, func(ctx context.Context) (string, error) {
		const op = "objects.GetBucketLifecycle"
		if err := validName(op, bucket, "", false); err != nil {
			return "", err
		}
		rec, found, err := s.readBucket(ctx, bucket)
		switch {
		case err != nil:
			return "", kerr.E(op, err)
		case !found || rec.Deleted:
			return "", kerr.E(op, kerr.NotExist, fmt.Errorf("%w: %s", ErrNoSuchBucket, bucket))
		case rec.Lifecycle == "":
			return "", kerr.E(op, kerr.NotExist, fmt.Errorf("%w: %s", ErrNoSuchLifecycle, bucket))
		}
		return rec.Lifecycle, nil
	})
}
