package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
)

// errHeader returns header name of the HTTP answer behind an SDK error.
func errHeader(err error, name string) string {
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return ""
	}
	return re.Response.Header.Get(name)
}

// TestS3VersioningTags drives tagging of a versioned bucket's versions and
// reads under a delete marker with aws-sdk-go-v2 through two gateways of a
// multi-process cluster: a tag update changes the version it names (the
// current one, or one by versionId) in place, with no new version, the
// same ETag and Last-Modified; a key whose current version is a delete
// marker answers 404 naming the marker, the marker by id 405.
func TestS3VersioningTags(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test; run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := proctest.StartCluster(t, testBin, proctest.Options{Gateways: 2})
	a, b := s3Client(c, 0), s3Client(c, 1)
	const bucket = "vtags"
	mustCreateBucket(t, ctx, a, bucket)
	bk, key := aws.String(bucket), aws.String("k")
	if _, err := a.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: bk,
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, body := range []string{"first", "second"} {
		out, err := a.PutObject(ctx, &s3.PutObjectInput{Bucket: bk, Key: key, Body: strings.NewReader(body), Tagging: aws.String("gen=" + body)})
		if err != nil {
			t.Fatalf("PUT %d: %v", i, err)
		}
		ids = append(ids, aws.ToString(out.VersionId))
	}
	before, err := b.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bk, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	getTags := func(cl *s3.Client, id string) []string {
		t.Helper()
		in := &s3.GetObjectTaggingInput{Bucket: bk, Key: key}
		if id != "" {
			in.VersionId = aws.String(id)
		}
		out, err := cl.GetObjectTagging(ctx, in)
		if err != nil {
			t.Fatalf("GetObjectTagging %q: %v", id, err)
		}
		if want := ids[1]; id != "" {
			want = id
			if got := aws.ToString(out.VersionId); got != want {
				t.Fatalf("GetObjectTagging %q names version %s", id, got)
			}
		}
		var tags []string
		for _, tg := range out.TagSet {
			tags = append(tags, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
		}
		return tags
	}

	// The current version, through one gateway, read through the other.
	put, err := a.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: bk, Key: key,
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("state"), Value: aws.String("new")}, {Key: aws.String("x"), Value: aws.String("1")}}}})
	if err != nil || aws.ToString(put.VersionId) != ids[1] {
		t.Fatalf("PutObjectTagging: %+v, %v; want version %s", put, err, ids[1])
	}
	if got := strings.Join(getTags(b, ""), "&"); got != "state=new&x=1" {
		t.Fatalf("current version's tags %q", got)
	}
	head, err := b.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bk, Key: key})
	if err != nil || aws.ToString(head.VersionId) != ids[1] || aws.ToString(head.ETag) != aws.ToString(before.ETag) ||
		!aws.ToTime(head.LastModified).Equal(aws.ToTime(before.LastModified)) || aws.ToInt32(head.TagCount) != 2 {
		t.Fatalf("HEAD after retagging: %+v, %v; before %+v", head, err, before)
	}
	// A noncurrent version, by versionId.
	if _, err := b.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: bk, Key: key, VersionId: aws.String(ids[0]),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("state"), Value: aws.String("old")}}}}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(getTags(a, ids[0]), "&"); got != "state=old" {
		t.Fatalf("noncurrent version's tags %q", got)
	}
	if got := strings.Join(getTags(a, ""), "&"); got != "state=new&x=1" {
		t.Fatalf("current version's tags after retagging the old one %q", got)
	}
	if _, err := a.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: bk, Key: key, VersionId: aws.String(ids[0])}); err != nil {
		t.Fatal(err)
	}
	if got := getTags(b, ids[0]); len(got) != 0 {
		t.Fatalf("noncurrent version's tags after DeleteObjectTagging %q", got)
	}
	lv, err := b.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: bk})
	if err != nil || len(lv.Versions) != 2 || len(lv.DeleteMarkers) != 0 {
		t.Fatalf("versions after tag updates: %+v, %v; want the 2 written", lv, err)
	}

	// Under a delete marker.
	del, err := a.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bk, Key: key})
	if err != nil || !aws.ToBool(del.DeleteMarker) {
		t.Fatalf("DELETE: %+v, %v", del, err)
	}
	marker := aws.ToString(del.VersionId)
	_, err = b.GetObject(ctx, &s3.GetObjectInput{Bucket: bk, Key: key})
	if apiCode(err) != "NoSuchKey" || errHeader(err, "x-amz-delete-marker") != "true" || errHeader(err, "x-amz-version-id") != marker {
		t.Fatalf("GET under a marker: %v, delete-marker %q version %q; want NoSuchKey naming %s",
			err, errHeader(err, "x-amz-delete-marker"), errHeader(err, "x-amz-version-id"), marker)
	}
	_, err = b.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bk, Key: key})
	if errHeader(err, "x-amz-delete-marker") != "true" || errHeader(err, "x-amz-version-id") != marker {
		t.Fatalf("HEAD under a marker: %v, delete-marker %q version %q", err, errHeader(err, "x-amz-delete-marker"), errHeader(err, "x-amz-version-id"))
	}
	_, err = b.GetObject(ctx, &s3.GetObjectInput{Bucket: bk, Key: key, VersionId: aws.String(marker)})
	if apiCode(err) != "MethodNotAllowed" || errHeader(err, "x-amz-delete-marker") != "true" {
		t.Fatalf("GET of the marker by id: %v", err)
	}
	_, err = a.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bk, Key: key, VersionId: aws.String(marker)})
	if errHeader(err, "x-amz-delete-marker") != "true" || errHeader(err, "x-amz-version-id") != marker {
		t.Fatalf("HEAD of the marker by id: %v", err)
	}
	tagging := &types.Tagging{TagSet: []types.Tag{{Key: aws.String("m"), Value: aws.String("1")}}}
	if _, err := a.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: bk, Key: key, Tagging: tagging}); apiCode(err) != "NoSuchKey" {
		t.Fatalf("PutObjectTagging under a marker: %v", err)
	}
	if _, err := a.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: bk, Key: key, VersionId: aws.String(marker), Tagging: tagging}); apiCode(err) != "MethodNotAllowed" {
		t.Fatalf("PutObjectTagging of the marker: %v", err)
	}
	// The versions under the marker keep their tags.
	if got := strings.Join(getTags(b, ids[1]), "&"); got != "state=new&x=1" {
		t.Fatalf("tags of the version under the marker %q", got)
	}
}
