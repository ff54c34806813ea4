package main

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

func s3Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// whileNodesReturn retries call while it answers 503, for up to 30s: a
// gateway writes to nodes just restarted once their health checks pass.
func whileNodesReturn(call func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := call()
		if s3Code(err) != "ServiceUnavailable" || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func getVersionBytes(t *testing.T, cl *s3.Client, bucket, key, id string) ([]byte, error) {
	t.Helper()
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if id != "" {
		in.VersionId = aws.String(id)
	}
	out, err := cl.GetObject(context.Background(), in)
	if err != nil {
		return nil, err
	}
	return readAll(t, out, nil), nil
}

// TestS3Versioning drives versioning through aws-sdk-go-v2 against a
// multi-process cluster: every version readable with two nodes down, a
// delete marker deleted by id restores the object, a copy of an old
// version restores it too, and a scrub rebuilds a noncurrent version's
// lost shard.
func TestS3Versioning(t *testing.T) {
	ctx := context.Background()
	c := startScrubCluster(t)
	cl := s3Client(c, 0)
	const bucket = "vers"
	mustCreateBucket(t, ctx, cl, bucket)
	if _, err := cl.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	}); err != nil {
		t.Fatal(err)
	}
	gv, err := cl.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(bucket)})
	if err != nil || gv.Status != types.BucketVersioningStatusEnabled {
		t.Fatalf("GetBucketVersioning = %v, %v", gv.Status, err)
	}

	rng := rand.New(rand.NewPCG(7, 7))
	var data [][]byte
	var ids []string
	for i := range 3 {
		b := make([]byte, 100<<10+i*1000)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		out, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: bytes.NewReader(b)})
		if err != nil {
			t.Fatal(err)
		}
		if out.VersionId == nil || *out.VersionId == "" || *out.VersionId == "null" {
			t.Fatalf("PUT %d: version id %v", i, out.VersionId)
		}
		data, ids = append(data, b), append(ids, *out.VersionId)
	}
	del, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	if err != nil || del.DeleteMarker == nil || !*del.DeleteMarker || del.VersionId == nil {
		t.Fatalf("DELETE = %+v, %v", del, err)
	}
	marker := *del.VersionId
	if _, err := getVersionBytes(t, cl, bucket, "k", ""); s3Code(err) != "NoSuchKey" {
		t.Fatalf("GET after delete: %v", err)
	}

	lv, err := cl.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(lv.Versions) != 3 || len(lv.DeleteMarkers) != 1 || !*lv.DeleteMarkers[0].IsLatest || *lv.DeleteMarkers[0].VersionId != marker {
		t.Fatalf("ListObjectVersions: %d versions, %d markers", len(lv.Versions), len(lv.DeleteMarkers))
	}
	for i, v := range lv.Versions {
		if want := ids[2-i]; *v.VersionId != want || *v.IsLatest {
			t.Errorf("listed version %d: %s latest %v, want %s not latest", i, *v.VersionId, *v.IsLatest, want)
		}
	}

	// Every version survives two nodes down.
	c.Nodes[1].Kill()
	c.Nodes[4].Kill()
	for i, id := range ids {
		got, err := getVersionBytes(t, cl, bucket, "k", id)
		if err != nil || !bytes.Equal(got, data[i]) {
			t.Errorf("GET version %d with two nodes down: %d bytes, %v", i, len(got), err)
		}
	}
	for _, k := range []int{1, 4} {
		if err := c.Nodes[k].Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Restore by deleting the marker.
	if out, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), VersionId: aws.String(marker)}); err != nil || out.DeleteMarker == nil || !*out.DeleteMarker {
		t.Fatalf("DELETE marker by id = %+v, %v", out, err)
	}
	if got, err := getVersionBytes(t, cl, bucket, "k", ""); err != nil || !bytes.Equal(got, data[2]) {
		t.Fatalf("GET after restoring: %d bytes, %v", len(got), err)
	}
	// Restore an older version by copying it over the key.
	var cp *s3.CopyObjectOutput
	err = whileNodesReturn(func() error {
		var err error
		cp, err = cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), CopySource: aws.String(bucket + "/k?versionId=" + ids[0])})
		return err
	})
	if err != nil || cp.VersionId == nil || cp.CopySourceVersionId == nil || *cp.CopySourceVersionId != ids[0] {
		t.Fatalf("CopyObject of version 0 = %+v, %v", cp, err)
	}
	if got, err := getVersionBytes(t, cl, bucket, "k", ""); err != nil || !bytes.Equal(got, data[0]) {
		t.Fatalf("GET after copying version 0 back: %d bytes, %v", len(got), err)
	}

	// A noncurrent version's lost shard is rebuilt by the scrub.
	scrubBaseline(t, c)
	holder := scrubNodeIndex(c, c.Map.PlaceKey(bucket, "k")[0].ID)
	path := scrubShardPath(c, holder, bucket, "k", ids[1], 0)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	rep := mustScrub(t, c, 0)
	if rep.Noncurrent < 3 || rep.ShardsRebuilt != 1 {
		t.Fatalf("scrub: %d noncurrent versions checked, %d shards rebuilt; want >= 3, 1", rep.Noncurrent, rep.ShardsRebuilt)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("rebuilt shard: %v", err)
	}
	// Read it with two other shards' nodes down: the rebuilt shard counts.
	placed := c.Map.PlaceKey(bucket, "k")
	down := []int{scrubNodeIndex(c, placed[1].ID), scrubNodeIndex(c, placed[2].ID)}
	for _, k := range down {
		c.Nodes[k].Kill()
	}
	got, err := getVersionBytes(t, cl, bucket, "k", ids[1])
	for _, k := range down {
		if err := c.Nodes[k].Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err != nil || !bytes.Equal(got, data[1]) {
		t.Fatalf("GET of the rebuilt version with two nodes down: %d bytes, %v", len(got), err)
	}

	// Deleting a noncurrent version for good.
	if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), VersionId: aws.String(ids[1])}); err != nil {
		t.Fatal(err)
	}
	if _, err := getVersionBytes(t, cl, bucket, "k", ids[1]); s3Code(err) != "NoSuchVersion" {
		t.Fatalf("GET of a deleted version: %v", err)
	}
}

// TestS3Lifecycle sets a bucket's lifecycle through aws-sdk-go-v2, checks
// S3's validation errors, and has `kintsugi scrub --lifecycle-day 1s`
// expire a current version (a delete marker over it), a noncurrent version
// beyond NewerNoncurrentVersions, and nothing under a disabled rule.
func TestS3Lifecycle(t *testing.T) {
	ctx := context.Background()
	c := startScrubCluster(t)
	cl := s3Client(c, 0)
	const bucket = "life"
	mustCreateBucket(t, ctx, cl, bucket)
	if _, err := cl.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(bucket)}); s3Code(err) != "NoSuchLifecycleConfiguration" {
		t.Fatalf("GET lifecycle of a bucket without one: %v", err)
	}
	if _, err := cl.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	}); err != nil {
		t.Fatal(err)
	}
	bad := &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String(bucket), LifecycleConfiguration: &types.BucketLifecycleConfiguration{
		Rules: []types.LifecycleRule{{ID: aws.String("zero"), Status: types.ExpirationStatusEnabled,
			Filter: &types.LifecycleRuleFilter{Prefix: aws.String("")}, Expiration: &types.LifecycleExpiration{Days: aws.Int32(0)}}},
	}}
	if _, err := cl.PutBucketLifecycleConfiguration(ctx, bad); s3Code(err) != "InvalidArgument" {
		t.Fatalf("Days 0: %v, want InvalidArgument", err)
	}
	cfg := &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{
		{ID: aws.String("tmp"), Status: types.ExpirationStatusEnabled,
			Filter: &types.LifecycleRuleFilter{Prefix: aws.String("tmp/")}, Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)}},
		{ID: aws.String("old"), Status: types.ExpirationStatusEnabled,
			Filter:                      &types.LifecycleRuleFilter{Prefix: aws.String("doc/")},
			NoncurrentVersionExpiration: &types.NoncurrentVersionExpiration{NoncurrentDays: aws.Int32(1), NewerNoncurrentVersions: aws.Int32(1)}},
		{ID: aws.String("off"), Status: types.ExpirationStatusDisabled,
			Filter: &types.LifecycleRuleFilter{Prefix: aws.String("keep/")}, Expiration: &types.LifecycleExpiration{Days: aws.Int32(1)}},
	}}
	if _, err := cl.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String(bucket), LifecycleConfiguration: cfg}); err != nil {
		t.Fatal(err)
	}
	got, err := cl.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(bucket)})
	if err != nil || len(got.Rules) != 3 || *got.Rules[1].NoncurrentVersionExpiration.NewerNoncurrentVersions != 1 {
		t.Fatalf("GET lifecycle = %+v, %v", got, err)
	}

	put := func(key, body string) string {
		out, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte(body))})
		if err != nil {
			t.Fatal(err)
		}
		return *out.VersionId
	}
	put("tmp/a", "scratch")
	d1, d2, d3 := put("doc/a", "one"), put("doc/a", "two"), put("doc/a", "three")
	put("keep/a", "kept")
	time.Sleep(1500 * time.Millisecond) // more than a 1s "day"

	rep := mustScrub(t, c, 0, "--lifecycle-day", "1s")
	if rep.Expired != 2 {
		t.Fatalf("scrub expired %d, want 2", rep.Expired)
	}
	if _, err := getVersionBytes(t, cl, bucket, "tmp/a", ""); s3Code(err) != "NoSuchKey" {
		t.Errorf("tmp/a after expiry: %v", err)
	}
	lv, err := cl.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String("doc/")})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range lv.Versions {
		ids = append(ids, *v.VersionId)
	}
	if len(ids) != 2 || ids[0] != d3 || ids[1] != d2 {
		t.Errorf("doc/a versions %v, want %s %s (%s expired)", ids, d3, d2, d1)
	}
	if b, err := getVersionBytes(t, cl, bucket, "keep/a", ""); err != nil || string(b) != "kept" {
		t.Errorf("keep/a under a disabled rule: %q, %v", b, err)
	}
	if _, err := cl.DeleteBucketLifecycle(ctx, &s3.DeleteBucketLifecycleInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(bucket)}); s3Code(err) != "NoSuchLifecycleConfiguration" {
		t.Fatalf("GET lifecycle after delete: %v", err)
	}
}
