package objects

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSweepAbortsByLifecycle: an AbortIncompleteMultipartUpload rule
// aborts the uploads under its prefix sooner than the sweep's expiry.
func TestSweepAbortsByLifecycle(t *testing.T) {
	c, clock := mpCluster(t)
	ctx := context.Background()
	if _, err := c.s.GetBucketLifecycle(ctx, testBucket); !errors.Is(err, ErrNoSuchLifecycle) {
		t.Fatalf("GetBucketLifecycle without one: %v", err)
	}
	doc := `<LifecycleConfiguration><Rule><ID>tmp</ID><Status>Enabled</Status><Filter><Prefix>tmp/</Prefix></Filter>` +
		`<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>`
	if err := c.s.PutBucketLifecycle(ctx, testBucket, doc); err != nil {
		t.Fatal(err)
	}
	if got, err := c.s.GetBucketLifecycle(ctx, testBucket); err != nil || got != doc {
		t.Fatalf("GetBucketLifecycle = %q, %v", got, err)
	}
	c.create("tmp/a")
	keep := c.create("keep/a")
	clock.Add(int64(2 * 24 * time.Hour))
	rep, err := c.s.SweepUploads(ctx, &SweepOptions{Expiry: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Expired != 1 {
		t.Fatalf("sweep aborted %d uploads, want 1 (report %+v)", rep.Expired, rep)
	}
	list, err := c.s.ListUploads(ctx, testBucket, UploadListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Uploads) != 1 || list.Uploads[0].UploadID != keep {
		t.Fatalf("uploads left: %+v, want only %s", list.Uploads, keep)
	}
	if err := c.s.DeleteBucketLifecycle(ctx, testBucket); err != nil {
		t.Fatal(err)
	}
	if _, err := c.s.GetBucketLifecycle(ctx, testBucket); !errors.Is(err, ErrNoSuchLifecycle) {
		t.Fatalf("GetBucketLifecycle after delete: %v", err)
	}
}
