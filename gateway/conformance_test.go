package gateway

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// The standard headers S3 stores are returned by GET and HEAD, after a
// PUT, a multipart upload and a copy (kept by COPY, replaced by REPLACE).
func TestSDKStoredHeaders(t *testing.T) {
	h, c, b := newBucketHarness(t, true, "hdrs")
	expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	type want struct{ cc, cd, ce, cl string }
	all := want{"max-age=60", `attachment; filename="a b.txt"`, "gzip", "de-CH"}
	check := func(key string, w want) {
		t.Helper()
		head, get := headAndGet(t, c, b, key)
		for _, got := range []want{
			{aws.ToString(head.CacheControl), aws.ToString(head.ContentDisposition), aws.ToString(head.ContentEncoding), aws.ToString(head.ContentLanguage)},
			{aws.ToString(get.CacheControl), aws.ToString(get.ContentDisposition), aws.ToString(get.ContentEncoding), aws.ToString(get.ContentLanguage)},
		} {
			if got != w {
				t.Errorf("%s: headers %+v, want %+v", key, got, w)
			}
		}
		wantExp := ""
		if w == all {
			wantExp = expires.Format(timeFormatHTTP)
		}
		if got := aws.ToString(head.ExpiresString); got != wantExp {
			t.Errorf("%s: Expires %q, want %q", key, got, wantExp)
		}
	}
	// Over TLS the SDK sends aws-chunked with a trailing checksum: that
	// coding is the request's and must not be stored.
	_, err := c.PutObject(bg, &s3.PutObjectInput{Bucket: b, Key: aws.String("p"), Body: strings.NewReader("data"),
		CacheControl: aws.String(all.cc), ContentDisposition: aws.String(all.cd), ContentEncoding: aws.String(all.ce),
		ContentLanguage: aws.String(all.cl), Expires: aws.Time(expires), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		t.Fatal(err)
	}
	check("p", all)
	_, err = c.PutObject(bg, &s3.PutObjectInput{Bucket: b, Key: aws.String("plain"), Body: strings.NewReader("data"), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		t.Fatal(err)
	}
	check("plain", want{})
	chunked := false
	for _, r := range h.requests() {
		chunked = chunked || strings.Contains(r.Get("Content-Encoding"), "aws-chunked")
	}
	if !chunked {
		t.Error("no request was aws-chunked: the test does not check that the coding is dropped")
	}

	up, err := c.CreateMultipartUpload(bg, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("mp"),
		CacheControl: aws.String(all.cc), ContentDisposition: aws.String(all.cd), ContentEncoding: aws.String(all.ce),
		ContentLanguage: aws.String(all.cl), Expires: aws.Time(expires)})
	if err != nil {
		t.Fatal(err)
	}
	completeOnePart(t, c, b, "mp", up.UploadId)
	check("mp", all)

	if _, err := c.CopyObject(bg, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copy"), CopySource: aws.String("hdrs/p")}); err != nil {
		t.Fatal(err)
	}
	check("copy", all)
	if _, err := c.CopyObject(bg, &s3.CopyObjectInput{Bucket: b, Key: aws.String("p"), CopySource: aws.String("hdrs/p"),
		MetadataDirective: types.MetadataDirectiveReplace, CacheControl: aws.String("no-store")}); err != nil {
		t.Fatal(err)
	}
	check("p", want{cc: "no-store"})
}

// timeFormatHTTP is how S3 (and so the gateway) writes Expires.
const timeFormatHTTP = "Mon, 02 Jan 2006 15:04:05 GMT"

func TestSDKFetchOwnerAndEmptyToken(t *testing.T) {
	h := newHarness(t, false, nil)
	c := h.client()
	h.fake.put("own", "a", "1")
	h.fake.put("own", "b", "2")
	out, err := c.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("own"), FetchOwner: aws.Bool(true)})
	if err != nil || len(out.Contents) != 2 {
		t.Fatalf("fetch-owner: %+v, %v", out, err)
	}
	for _, o := range out.Contents {
		if o.Owner == nil || aws.ToString(o.Owner.ID) == "" || aws.ToString(o.Owner.DisplayName) == "" {
			t.Errorf("%s: owner %+v", aws.ToString(o.Key), o.Owner)
		}
	}
	out, err = c.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("own")})
	if err != nil || out.Contents[0].Owner != nil {
		t.Errorf("owner without fetch-owner: %+v, %v", out.Contents[0].Owner, err)
	}
	// An empty continuation token lists from the start and is echoed.
	_, body := h.do("GET", "/own?list-type=2&continuation-token=&max-keys=1", nil, nil)
	if !strings.Contains(body, "<ContinuationToken></ContinuationToken>") || !strings.Contains(body, "<Key>a</Key>") {
		t.Errorf("empty token: %s", body)
	}
	_, body = h.do("GET", "/own?list-type=2", nil, nil)
	if strings.Contains(body, "ContinuationToken") {
		t.Errorf("no token, yet echoed: %s", body)
	}
	out, err = c.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("own"), ContinuationToken: aws.String(""), MaxKeys: aws.Int32(1)})
	if err != nil || len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "a" {
		t.Errorf("SDK with an empty token: %+v, %v", out, err)
	}
}

// encoding-type=url encodes keys, CommonPrefixes, Prefix, Delimiter and
// StartAfter as S3 does: %20 for a space, %2B for a plus, "/" as is.
func TestListURLEncoding(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a b/c", "a%20b/c"},
		{"a+b", "a%2Bb"},
		{"x=y&z", "x%3Dy%26z"},
		{"ü/日", "%C3%BC/%E6%97%A5"},
		{"A-Z_a.z*0~9", "A-Z_a.z*0%7E9"},
		{"%", "%25"},
		{"\x01\n", "%01%0A"},
	} {
		if got := urlEncodeName(tc.in); got != tc.want {
			t.Errorf("urlEncodeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if back, err := url.PathUnescape(urlEncodeName(tc.in)); err != nil || back != tc.in {
			t.Errorf("%q does not decode back: %q, %v", tc.in, back, err)
		}
	}
	h := newHarness(t, false, nil)
	h.fake.put("enc", "quux ab/xyzzy", "1")
	h.fake.put("enc", "foo+1/bar", "1")
	h.fake.put("enc", "asdf+b", "1")
	_, body := h.do("GET", "/enc?list-type=2&encoding-type=url&delimiter=%20&start-after=a%20", nil, nil)
	for _, want := range []string{"<Delimiter>%20</Delimiter>", "<StartAfter>a%20</StartAfter>", "<Key>asdf%2Bb</Key>", "<Key>foo%2B1/bar</Key>", "<Prefix>quux%20</Prefix>"} {
		if !strings.Contains(body, want) {
			t.Errorf("listing lacks %s:\n%s", want, body)
		}
	}
}

func TestSDKRepeatedCompleteMultipartUpload(t *testing.T) {
	h := newHarness(t, false, nil)
	c := h.client()
	h.fake.put("rep", "seed", "x")
	up, err := c.CreateMultipartUpload(bg, &s3.CreateMultipartUploadInput{Bucket: aws.String("rep"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := c.UploadPart(bg, &s3.UploadPartInput{Bucket: aws.String("rep"), Key: aws.String("k"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("part"))})
	if err != nil {
		t.Fatal(err)
	}
	in := &s3.CompleteMultipartUploadInput{Bucket: aws.String("rep"), Key: aws.String("k"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}}}
	first, err := c.CompleteMultipartUpload(bg, in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.CompleteMultipartUpload(bg, in)
	if err != nil || aws.ToString(again.ETag) != aws.ToString(first.ETag) || aws.ToString(again.Key) != "k" {
		t.Fatalf("repeated completion: %+v, %v; first ETag %s", again, err, aws.ToString(first.ETag))
	}
}

// Re-creating an owned bucket succeeds in us-east-1 and keeps its objects;
// other regions answer BucketAlreadyOwnedByYou, as S3 does.
func TestCreateBucketAgain(t *testing.T) {
	h := newHarness(t, false, nil)
	c := h.client()
	h.fake.put("again", "k", "kept")
	if _, err := c.CreateBucket(bg, &s3.CreateBucketInput{Bucket: aws.String("again")}); err != nil {
		t.Fatalf("us-east-1: %v", err)
	}
	if got, ok := h.fake.data("again", "k"); !ok || got != "kept" {
		t.Errorf("object after re-creation: %q, %v", got, ok)
	}

	eu := newHarness(t, false, func(cfg *Config) { cfg.Region = "eu-west-1" })
	ec := eu.client(func(o *s3.Options) { o.Region = "eu-west-1" })
	eu.fake.put("again", "k", "kept")
	_, err := ec.CreateBucket(bg, &s3.CreateBucketInput{Bucket: aws.String("again"),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraintEuWest1}})
	wantCode(t, "eu-west-1", err, "BucketAlreadyOwnedByYou")
	if got, ok := eu.fake.data("again", "k"); !ok || got != "kept" {
		t.Errorf("object after refused re-creation: %q, %v", got, ok)
	}
}
