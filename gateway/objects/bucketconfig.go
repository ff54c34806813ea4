package objects

import (
	"context"
	"fmt"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// bucketInfo describes a live bucket record.
func bucketInfo(rec client.BucketRecord) BucketInfo {
	return BucketInfo{
		Name:    rec.Name,
		Created: rec.Created,
		Config:  BucketConfig{Tagging: rec.Tagging, CORS: rec.CORS},
	}
}

// UpdateBucket changes the configuration of a live bucket: it reads the
// newest record from a majority of the nodes, applies update to its
// configuration and writes the record back under a new version, through
// the same path as CreateBucket (newest version wins on every node). It
// fails with ErrNoSuchBucket or ErrQuorum.
//
// Gateways cache bucket records for their TTL, so another gateway may act
// on the previous configuration for that long. Two updates racing on the
// same bucket are ordered by their versions: the later one wins whole,
// and may carry the earlier one's read of a field it did not change.
func (s *Store) UpdateBucket(ctx context.Context, name string, update func(*BucketConfig)) error {
	const op = "objects.UpdateBucket"
	ctx, done := s.fence(ctx) // not run again: update may not be idempotent
	defer done()
	if err := validName(op, name, "", false); err != nil {
		return err
	}
	rec, found, err := s.readBucket(ctx, name)
	if err != nil {
		return kerr.E(op, err)
	}
	if !found || rec.Deleted {
		s.uncacheBucket(name)
		return kerr.E(op, kerr.NotExist, fmt.Errorf("%w: %s", ErrNoSuchBucket, name))
	}
	cfg := BucketConfig{Tagging: rec.Tagging, CORS: rec.CORS}
	update(&cfg)
	// The read fed the clock, so the new version is above the record's.
	rec.Version = s.newVersion()
	rec.Tagging, rec.CORS = cfg.Tagging, cfg.CORS
	s.uncacheBucket(name)
	if err := s.writeBucket(ctx, rec); err != nil {
		return kerr.E(op, err)
	}
	s.cacheBucket(bucketInfo(rec))
	return nil
}
