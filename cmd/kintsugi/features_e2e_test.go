package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
)

// TestS3FeaturesMultiProcess drives tagging, CORS and the conformance
// fixes with aws-sdk-go-v2 through two gateways of a multi-process
// cluster: what one gateway writes, the other serves (bucket
// configuration within the bucket cache's TTL).
func TestS3FeaturesMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test; run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := proctest.StartCluster(t, testBin, proctest.Options{Gateways: 2})
	a, b := s3Client(c, 0), s3Client(c, 1)
	const bucket = "features"
	mustCreateBucket(t, ctx, a, bucket)
	bk := aws.String(bucket)

	// Tags and standard headers written through one gateway are served by
	// the other.
	_, err := a.PutObject(ctx, &s3.PutObjectInput{Bucket: bk, Key: aws.String("small"), Body: strings.NewReader("small"),
		Tagging: aws.String("a=1&b=two%20words"), CacheControl: aws.String("max-age=7"), ContentLanguage: aws.String("nl")})
	if err != nil {
		t.Fatal(err)
	}
	head, err := b.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bk, Key: aws.String("small")})
	if err != nil || aws.ToInt32(head.TagCount) != 2 || aws.ToString(head.CacheControl) != "max-age=7" || aws.ToString(head.ContentLanguage) != "nl" {
		t.Fatalf("HEAD through the other gateway: %+v, %v", head, err)
	}

	// A multipart object keeps its data and headers when its tags change.
	part1 := genBytes(1, 5<<20)
	up, err := a.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bk, Key: aws.String("mp"),
		Tagging: aws.String("stage=raw"), ContentDisposition: aws.String("attachment")})
	if err != nil {
		t.Fatal(err)
	}
	var parts []types.CompletedPart
	for i, data := range [][]byte{part1, []byte("tail")} {
		p, err := a.UploadPart(ctx, &s3.UploadPartInput{Bucket: bk, Key: aws.String("mp"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(data)})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: p.ETag})
	}
	complete := &s3.CompleteMultipartUploadInput{Bucket: bk, Key: aws.String("mp"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}
	first, err := a.CompleteMultipartUpload(ctx, complete)
	if err != nil {
		t.Fatal(err)
	}
	// The completion's answer was lost: the client asks again, elsewhere.
	again, err := b.CompleteMultipartUpload(ctx, complete)
	if err != nil || aws.ToString(again.ETag) != aws.ToString(first.ETag) {
		t.Fatalf("repeated completion: %+v, %v; first %s", again, err, aws.ToString(first.ETag))
	}
	tags, err := b.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: bk, Key: aws.String("mp")})
	if err != nil || len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Value) != "raw" {
		t.Fatalf("multipart tags: %+v, %v", tags, err)
	}
	if _, err := b.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: bk, Key: aws.String("mp"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("stage"), Value: aws.String("clean")}}}}); err != nil {
		t.Fatal(err)
	}
	whole := append(append([]byte(nil), part1...), "tail"...)
	got, err := getBytes(ctx, a, bucket, "mp")
	if err != nil || sha256.Sum256(got) != sha256.Sum256(whole) {
		t.Fatalf("data after retagging: %d bytes, %v", len(got), err)
	}
	head, err = a.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bk, Key: aws.String("mp")})
	if err != nil || aws.ToString(head.ContentDisposition) != "attachment" || aws.ToInt32(head.TagCount) != 1 ||
		aws.ToString(head.ETag) != aws.ToString(first.ETag) {
		t.Fatalf("HEAD after retagging: %+v, %v; ETag was %s", head, err, aws.ToString(first.ETag))
	}
	// Retagging wrote no new version: the completion asked again still
	// answers the same object.
	again, err = a.CompleteMultipartUpload(ctx, complete)
	if err != nil || aws.ToString(again.ETag) != aws.ToString(first.ETag) {
		t.Fatalf("completion asked again after retagging: %+v, %v", again, err)
	}

	// Bucket tagging and CORS written through gateway 0 reach gateway 1
	// within its bucket cache's TTL.
	if _, err := b.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: bk}); apiCode(err) != "NoSuchTagSet" {
		t.Fatalf("GetBucketTagging before any: %v", err)
	}
	if _, err := a.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: bk, Tagging: &types.Tagging{
		TagSet: []types.Tag{{Key: aws.String("owner"), Value: aws.String("team")}}}}); err != nil {
		t.Fatal(err)
	}
	_, err = a.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: bk, CORSConfiguration: &types.CORSConfiguration{CORSRules: []types.CORSRule{{
		AllowedOrigins: []string{"https://app.test"}, AllowedMethods: []string{"PUT"}, AllowedHeaders: []string{"*"},
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	preflight := func(i int) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodOptions, c.Endpoint(i)+"/"+bucket+"/k", nil)
		req.Header.Set("Origin", "https://app.test")
		req.Header.Set("Access-Control-Request-Method", "PUT")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := preflight(0); s != http.StatusOK {
		t.Fatalf("preflight at the writing gateway: %d", s)
	}
	start := time.Now()
	for preflight(1) != http.StatusOK {
		if time.Since(start) > 5*time.Second {
			t.Fatal("gateway 1 did not see the CORS configuration within 5s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("CORS configuration reached the other gateway in %v", time.Since(start).Round(10*time.Millisecond))
	bt, err := b.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: bk})
	if err != nil || len(bt.TagSet) != 1 || aws.ToString(bt.TagSet[0].Key) != "owner" {
		t.Fatalf("bucket tags through gateway 1: %+v, %v", bt, err)
	}
	if _, err := a.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: bk}); err != nil {
		t.Fatal(err)
	}
	if s := preflight(0); s != http.StatusForbidden {
		t.Fatalf("preflight after DeleteBucketCors: %d", s)
	}

	// Created again by its owner (us-east-1): 200, everything kept.
	if _, err := b.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bk}); err != nil {
		t.Fatalf("CreateBucket again: %v", err)
	}
	if got, err := getBytes(ctx, a, bucket, "small"); err != nil || string(got) != "small" {
		t.Fatalf("object after re-creating the bucket: %q, %v", got, err)
	}

	// Listings: fetch-owner, an empty continuation token, %20.
	if _, err := a.PutObject(ctx, &s3.PutObjectInput{Bucket: bk, Key: aws.String("dir one/x+y"), Body: strings.NewReader("k")}); err != nil {
		t.Fatal(err)
	}
	list, err := b.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: bk, FetchOwner: aws.Bool(true), ContinuationToken: aws.String(""),
		EncodingType: types.EncodingTypeUrl, Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, p := range list.CommonPrefixes {
		prefixes = append(prefixes, aws.ToString(p.Prefix))
	}
	if !slices.Equal(prefixes, []string{"dir%20one/"}) || len(list.Contents) != 2 || list.Contents[0].Owner == nil ||
		aws.ToString(list.Contents[0].Owner.ID) != c.AccessKey || list.ContinuationToken == nil {
		t.Fatalf("listing: prefixes %q, %+v", prefixes, list)
	}

	// An altered signature, of any shape, is SignatureDoesNotMatch.
	pre, err := s3.NewPresignClient(a).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: bk, Key: aws.String("small")})
	if err != nil {
		t.Fatal(err)
	}
	for _, alter := range []func(string) string{
		func(s string) string { return s },
		func(s string) string { return s[:10] },
		func(s string) string { return s + "00" },
		func(s string) string { return "not-hex-" + s },
	} {
		u, _ := url.Parse(pre.URL)
		q := u.Query()
		sig := q.Get("X-Amz-Signature")
		q.Set("X-Amz-Signature", alter(sig))
		u.RawQuery = q.Encode()
		resp, err := http.Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := http.StatusForbidden
		if alter(sig) == sig {
			want = http.StatusOK
		}
		if resp.StatusCode != want || (want == http.StatusForbidden && !strings.Contains(string(body), "<Code>SignatureDoesNotMatch</Code>")) {
			t.Errorf("signature %q: %d %s", alter(sig), resp.StatusCode, body)
		}
	}
}
