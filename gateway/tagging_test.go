package gateway

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func tagSet(kv ...string) []types.Tag {
	var out []types.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

func tagPairs(tags []types.Tag) []string {
	var out []string
	for _, t := range tags {
		out = append(out, aws.ToString(t.Key)+"="+aws.ToString(t.Value))
	}
	return out
}

// newBucketHarness is a harness, its SDK client and a bucket created in it.
func newBucketHarness(t *testing.T, tls bool, bucket string) (*harness, *s3.Client, *string) {
	h := newHarness(t, tls, nil)
	c := h.client()
	if _, err := c.CreateBucket(bg, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	return h, c, aws.String(bucket)
}

// headAndGet answers HEAD and GET of key; the GET's body is closed.
func headAndGet(t *testing.T, c *s3.Client, b *string, key string) (*s3.HeadObjectOutput, *s3.GetObjectOutput) {
	t.Helper()
	head, err := c.HeadObject(bg, &s3.HeadObjectInput{Bucket: b, Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	get, err := c.GetObject(bg, &s3.GetObjectInput{Bucket: b, Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	get.Body.Close()
	return head, get
}

// completeOnePart uploads a one-part body to an upload and completes it.
func completeOnePart(t *testing.T, c *s3.Client, b *string, key string, uploadID *string) {
	t.Helper()
	part, err := c.UploadPart(bg, &s3.UploadPartInput{Bucket: b, Key: aws.String(key), UploadId: uploadID, PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("part"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(bg, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String(key), UploadId: uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}}); err != nil {
		t.Fatal(err)
	}
}

func TestSDKObjectTagging(t *testing.T) {
	h, c, b := newBucketHarness(t, false, "tags")
	getTags := func(key string) []string {
		t.Helper()
		out, err := c.GetObjectTagging(bg, &s3.GetObjectTaggingInput{Bucket: b, Key: aws.String(key)})
		if err != nil {
			t.Fatalf("GetObjectTagging %s: %v", key, err)
		}
		return tagPairs(out.TagSet)
	}
	tagCount := func(key string) int32 {
		t.Helper()
		out, get := headAndGet(t, c, b, key)
		if aws.ToInt32(get.TagCount) != aws.ToInt32(out.TagCount) {
			t.Errorf("GET tag count %d, HEAD %d", aws.ToInt32(get.TagCount), aws.ToInt32(out.TagCount))
		}
		return aws.ToInt32(out.TagCount)
	}

	// x-amz-tagging on PUT, URL-encoded, with a space, a "+" and Unicode.
	_, err := c.PutObject(bg, &s3.PutObjectInput{Bucket: b, Key: aws.String("k"), Body: strings.NewReader("data"),
		Tagging: aws.String("project=blue%20sky&team=a%2Bb&%C3%A9t%C3%A9=ok")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := getTags("k"), []string{"project=blue sky", "team=a+b", "été=ok"}; !slices.Equal(got, want) {
		t.Errorf("tags after PUT = %q, want %q", got, want)
	}
	if n := tagCount("k"); n != 3 {
		t.Errorf("tag count %d, want 3", n)
	}
	// PutObjectTagging replaces the whole set and keeps data and metadata.
	if _, err := c.PutObject(bg, &s3.PutObjectInput{Bucket: b, Key: aws.String("m"), Body: strings.NewReader("meta"),
		ContentType: aws.String("text/x-kept"), Metadata: map[string]string{"color": "red"}, CacheControl: aws.String("max-age=5")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObjectTagging(bg, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("m"),
		Tagging: &types.Tagging{TagSet: tagSet("a", "1", "b", "")}}); err != nil {
		t.Fatal(err)
	}
	if got := getTags("m"); !slices.Equal(got, []string{"a=1", "b="}) {
		t.Errorf("tags after PutObjectTagging = %q", got)
	}
	head, err := c.HeadObject(bg, &s3.HeadObjectInput{Bucket: b, Key: aws.String("m")})
	if err != nil || aws.ToString(head.ContentType) != "text/x-kept" || head.Metadata["color"] != "red" ||
		aws.ToString(head.CacheControl) != "max-age=5" || aws.ToInt32(head.TagCount) != 2 {
		t.Errorf("HEAD after tagging: %+v, %v", head, err)
	}
	if got, _ := h.fake.data("tags", "m"); got != "meta" {
		t.Errorf("data after tagging %q", got)
	}
	if _, err := c.DeleteObjectTagging(bg, &s3.DeleteObjectTaggingInput{Bucket: b, Key: aws.String("m")}); err != nil {
		t.Fatal(err)
	}
	if got := getTags("m"); len(got) != 0 {
		t.Errorf("tags after delete = %q", got)
	}
	if n := tagCount("m"); n != 0 {
		t.Errorf("tag count after delete %d", n)
	}

	// S3's limits, on PutObjectTagging and on x-amz-tagging alike.
	many := func(n int) []string {
		var kv []string
		for i := range n {
			kv = append(kv, fmt.Sprintf("k%d", i), "v")
		}
		return kv
	}
	for _, tc := range []struct {
		name string
		tags []string
		code string
	}{
		{"ten tags", many(10), ""},
		{"eleven tags", many(11), "BadRequest"},
		{"key of 128 characters", []string{strings.Repeat("é", 128), "v"}, ""},
		{"key of 129 characters", []string{strings.Repeat("k", 129), "v"}, "InvalidTag"},
		{"value of 256 characters", []string{"k", strings.Repeat("ü", 256)}, ""},
		{"value of 257 characters", []string{"k", strings.Repeat("v", 257)}, "InvalidTag"},
		{"duplicate keys", []string{"k", "1", "k", "2"}, "InvalidTag"},
		{"empty key", []string{"", "v"}, "InvalidTag"},
		{"allowed punctuation", []string{"a_b.c:d/e=f+g-h@i j", "_.:/=+-@ "}, ""},
		{"key with <", []string{"a<b", "v"}, "InvalidTag"},
		{"value with *", []string{"k", "a*"}, "InvalidTag"},
		{"aws: prefix", []string{"aws:x", "v"}, "InvalidTag"},
	} {
		_, err := c.PutObjectTagging(bg, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("k"),
			Tagging: &types.Tagging{TagSet: tagSet(tc.tags...)}})
		wantCode(t, tc.name, err, tc.code)
		if tc.code != "" {
			continue
		}
		if got := getTags("k"); len(got) != len(tc.tags)/2 || got[0] != tc.tags[0]+"="+tc.tags[1] {
			t.Errorf("%s: stored %q", tc.name, got)
		}
		// The same set as a header.
		var hdr []string
		for i := 0; i < len(tc.tags); i += 2 {
			hdr = append(hdr, escapeTagText(tc.tags[i])+"="+escapeTagText(tc.tags[i+1]))
		}
		_, err = c.PutObject(bg, &s3.PutObjectInput{Bucket: b, Key: aws.String("h"), Body: strings.NewReader("x"), Tagging: aws.String(strings.Join(hdr, "&"))})
		wantCode(t, tc.name+" as header", err, "")
	}
	_, err = c.PutObject(bg, &s3.PutObjectInput{Bucket: b, Key: aws.String("h2"), Body: strings.NewReader("x"), Tagging: aws.String("a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11")})
	wantCode(t, "eleven tags as header", err, "BadRequest")
	if _, ok := h.fake.data("tags", "h2"); ok {
		t.Error("refused PUT stored the object")
	}
	_, err = c.GetObjectTagging(bg, &s3.GetObjectTaggingInput{Bucket: b, Key: aws.String("missing")})
	wantCode(t, "missing key", err, "NoSuchKey")
	_, err = c.PutObjectTagging(bg, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("missing"), Tagging: &types.Tagging{TagSet: tagSet("a", "b")}})
	wantCode(t, "tag a missing key", err, "NoSuchKey")
	resp, body := h.do("PUT", "/tags/k?tagging", nil, strings.NewReader("<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>"))
	if resp.StatusCode != 400 || s3Code(body) != "MalformedXML" {
		t.Errorf("tag without a value: %d %s", resp.StatusCode, body)
	}
	resp, body = h.do("PUT", "/tags/k?tagging", nil, strings.NewReader("<Tagging></Tagging>"))
	if resp.StatusCode != 400 || s3Code(body) != "MalformedXML" {
		t.Errorf("no TagSet: %d %s", resp.StatusCode, body)
	}

	// CopyObject: the source's tags by default, the header's with REPLACE.
	if _, err := c.PutObjectTagging(bg, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("k"), Tagging: &types.Tagging{TagSet: tagSet("src", "1")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CopyObject(bg, &s3.CopyObjectInput{Bucket: b, Key: aws.String("c1"), CopySource: aws.String("tags/k"), Tagging: aws.String("ignored=1")}); err != nil {
		t.Fatal(err)
	}
	if got := getTags("c1"); !slices.Equal(got, []string{"src=1"}) {
		t.Errorf("COPY directive: %q", got)
	}
	if _, err := c.CopyObject(bg, &s3.CopyObjectInput{Bucket: b, Key: aws.String("c2"), CopySource: aws.String("tags/k"),
		TaggingDirective: types.TaggingDirectiveReplace, Tagging: aws.String("dst=2")}); err != nil {
		t.Fatal(err)
	}
	if got := getTags("c2"); !slices.Equal(got, []string{"dst=2"}) {
		t.Errorf("REPLACE directive: %q", got)
	}
	if _, err := c.CopyObject(bg, &s3.CopyObjectInput{Bucket: b, Key: aws.String("c3"), CopySource: aws.String("tags/k"),
		TaggingDirective: types.TaggingDirectiveReplace}); err != nil {
		t.Fatal(err)
	}
	if got := getTags("c3"); len(got) != 0 {
		t.Errorf("REPLACE without tags: %q", got)
	}

	// Multipart initiate carries the tags to the completed object.
	up, err := c.CreateMultipartUpload(bg, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("mp"), Tagging: aws.String("mp=yes")})
	if err != nil {
		t.Fatal(err)
	}
	completeOnePart(t, c, b, "mp", up.UploadId)
	if got := getTags("mp"); !slices.Equal(got, []string{"mp=yes"}) {
		t.Errorf("multipart tags: %q", got)
	}
	_, err = c.CreateMultipartUpload(bg, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("mp2"), Tagging: aws.String("a=1&a=2")})
	wantCode(t, "initiate with duplicate tags", err, "InvalidArgument")
}

func TestSDKBucketTagging(t *testing.T) {
	_, c, b := newBucketHarness(t, false, "btags")
	_, err := c.GetBucketTagging(bg, &s3.GetBucketTaggingInput{Bucket: b})
	wantCode(t, "no tags yet", err, "NoSuchTagSet")
	var kv []string
	for i := range 50 {
		kv = append(kv, fmt.Sprintf("key%02d", i), fmt.Sprint(i))
	}
	if _, err := c.PutBucketTagging(bg, &s3.PutBucketTaggingInput{Bucket: b, Tagging: &types.Tagging{TagSet: tagSet(kv...)}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetBucketTagging(bg, &s3.GetBucketTaggingInput{Bucket: b})
	if err != nil || len(out.TagSet) != 50 || tagPairs(out.TagSet)[49] != "key49=49" {
		t.Fatalf("GetBucketTagging: %q, %v", tagPairs(out.TagSet), err)
	}
	_, err = c.PutBucketTagging(bg, &s3.PutBucketTaggingInput{Bucket: b, Tagging: &types.Tagging{TagSet: tagSet(append(kv, "one", "more")...)}})
	wantCode(t, "51 tags", err, "BadRequest")
	_, err = c.PutBucketTagging(bg, &s3.PutBucketTaggingInput{Bucket: b, Tagging: &types.Tagging{TagSet: tagSet("a", "1", "a", "2")}})
	wantCode(t, "duplicate keys", err, "InvalidTag")
	if out, err := c.GetBucketTagging(bg, &s3.GetBucketTaggingInput{Bucket: b}); err != nil || len(out.TagSet) != 50 {
		t.Errorf("refused puts changed the tags: %d, %v", len(out.TagSet), err)
	}
	if _, err := c.DeleteBucketTagging(bg, &s3.DeleteBucketTaggingInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetBucketTagging(bg, &s3.GetBucketTaggingInput{Bucket: b})
	wantCode(t, "deleted tags", err, "NoSuchTagSet")
	_, err = c.PutBucketTagging(bg, &s3.PutBucketTaggingInput{Bucket: aws.String("nobucket"), Tagging: &types.Tagging{TagSet: tagSet("a", "1")}})
	wantCode(t, "missing bucket", err, "NoSuchBucket")
}

// TestSDKObjectTaggingInPlace: Put/DeleteObjectTagging change the tag set
// and nothing else: no data written, the ETag of a multipart object and
// Last-Modified kept, the tag count right; versionId=null names the
// object of an unversioned bucket, any other id is NoSuchVersion.
func TestSDKObjectTaggingInPlace(t *testing.T) {
	h, c, b := newBucketHarness(t, false, "inplace")
	up, err := c.CreateMultipartUpload(bg, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("mp")})
	if err != nil {
		t.Fatal(err)
	}
	completeOnePart(t, c, b, "mp", up.UploadId)
	before, _ := headAndGet(t, c, b, "mp")
	if !strings.HasSuffix(aws.ToString(before.ETag), `-1"`) {
		t.Fatalf("multipart ETag %s", aws.ToString(before.ETag))
	}
	h.fake.mu.Lock()
	puts := h.fake.puts
	h.fake.mu.Unlock()
	for i, put := range []func() error{
		func() error {
			_, err := c.PutObjectTagging(bg, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("mp"), Tagging: &types.Tagging{TagSet: tagSet("a", "1", "b", "2")}})
			return err
		},
		func() error {
			_, err := c.PutObjectTagging(bg, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("mp"), VersionId: aws.String("null"), Tagging: &types.Tagging{TagSet: tagSet("c", "3")}})
			return err
		},
		func() error {
			_, err := c.DeleteObjectTagging(bg, &s3.DeleteObjectTaggingInput{Bucket: b, Key: aws.String("mp")})
			return err
		},
	} {
		if err := put(); err != nil {
			t.Fatalf("tag update %d: %v", i, err)
		}
		head, _ := headAndGet(t, c, b, "mp")
		if aws.ToString(head.ETag) != aws.ToString(before.ETag) || !aws.ToTime(head.LastModified).Equal(aws.ToTime(before.LastModified)) {
			t.Fatalf("after tag update %d: ETag %s Last-Modified %v, was %s %v", i,
				aws.ToString(head.ETag), head.LastModified, aws.ToString(before.ETag), before.LastModified)
		}
		if want := []int32{2, 1, 0}[i]; aws.ToInt32(head.TagCount) != want {
			t.Fatalf("after tag update %d: tag count %d, want %d", i, aws.ToInt32(head.TagCount), want)
		}
	}
	h.fake.mu.Lock()
	wrote := h.fake.puts - puts
	h.fake.mu.Unlock()
	if wrote != 0 {
		t.Errorf("tag updates wrote the object %d times", wrote)
	}
	_, err = c.PutObjectTagging(bg, &s3.PutObjectTaggingInput{Bucket: b, Key: aws.String("mp"), VersionId: aws.String("01J00000000000000000000000"), Tagging: &types.Tagging{TagSet: tagSet("x", "1")}})
	wantCode(t, "PutObjectTagging of a missing version", err, "NoSuchVersion")
}
