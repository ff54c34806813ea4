package gateway

import (
	"context"

	"github.com/kintsugi-store/kintsugi/gateway/objects"
)

// Backend is what the gateway needs from the object store. *objects.Store
// implements it; tests use an in-memory fake.
//
// Errors must wrap the objects sentinels (objects.ErrNoSuchBucket,
// objects.ErrNoSuchKey, ...) or carry a kerr.Kind so that the gateway can
// map them to S3 error codes.
type Backend interface {
	CreateBucket(ctx context.Context, name string) error
	HeadBucket(ctx context.Context, name string) (objects.BucketInfo, error)
	DeleteBucket(ctx context.Context, name string) error
	ListBuckets(ctx context.Context) ([]objects.BucketInfo, error)
	// UpdateBucket changes a bucket's configuration (tagging, CORS)
	// through the bucket write path; see objects.Store.UpdateBucket.
	UpdateBucket(ctx context.Context, name string, update func(*objects.BucketConfig)) error

	// PutObject consumes in.Body; a Body read error must abort the write
	// and leave nothing behind.
	PutObject(ctx context.Context, in objects.PutInput) (objects.ObjectInfo, error)
	OpenObject(ctx context.Context, bucket, key string) (objects.Object, error)
	StatObject(ctx context.Context, bucket, key string) (objects.ObjectInfo, error)
	// DeleteObject deletes key; deleting a missing key in an existing
	// bucket may return objects.ErrNoSuchKey or nil.
	DeleteObject(ctx context.Context, bucket, key string) error
	ListObjects(ctx context.Context, bucket string, opts objects.ListOptions) (objects.ListResult, error)

	// Multipart uploads; see objects.Store for the contracts. PutPart
	// consumes in.Body like PutObject.
	CreateUpload(ctx context.Context, in objects.UploadInput) (objects.UploadInfo, error)
	PutPart(ctx context.Context, in objects.PartInput) (objects.PartInfo, error)
	CompleteUpload(ctx context.Context, in objects.CompleteInput) (objects.ObjectInfo, error)
	AbortUpload(ctx context.Context, bucket, key, uploadID string) error
	ListParts(ctx context.Context, bucket, key, uploadID string, opts objects.PartListOptions) (objects.PartList, error)
	ListUploads(ctx context.Context, bucket string, opts objects.UploadListOptions) (objects.UploadList, error)
}
