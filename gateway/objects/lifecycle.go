package objects

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/lifecycle"
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

// uploadDue reports whether a bucket's lifecycle rules abort an upload to
// key begun at initiated.
type uploadDue func(key string, initiated, now time.Time) bool

// uploadRules returns the bucket's AbortIncompleteMultipartUpload rules
// as an uploadDue, with day as their day. A bucket whose rules cannot be
// read aborts nothing early.
func (s *Store) uploadRules(ctx context.Context, bucket string, day time.Duration) uploadDue {
	never := func(string, time.Time, time.Time) bool { return false }
	info, err := s.HeadBucket(ctx, bucket)
	if err != nil || info.Lifecycle == "" {
		return never
	}
	cfg, err := lifecycle.Parse([]byte(info.Lifecycle))
	if err != nil {
		s.log.Warn("objects: bucket lifecycle unreadable", "bucket", bucket, "err", err)
		return never
	}
	return func(key string, initiated, now time.Time) bool { return cfg.UploadExpired(key, initiated, now, day) }
}
