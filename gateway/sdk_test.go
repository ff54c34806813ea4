package gateway

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
)

func TestSDKBuckets(t *testing.T) {
	h := newHarness(t, false, nil)
	c := h.client()

	if _, err := c.CreateBucket(bg, &s3.CreateBucketInput{Bucket: aws.String("alpha")}); err != nil {
		t.Fatal(err)
	}
	// A configuration body is accepted (and consumed).
	_, err := c.CreateBucket(bg, &s3.CreateBucketInput{
		Bucket: aws.String("beta.2"),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraintEuWest1,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Created again by its owner in us-east-1: success (see
	// TestCreateBucketAgain for the other regions).
	if _, err = c.CreateBucket(bg, &s3.CreateBucketInput{Bucket: aws.String("alpha")}); err != nil {
		t.Errorf("create existing: %v", err)
	}
	_, err = c.CreateBucket(bg, &s3.CreateBucketInput{Bucket: aws.String("no_underscores")})
	wantCode(t, "create invalid", err, "InvalidBucketName")

	lb, err := c.ListBuckets(bg, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range lb.Buckets {
		names = append(names, aws.ToString(b.Name))
		info, _ := h.fake.HeadBucket(bg, aws.ToString(b.Name))
		if !aws.ToTime(b.CreationDate).Equal(info.Created) {
			t.Errorf("bucket %s created %v, want %v", *b.Name, b.CreationDate, info.Created)
		}
	}
	if !slices.Equal(names, []string{"alpha", "beta.2"}) {
		t.Errorf("ListBuckets = %q", names)
	}
	if lb.Owner == nil || aws.ToString(lb.Owner.ID) != "kintsugi" {
		t.Errorf("owner = %+v", lb.Owner)
	}

	if _, err := c.HeadBucket(bg, &s3.HeadBucketInput{Bucket: aws.String("alpha")}); err != nil {
		t.Errorf("HeadBucket: %v", err)
	}
	_, err = c.HeadBucket(bg, &s3.HeadBucketInput{Bucket: aws.String("missing")})
	wantCode(t, "head missing", err, "NotFound") // HEAD answers have no body

	loc, err := c.GetBucketLocation(bg, &s3.GetBucketLocationInput{Bucket: aws.String("alpha")})
	if err != nil || loc.LocationConstraint != "" {
		t.Errorf("GetBucketLocation = %q, %v; want empty for us-east-1", loc.LocationConstraint, err)
	}
	_, err = c.GetBucketLocation(bg, &s3.GetBucketLocationInput{Bucket: aws.String("missing")})
	wantCode(t, "location missing", err, "NoSuchBucket")

	acl, err := c.GetBucketAcl(bg, &s3.GetBucketAclInput{Bucket: aws.String("alpha")})
	if err != nil || len(acl.Grants) != 1 || acl.Grants[0].Permission != types.PermissionFullControl ||
		acl.Grants[0].Grantee.Type != types.TypeCanonicalUser || aws.ToString(acl.Grants[0].Grantee.ID) != "kintsugi" {
		t.Errorf("GetBucketAcl = %+v, %v", acl, err)
	}

	h.fake.put("alpha", "k", "v")
	_, err = c.DeleteBucket(bg, &s3.DeleteBucketInput{Bucket: aws.String("alpha")})
	wantCode(t, "delete non-empty", err, "BucketNotEmpty")
	_, err = c.DeleteBucket(bg, &s3.DeleteBucketInput{Bucket: aws.String("missing")})
	wantCode(t, "delete missing", err, "NoSuchBucket")
	if _, err := c.DeleteObject(bg, &s3.DeleteObjectInput{Bucket: aws.String("alpha"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteBucket(bg, &s3.DeleteBucketInput{Bucket: aws.String("alpha")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.fake.HeadBucket(bg, "alpha"); err == nil {
		t.Error("alpha still exists")
	}

	_, err = c.PutBucketVersioning(bg, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String("beta.2"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	})
	wantCode(t, "versioning", err, "NotImplemented")
	_, err = c.CreateMultipartUpload(bg, &s3.CreateMultipartUploadInput{Bucket: aws.String("gamma"), Key: aws.String("k")})
	wantCode(t, "multipart in a missing bucket", err, "NoSuchBucket")
}

// payload makes n deterministic bytes.
func testPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// TestSDKObjects runs the object calls with the SDK's two payload
// encodings: a plain body with a checksum header (checksums only when
// required, over HTTP) and the default aws-chunked body with a trailing
// checksum (over HTTPS).
func TestSDKObjects(t *testing.T) {
	for _, mode := range []struct {
		name    string
		tls     bool
		calc    aws.RequestChecksumCalculation
		chunked bool
	}{
		{"when-required", false, aws.RequestChecksumCalculationWhenRequired, false},
		{"default", true, aws.RequestChecksumCalculationWhenSupported, true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, mode.tls, nil)
			c := h.client(func(o *s3.Options) { o.RequestChecksumCalculation = mode.calc })
			if _, err := c.CreateBucket(bg, &s3.CreateBucketInput{Bucket: aws.String("objs")}); err != nil {
				t.Fatal(err)
			}
			keys := []string{"plain", "dir/sub/file.txt", "a b+c", "x//y/../z", "100%", "ünïcødé/日本", "trailing/"}
			sizes := []int{0, 1, 65536 + 17, 300 << 10}
			for i, key := range keys {
				data := testPayload(sizes[i%len(sizes)])
				out, err := c.PutObject(bg, &s3.PutObjectInput{
					Bucket:      aws.String("objs"),
					Key:         aws.String(key),
					Body:        bytes.NewReader(data),
					ContentType: aws.String("text/x-test"),
					Metadata:    map[string]string{"Color": "blue", "n": fmt.Sprint(i)},
				})
				if err != nil {
					t.Fatalf("PutObject %q: %v", key, err)
				}
				if aws.ToString(out.ETag) != `"`+md5hex(data)+`"` {
					t.Errorf("PutObject %q ETag = %s", key, aws.ToString(out.ETag))
				}
				if got, ok := h.fake.data("objs", key); !ok || got != string(data) {
					t.Fatalf("stored %q: %d bytes, exists %v; want %d bytes", key, len(got), ok, len(data))
				}
				stored, _ := h.fake.StatObject(bg, "objs", key)
				if stored.ContentType != "text/x-test" || stored.UserMeta["color"] != "blue" || stored.UserMeta["n"] != fmt.Sprint(i) {
					t.Errorf("stored info %+v", stored)
				}

				get, err := c.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("objs"), Key: aws.String(key)})
				if err != nil {
					t.Fatalf("GetObject %q: %v", key, err)
				}
				body, err := io.ReadAll(get.Body)
				get.Body.Close()
				if err != nil || !bytes.Equal(body, data) {
					t.Fatalf("GetObject %q: %d bytes, %v", key, len(body), err)
				}
				if aws.ToString(get.ETag) != `"`+md5hex(data)+`"` || aws.ToString(get.ContentType) != "text/x-test" ||
					aws.ToInt64(get.ContentLength) != int64(len(data)) || aws.ToString(get.AcceptRanges) != "bytes" ||
					!aws.ToTime(get.LastModified).Equal(stored.Modified) ||
					get.Metadata["color"] != "blue" || get.Metadata["n"] != fmt.Sprint(i) {
					t.Errorf("GetObject %q headers: %+v", key, get)
				}

				head, err := c.HeadObject(bg, &s3.HeadObjectInput{Bucket: aws.String("objs"), Key: aws.String(key)})
				if err != nil || aws.ToInt64(head.ContentLength) != int64(len(data)) || aws.ToString(head.ETag) != `"`+md5hex(data)+`"` ||
					head.Metadata["color"] != "blue" {
					t.Errorf("HeadObject %q = %+v, %v", key, head, err)
				}
			}

			// Check that the mode really used the encoding it claims to test.
			sawChunked := false
			for _, hdr := range h.requests() {
				if strings.HasPrefix(hdr.Get("X-Amz-Content-Sha256"), "STREAMING-") && hdr.Get("X-Amz-Trailer") != "" {
					sawChunked = true
				}
			}
			if sawChunked != mode.chunked {
				t.Errorf("aws-chunked with trailer seen = %v, want %v", sawChunked, mode.chunked)
			}

			// Ranges.
			data := testPayload(300 << 10)
			if _, err := c.PutObject(bg, &s3.PutObjectInput{Bucket: aws.String("objs"), Key: aws.String("big"), Body: bytes.NewReader(data)}); err != nil {
				t.Fatal(err)
			}
			for _, r := range []struct {
				hdr      string
				off, end int // inclusive end
			}{
				{"bytes=0-0", 0, 0},
				{"bytes=100-199", 100, 199},
				{"bytes=307000-", 307000, len(data) - 1},
				{"bytes=-10", len(data) - 10, len(data) - 1},
				{"bytes=1000-999999999", 1000, len(data) - 1},
			} {
				get, err := c.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("objs"), Key: aws.String("big"), Range: aws.String(r.hdr)})
				if err != nil {
					t.Fatalf("range %s: %v", r.hdr, err)
				}
				body, err := io.ReadAll(get.Body)
				get.Body.Close()
				wantCR := fmt.Sprintf("bytes %d-%d/%d", r.off, r.end, len(data))
				if err != nil || !bytes.Equal(body, data[r.off:r.end+1]) || aws.ToString(get.ContentRange) != wantCR {
					t.Errorf("range %s: %d bytes, Content-Range %q, %v; want %s", r.hdr, len(body), aws.ToString(get.ContentRange), err, wantCR)
				}
			}
			_, err := c.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("objs"), Key: aws.String("big"), Range: aws.String("bytes=307200-")})
			wantCode(t, "range past end", err, "InvalidRange")

			// Conditionals.
			_, err = c.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("objs"), Key: aws.String("big"), IfMatch: aws.String(`"nope"`)})
			wantCode(t, "if-match", err, "PreconditionFailed")
			_, err = c.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("objs"), Key: aws.String("big"),
				IfModifiedSince: aws.Time(time.Now().Add(time.Hour))})
			wantCode(t, "if-modified-since", err, "NotModified")

			// Errors and deletes.
			_, err = c.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("objs"), Key: aws.String("missing")})
			wantCode(t, "get missing", err, "NoSuchKey")
			_, err = c.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("nobucket"), Key: aws.String("k")})
			wantCode(t, "get missing bucket", err, "NoSuchBucket")
			_, err = c.HeadObject(bg, &s3.HeadObjectInput{Bucket: aws.String("objs"), Key: aws.String("missing")})
			wantCode(t, "head missing", err, "NotFound")
			_, err = c.PutObject(bg, &s3.PutObjectInput{Bucket: aws.String("nobucket"), Key: aws.String("k"), Body: strings.NewReader("x")})
			wantCode(t, "put missing bucket", err, "NoSuchBucket")
			for _, key := range append(keys, "big", "never-existed") {
				if _, err := c.DeleteObject(bg, &s3.DeleteObjectInput{Bucket: aws.String("objs"), Key: aws.String(key)}); err != nil {
					t.Errorf("DeleteObject %q: %v", key, err)
				}
			}
			if lr, _ := h.fake.ListObjects(bg, "objs", objects.ListOptions{}); len(lr.Objects) != 0 {
				t.Errorf("objects left: %+v", lr.Objects)
			}
			_, err = c.DeleteObject(bg, &s3.DeleteObjectInput{Bucket: aws.String("nobucket"), Key: aws.String("k")})
			wantCode(t, "delete in missing bucket", err, "NoSuchBucket")
		})
	}
}

func TestSDKLimitsAndFailures(t *testing.T) {
	h := newHarness(t, false, func(c *Config) { c.MaxObjectSize = 100 })
	c := h.client(func(o *s3.Options) { o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired })
	h.fake.put("lim", "exists", "old")
	put := func(key string, size int, meta map[string]string) error {
		_, err := c.PutObject(bg, &s3.PutObjectInput{Bucket: aws.String("lim"), Key: aws.String(key),
			Body: bytes.NewReader(testPayload(size)), Metadata: meta})
		return err
	}
	if err := put("max", 100, nil); err != nil {
		t.Errorf("100-byte put: %v", err)
	}
	wantCode(t, "too large", put("big", 101, nil), "EntityTooLarge")
	wantCode(t, "meta too large", put("meta", 1, map[string]string{"a": strings.Repeat("x", 2048)}), "MetadataTooLarge")
	if err := put("meta-ok", 1, map[string]string{"a": strings.Repeat("x", 2047)}); err != nil {
		t.Errorf("2048 bytes of metadata: %v", err)
	}
	wantCode(t, "key too long", put(strings.Repeat("k", 1025), 1, nil), "KeyTooLongError")
	wantCode(t, "control key", put("bell\a", 1, nil), "InvalidArgument")
	_, err := c.CopyObject(bg, &s3.CopyObjectInput{Bucket: aws.String("lim"), Key: aws.String("copy"), CopySource: aws.String("lim/missing")})
	wantCode(t, "copy of a missing object", err, "NoSuchKey")
	_, err = c.CopyObject(bg, &s3.CopyObjectInput{Bucket: aws.String("lim"), Key: aws.String("exists"), CopySource: aws.String("lim/exists")})
	wantCode(t, "copy onto itself", err, "InvalidRequest")
	_, err = c.PutObjectTagging(bg, &s3.PutObjectTaggingInput{Bucket: aws.String("lim"), Key: aws.String("exists"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("a"), Value: aws.String(strings.Repeat("v", 257))}}}})
	wantCode(t, "tag value too long", err, "InvalidTag")
	if got, _ := h.fake.data("lim", "exists"); got != "old" {
		t.Errorf("object changed by refused calls: %q", got)
	}
	for _, key := range []string{"big", "meta", "copy"} {
		if _, ok := h.fake.data("lim", key); ok {
			t.Errorf("refused put of %q created it", key)
		}
	}

	h.fake.putErr = objects.ErrQuorum
	wantCode(t, "quorum", put("q", 1, nil), "ServiceUnavailable")
	h.fake.putErr = nil

	h.fake.openErr = fmt.Errorf("disk on fire")
	_, err = c.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("lim"), Key: aws.String("exists")})
	wantCode(t, "internal", err, "InternalError")
	h.fake.openErr = nil
}

// A GET whose Backend fails after the response started must end in a
// client error, never in a short body that looks complete.
func TestSDKGetFailsMidStream(t *testing.T) {
	h := newHarness(t, false, nil)
	c := h.client()
	data := testPayload(200 << 10)
	h.fake.put("mid", "obj", string(data))

	h.fake.failAfter = 70 << 10
	get, err := c.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("mid"), Key: aws.String("obj")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	body, err := io.ReadAll(get.Body)
	get.Body.Close()
	if err == nil {
		t.Fatalf("read %d bytes without error, want a broken body", len(body))
	}
	if !bytes.Equal(body, data[:len(body)]) || len(body) >= len(data) {
		t.Errorf("got %d bytes before the error, want a correct prefix", len(body))
	}

	// Failing before the first byte still gets a proper S3 error.
	h.fake.failAfter = 0
	_, err = c.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("mid"), Key: aws.String("obj")})
	wantCode(t, "fail before first byte", err, "ServiceUnavailable")
	h.fake.failAfter = -1

	if !strings.Contains(h.logs.String(), `"aborted":true`) {
		t.Errorf("aborted request not logged:\n%s", h.logs.String())
	}
}

func TestSDKDeleteObjects(t *testing.T) {
	h := newHarness(t, false, nil)
	c := h.client()
	for _, k := range []string{"a", "b", "c"} {
		h.fake.put("multi", k, k)
	}
	out, err := c.DeleteObjects(bg, &s3.DeleteObjectsInput{
		Bucket: aws.String("multi"),
		Delete: &types.Delete{Objects: []types.ObjectIdentifier{
			{Key: aws.String("a")}, {Key: aws.String("missing")}, {Key: aws.String(strings.Repeat("k", 1025))},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, d := range out.Deleted {
		deleted = append(deleted, aws.ToString(d.Key))
	}
	if !slices.Equal(deleted, []string{"a", "missing"}) {
		t.Errorf("Deleted = %q", deleted)
	}
	if len(out.Errors) != 1 || aws.ToString(out.Errors[0].Code) != "KeyTooLongError" {
		t.Errorf("Errors = %+v", out.Errors)
	}
	out, err = c.DeleteObjects(bg, &s3.DeleteObjectsInput{
		Bucket: aws.String("multi"),
		Delete: &types.Delete{Quiet: aws.Bool(true), Objects: []types.ObjectIdentifier{{Key: aws.String("b")}}},
	})
	if err != nil || len(out.Deleted) != 0 || len(out.Errors) != 0 {
		t.Errorf("quiet delete = %+v, %v", out, err)
	}
	if _, ok := h.fake.data("multi", "c"); !ok {
		t.Error("c was deleted")
	}
	for _, k := range []string{"a", "b"} {
		if _, ok := h.fake.data("multi", k); ok {
			t.Errorf("%s not deleted", k)
		}
	}
	_, err = c.DeleteObjects(bg, &s3.DeleteObjectsInput{
		Bucket: aws.String("nobucket"),
		Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("b")}}},
	})
	wantCode(t, "missing bucket", err, "NoSuchBucket")
}

func TestSDKListObjects(t *testing.T) {
	h := newHarness(t, false, nil)
	c := h.client()
	keys := []string{
		"a.txt", "b/1", "b/2", "b/c/3", "c d/e f", "c+d", "d/", "z", "ünï/1", "日本/語",
	}
	for _, k := range keys {
		h.fake.put("list", k, "data:"+k)
	}

	// Everything, one page.
	out, err := c.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("list")})
	if err != nil {
		t.Fatal(err)
	}
	if got := v2Keys(out); !slices.Equal(got, keys) || aws.ToInt32(out.KeyCount) != int32(len(keys)) || aws.ToBool(out.IsTruncated) {
		t.Errorf("list all = %q, KeyCount %d, truncated %v", got, aws.ToInt32(out.KeyCount), aws.ToBool(out.IsTruncated))
	}
	o := out.Contents[0]
	info, _ := h.fake.StatObject(bg, "list", "a.txt")
	if aws.ToString(o.ETag) != `"`+info.ETag+`"` || aws.ToInt64(o.Size) != info.Size ||
		!aws.ToTime(o.LastModified).Equal(info.Modified) || o.StorageClass != types.ObjectStorageClassStandard {
		t.Errorf("entry = %+v, want %+v", o, info)
	}

	// Delimiter.
	out, err = c.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("list"), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v2Keys(out), []string{"a.txt", "c+d", "z"}; !slices.Equal(got, want) {
		t.Errorf("delimiter keys = %q, want %q", got, want)
	}
	if got, want := v2Prefixes(out), []string{"b/", "c d/", "d/", "ünï/", "日本/"}; !slices.Equal(got, want) {
		t.Errorf("delimiter prefixes = %q, want %q", got, want)
	}
	out, err = c.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("list"), Prefix: aws.String("b/"), Delimiter: aws.String("/")})
	if err != nil || !slices.Equal(v2Keys(out), []string{"b/1", "b/2"}) || !slices.Equal(v2Prefixes(out), []string{"b/c/"}) ||
		aws.ToString(out.Prefix) != "b/" || aws.ToString(out.Delimiter) != "/" {
		t.Errorf("prefix b/ = %q %q, %v", v2Keys(out), v2Prefixes(out), err)
	}

	// Pagination with the SDK paginator, with and without a delimiter.
	for _, delim := range []string{"", "/"} {
		var gotKeys, gotPrefixes []string
		pages := 0
		in := &s3.ListObjectsV2Input{Bucket: aws.String("list"), MaxKeys: aws.Int32(3)}
		if delim != "" {
			in.Delimiter = aws.String(delim)
		}
		p := s3.NewListObjectsV2Paginator(c, in)
		for p.HasMorePages() {
			page, err := p.NextPage(bg)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if n := len(page.Contents) + len(page.CommonPrefixes); n > 3 || int32(n) != aws.ToInt32(page.KeyCount) {
				t.Errorf("page of %d entries, KeyCount %d", n, aws.ToInt32(page.KeyCount))
			}
			gotKeys = append(gotKeys, v2Keys(page)...)
			gotPrefixes = append(gotPrefixes, v2Prefixes(page)...)
		}
		wantKeys, wantPrefixes, wantPages := keys, []string(nil), 4
		if delim != "" {
			wantKeys, wantPrefixes, wantPages = []string{"a.txt", "c+d", "z"}, []string{"b/", "c d/", "d/", "ünï/", "日本/"}, 3
		}
		if !slices.Equal(gotKeys, wantKeys) || !slices.Equal(gotPrefixes, wantPrefixes) || pages != wantPages {
			t.Errorf("delimiter %q: paginated %q %q in %d pages; want %q %q in %d", delim, gotKeys, gotPrefixes, pages, wantKeys, wantPrefixes, wantPages)
		}
	}

	// start-after.
	out, err = c.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("list"), StartAfter: aws.String("c+d"), MaxKeys: aws.Int32(2)})
	if err != nil || !slices.Equal(v2Keys(out), []string{"d/", "z"}) || aws.ToString(out.StartAfter) != "c+d" || !aws.ToBool(out.IsTruncated) {
		t.Errorf("start-after = %q, %+v, %v", v2Keys(out), out, err)
	}

	// encoding-type=url: names come back percent-encoded, a space as %20.
	out, err = c.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("list"), EncodingType: types.EncodingTypeUrl,
		Prefix: aws.String("c "), Delimiter: aws.String("/")})
	if err != nil {
		t.Fatal(err)
	}
	if got := v2Prefixes(out); !slices.Equal(got, []string{"c%20d/"}) || aws.ToString(out.Prefix) != "c%20" || out.EncodingType != types.EncodingTypeUrl {
		t.Errorf("url-encoded prefixes %q, Prefix %q, EncodingType %q", got, aws.ToString(out.Prefix), out.EncodingType)
	}
	out, err = c.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("list"), EncodingType: types.EncodingTypeUrl})
	if err != nil {
		t.Fatal(err)
	}
	var decoded []string
	for _, k := range v2Keys(out) {
		d, err := url.PathUnescape(k) // keeps "+": a space must come as %20
		if err != nil {
			t.Fatalf("key %q: %v", k, err)
		}
		decoded = append(decoded, d)
	}
	if raw := v2Keys(out); !slices.Equal(decoded, keys) || raw[4] != "c%20d/e%20f" || raw[5] != "c%2Bd" || raw[8] != "%C3%BCn%C3%AF/1" {
		t.Errorf("url-encoded keys %q decode to %q", raw, decoded)
	}

	// max-keys=0, bad token, bad encoding, missing bucket.
	out, err = c.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("list"), MaxKeys: aws.Int32(0)})
	if err != nil || len(out.Contents) != 0 || aws.ToBool(out.IsTruncated) || aws.ToInt32(out.MaxKeys) != 0 {
		t.Errorf("max-keys 0 = %+v, %v", out, err)
	}
	_, err = c.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("list"), ContinuationToken: aws.String("!!!")})
	wantCode(t, "bad token", err, "InvalidArgument")
	_, err = c.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("list"), EncodingType: "base64"})
	wantCode(t, "bad encoding", err, "InvalidArgument")
	_, err = c.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("nobucket")})
	wantCode(t, "missing bucket", err, "NoSuchBucket")
	_, err = c.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("nobucket"), MaxKeys: aws.Int32(0)})
	wantCode(t, "missing bucket, max-keys 0", err, "NoSuchBucket")

	// Version 1: marker, NextMarker only with a delimiter.
	v1, err := c.ListObjects(bg, &s3.ListObjectsInput{Bucket: aws.String("list"), Marker: aws.String("b/c/3"), MaxKeys: aws.Int32(2)})
	if err != nil || !slices.Equal(v1Keys(v1), []string{"c d/e f", "c+d"}) || !aws.ToBool(v1.IsTruncated) ||
		v1.NextMarker != nil || aws.ToString(v1.Marker) != "b/c/3" {
		t.Errorf("v1 marker = %q, %+v, %v", v1Keys(v1), v1, err)
	}
	var all []string
	marker := ""
	for range 20 {
		v1, err = c.ListObjects(bg, &s3.ListObjectsInput{Bucket: aws.String("list"), Delimiter: aws.String("/"),
			Marker: aws.String(marker), MaxKeys: aws.Int32(2)})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, v1Keys(v1)...)
		for _, p := range v1.CommonPrefixes {
			all = append(all, aws.ToString(p.Prefix))
		}
		if !aws.ToBool(v1.IsTruncated) {
			break
		}
		marker = aws.ToString(v1.NextMarker)
		if marker == "" {
			t.Fatal("truncated v1 page with a delimiter has no NextMarker")
		}
	}
	slices.Sort(all)
	if want := []string{"a.txt", "b/", "c d/", "c+d", "d/", "z", "ünï/", "日本/"}; !slices.Equal(all, want) {
		t.Errorf("v1 paginated = %q, want %q", all, want)
	}
	v1, err = c.ListObjects(bg, &s3.ListObjectsInput{Bucket: aws.String("list"), Prefix: aws.String("c d/"), EncodingType: types.EncodingTypeUrl})
	if err != nil || !slices.Equal(v1Keys(v1), []string{"c%20d/e%20f"}) || aws.ToString(v1.Prefix) != "c%20d/" {
		t.Errorf("v1 url = %q, prefix %q, %v", v1Keys(v1), aws.ToString(v1.Prefix), err)
	}
}

func v2Keys(out *s3.ListObjectsV2Output) []string {
	var ks []string
	for _, o := range out.Contents {
		ks = append(ks, aws.ToString(o.Key))
	}
	return ks
}

func v2Prefixes(out *s3.ListObjectsV2Output) []string {
	var ps []string
	for _, p := range out.CommonPrefixes {
		ps = append(ps, aws.ToString(p.Prefix))
	}
	return ps
}

func v1Keys(out *s3.ListObjectsOutput) []string {
	var ks []string
	for _, o := range out.Contents {
		ks = append(ks, aws.ToString(o.Key))
	}
	return ks
}
