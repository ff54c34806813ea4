package objects

import (
	"context"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// bucketInfo describes a live bucket record.
func bucketInfo(rec client.BucketRecord) BucketInfo {
	return BucketInfo{
		Name:       rec.Name,
		Created:    rec.Created,
		Config:     BucketConfig{Tagging: rec.Tagging, CORS: rec.CORS},
		Versioning: rec.Versioning, VersioningAt: rec.Version, Lifecycle: rec.Lifecycle,
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
	return s.updateBucket(ctx, "objects.UpdateBucket", name, func(rec *client.BucketRecord) {
		cfg := BucketConfig{Tagging: rec.Tagging, CORS: rec.CORS}
		update(&cfg)
		rec.Tagging, rec.CORS = cfg.Tagging, cfg.CORS
	})
}
