package gateway

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/kintsugi-store/kintsugi/gateway/objects"
)

func multipartETag(parts ...[]byte) string {
	h := md5.New()
	for _, p := range parts {
		s := md5.Sum(p)
		h.Write(s[:])
	}
	return `"` + hex.EncodeToString(h.Sum(nil)) + "-" + string(rune('0'+len(parts))) + `"`
}

func TestSDKMultipart(t *testing.T) {
	h := newAuthHarness(t, true)
	c := h.client()
	if _, err := c.CreateBucket(bg, &s3.CreateBucketInput{Bucket: aws.String("mpu")}); err != nil {
		t.Fatal(err)
	}
	up, err := c.CreateMultipartUpload(bg, &s3.CreateMultipartUploadInput{
		Bucket: aws.String("mpu"), Key: aws.String("dir/big file"), ContentType: aws.String("video/x-test"),
		Metadata: map[string]string{"origin": "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := up.UploadId
	p1, p2 := testPayload(objects.MinPartSize), testPayload(1234)
	var etags []string
	for i, data := range [][]byte{p1, p2} {
		out, err := c.UploadPart(bg, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("dir/big file"), UploadId: id,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(data), ChecksumAlgorithm: types.ChecksumAlgorithmSha256})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", i+1, err)
		}
		sum := sha256.Sum256(data)
		if aws.ToString(out.ETag) != `"`+md5hex(data)+`"` || aws.ToString(out.ChecksumSHA256) != base64.StdEncoding.EncodeToString(sum[:]) {
			t.Fatalf("UploadPart %d: ETag %s, sha256 %s", i+1, aws.ToString(out.ETag), aws.ToString(out.ChecksumSHA256))
		}
		etags = append(etags, aws.ToString(out.ETag))
	}
	parts, err := c.ListParts(bg, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("dir/big file"), UploadId: id, MaxParts: aws.Int32(1)})
	if err != nil || len(parts.Parts) != 1 || aws.ToString(parts.Parts[0].ETag) != etags[0] || !aws.ToBool(parts.IsTruncated) ||
		aws.ToString(parts.NextPartNumberMarker) != "1" || aws.ToInt64(parts.Parts[0].Size) != int64(len(p1)) {
		t.Fatalf("ListParts: %+v, %v", parts, err)
	}
	ups, err := c.ListMultipartUploads(bg, &s3.ListMultipartUploadsInput{Bucket: aws.String("mpu")})
	if err != nil || len(ups.Uploads) != 1 || aws.ToString(ups.Uploads[0].UploadId) != aws.ToString(id) || aws.ToString(ups.Uploads[0].Key) != "dir/big file" {
		t.Fatalf("ListMultipartUploads: %+v, %v", ups, err)
	}

	complete := func(parts ...types.CompletedPart) error {
		_, err := c.CompleteMultipartUpload(bg, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("dir/big file"),
			UploadId: id, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
		return err
	}
	part := func(n int32, etag string) types.CompletedPart {
		return types.CompletedPart{PartNumber: aws.Int32(n), ETag: aws.String(etag)}
	}
	wantCode(t, "order", complete(part(2, etags[1]), part(1, etags[0])), "InvalidPartOrder")
	wantCode(t, "wrong etag", complete(part(1, etags[1])), "InvalidPart")
	wantCode(t, "missing part", complete(part(2, etags[1]), part(3, etags[1])), "InvalidPart")
	p3, err := c.UploadPart(bg, &s3.UploadPartInput{Bucket: aws.String("mpu"), Key: aws.String("dir/big file"), UploadId: id,
		PartNumber: aws.Int32(3), Body: strings.NewReader("tail")})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "small part before the last", complete(part(2, etags[1]), part(3, aws.ToString(p3.ETag))), "EntityTooSmall")
	_, err = c.CompleteMultipartUpload(bg, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("dir/big file"),
		UploadId: aws.String("nope"), MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{part(1, etags[0])}}})
	wantCode(t, "no such upload", err, "NoSuchUpload")

	done, err := c.CompleteMultipartUpload(bg, &s3.CompleteMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("dir/big file"),
		UploadId: id, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{part(1, etags[0]), part(2, etags[1])}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := multipartETag(p1, p2); aws.ToString(done.ETag) != want || aws.ToString(done.Key) != "dir/big file" ||
		!strings.HasSuffix(aws.ToString(done.Location), "/mpu/dir/big%20file") {
		t.Fatalf("Complete: ETag %s (want %s), key %s, location %s", aws.ToString(done.ETag), want, aws.ToString(done.Key), aws.ToString(done.Location))
	}

	whole := append(append([]byte(nil), p1...), p2...)
	get, err := c.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("mpu"), Key: aws.String("dir/big file")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if !bytes.Equal(got, whole) || aws.ToString(get.ContentType) != "video/x-test" || get.Metadata["origin"] != "test" {
		t.Fatalf("GetObject: %d bytes, type %s, meta %v", len(got), aws.ToString(get.ContentType), get.Metadata)
	}
	pn, err := c.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("mpu"), Key: aws.String("dir/big file"), PartNumber: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(pn.Body)
	pn.Body.Close()
	if !bytes.Equal(got, p2) || aws.ToInt32(pn.PartsCount) != 2 || aws.ToString(pn.ContentRange) != "bytes 5242880-5244113/5244114" {
		t.Fatalf("GetObject part 2: %d bytes, parts %d, range %s", len(got), aws.ToInt32(pn.PartsCount), aws.ToString(pn.ContentRange))
	}
	_, err = c.HeadObject(bg, &s3.HeadObjectInput{Bucket: aws.String("mpu"), Key: aws.String("dir/big file"), PartNumber: aws.Int32(3)})
	if httpStatusOf(err) != 416 {
		t.Fatalf("HEAD part 3: %v", err)
	}

	// Abort.
	up2, err := c.CreateMultipartUpload(bg, &s3.CreateMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("k2")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AbortMultipartUpload(bg, &s3.AbortMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("k2"), UploadId: up2.UploadId}); err != nil {
		t.Fatal(err)
	}
	_, err = c.AbortMultipartUpload(bg, &s3.AbortMultipartUploadInput{Bucket: aws.String("mpu"), Key: aws.String("k2"), UploadId: up2.UploadId})
	wantCode(t, "abort twice", err, "NoSuchUpload")
	_, err = c.ListParts(bg, &s3.ListPartsInput{Bucket: aws.String("mpu"), Key: aws.String("k2"), UploadId: up2.UploadId})
	wantCode(t, "list aborted", err, "NoSuchUpload")
}

func httpStatusOf(err error) int {
	var re interface{ HTTPStatusCode() int }
	if err != nil && errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func TestSDKCopy(t *testing.T) {
	h := newAuthHarness(t, false)
	c := h.client(func(o *s3.Options) { o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired })
	for _, b := range []string{"src", "dst"} {
		if _, err := c.CreateBucket(bg, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	data := testPayload(300 << 10)
	sum := sha256.Sum256(data)
	if _, err := c.PutObject(bg, &s3.PutObjectInput{Bucket: aws.String("src"), Key: aws.String("a/ü b"), Body: bytes.NewReader(data),
		ContentType: aws.String("text/x-src"), Metadata: map[string]string{"k": "v"},
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:]))}); err != nil {
		t.Fatal(err)
	}
	// COPY keeps the metadata; the source name is URL-encoded.
	out, err := c.CopyObject(bg, &s3.CopyObjectInput{Bucket: aws.String("dst"), Key: aws.String("copy"), CopySource: aws.String("src/a/%C3%BC%20b")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.CopyObjectResult.ETag) != `"`+md5hex(data)+`"` || aws.ToString(out.CopyObjectResult.ChecksumSHA256) == "" {
		t.Fatalf("CopyObject: %+v", out.CopyObjectResult)
	}
	head, err := c.HeadObject(bg, &s3.HeadObjectInput{Bucket: aws.String("dst"), Key: aws.String("copy"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil || aws.ToString(head.ContentType) != "text/x-src" || head.Metadata["k"] != "v" || aws.ToInt64(head.ContentLength) != int64(len(data)) ||
		aws.ToString(head.ChecksumSHA256) != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("HeadObject of the copy: %+v, %v", head, err)
	}
	if got, _ := h.fake.data("dst", "copy"); got != string(data) {
		t.Fatal("copy differs from its source")
	}
	// REPLACE takes the request's metadata, also onto the object itself.
	if _, err := c.CopyObject(bg, &s3.CopyObjectInput{Bucket: aws.String("src"), Key: aws.String("a/ü b"), CopySource: aws.String("src/a/%C3%BC%20b"),
		MetadataDirective: types.MetadataDirectiveReplace, ContentType: aws.String("text/x-new"), Metadata: map[string]string{"n": "1"}}); err != nil {
		t.Fatal(err)
	}
	head, err = c.HeadObject(bg, &s3.HeadObjectInput{Bucket: aws.String("src"), Key: aws.String("a/ü b")})
	if err != nil || aws.ToString(head.ContentType) != "text/x-new" || head.Metadata["n"] != "1" || head.Metadata["k"] != "" {
		t.Fatalf("after REPLACE: %+v, %v", head, err)
	}
	_, err = c.CopyObject(bg, &s3.CopyObjectInput{Bucket: aws.String("dst"), Key: aws.String("c2"), CopySource: aws.String("src/a/%C3%BC%20b"),
		CopySourceIfMatch: aws.String(`"0000"`)})
	wantCode(t, "copy-source-if-match", err, "PreconditionFailed")
	if _, ok := h.fake.data("dst", "c2"); ok {
		t.Fatal("refused copy created its destination")
	}

	// UploadPartCopy with ranges builds an object from pieces of another.
	up, err := c.CreateMultipartUpload(bg, &s3.CreateMultipartUploadInput{Bucket: aws.String("dst"), Key: aws.String("pieces")})
	if err != nil {
		t.Fatal(err)
	}
	big := testPayload(objects.MinPartSize + 100)
	h.fake.put("src", "big", string(big))
	var parts []types.CompletedPart
	for i, rng := range []string{"bytes=0-5242879", "bytes=5242880-5242979"} {
		out, err := c.UploadPartCopy(bg, &s3.UploadPartCopyInput{Bucket: aws.String("dst"), Key: aws.String("pieces"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), CopySource: aws.String("/src/big"), CopySourceRange: aws.String(rng)})
		if err != nil {
			t.Fatalf("UploadPartCopy %s: %v", rng, err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.CopyPartResult.ETag})
	}
	for _, rng := range []string{"bytes=0-5242980", "bytes=5-", "bytes=9-3"} {
		_, err := c.UploadPartCopy(bg, &s3.UploadPartCopyInput{Bucket: aws.String("dst"), Key: aws.String("pieces"), UploadId: up.UploadId,
			PartNumber: aws.Int32(3), CopySource: aws.String("src/big"), CopySourceRange: aws.String(rng)})
		want := "InvalidArgument"
		if rng == "bytes=0-5242980" {
			want = "InvalidRange"
		}
		wantCode(t, "copy range "+rng, err, want)
	}
	if _, err := c.CompleteMultipartUpload(bg, &s3.CompleteMultipartUploadInput{Bucket: aws.String("dst"), Key: aws.String("pieces"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.fake.data("dst", "pieces"); got != string(big) {
		t.Fatalf("object from copied parts: %d bytes, want %d", len(got), len(big))
	}
}

// Checksums sent as headers or as aws-chunked trailers are stored and come
// back, checked by the SDK, when asked for.
func TestSDKChecksums(t *testing.T) {
	for _, mode := range []struct {
		name string
		tls  bool
		calc aws.RequestChecksumCalculation
	}{
		{"header", false, aws.RequestChecksumCalculationWhenRequired},
		{"trailer", true, aws.RequestChecksumCalculationWhenSupported},
	} {
		t.Run(mode.name, func(t *testing.T) {
			h := newAuthHarness(t, mode.tls)
			c := h.client(func(o *s3.Options) { o.RequestChecksumCalculation = mode.calc })
			if _, err := c.CreateBucket(bg, &s3.CreateBucketInput{Bucket: aws.String("sums")}); err != nil {
				t.Fatal(err)
			}
			data := testPayload(70 << 10)
			for _, alg := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256} {
				key := "k-" + string(alg)
				in := &s3.PutObjectInput{Bucket: aws.String("sums"), Key: aws.String(key), Body: bytes.NewReader(data), ChecksumAlgorithm: alg}
				if _, err := c.PutObject(bg, in); err != nil {
					t.Fatalf("%s: %v", alg, err)
				}
				get, err := c.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("sums"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(get.Body)
				get.Body.Close()
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("%s: GET %d bytes, %v", alg, len(got), err)
				}
				stored := h.fake.object2("sums", key).Checksums[strings.ToLower(string(alg))]
				var echoed string
				switch alg {
				case types.ChecksumAlgorithmCrc32:
					echoed = aws.ToString(get.ChecksumCRC32)
				case types.ChecksumAlgorithmCrc32c:
					echoed = aws.ToString(get.ChecksumCRC32C)
				case types.ChecksumAlgorithmSha1:
					echoed = aws.ToString(get.ChecksumSHA1)
				case types.ChecksumAlgorithmSha256:
					echoed = aws.ToString(get.ChecksumSHA256)
				}
				if stored == "" || echoed != stored {
					t.Errorf("%s: stored %q, returned %q", alg, stored, echoed)
				}
			}
			// Without checksum mode, none is returned.
			head, err := c.HeadObject(bg, &s3.HeadObjectInput{Bucket: aws.String("sums"), Key: aws.String("k-SHA256")})
			if err != nil || head.ChecksumSHA256 != nil {
				t.Errorf("HEAD without checksum mode: %v, %v", head.ChecksumSHA256, err)
			}
			// A wrong checksum header fails and stores nothing.
			_, err = c.PutObject(bg, &s3.PutObjectInput{Bucket: aws.String("sums"), Key: aws.String("bad"), Body: bytes.NewReader(data),
				ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(make([]byte, 32)))})
			wantCode(t, "wrong sha256", err, "BadDigest")
			if _, ok := h.fake.data("sums", "bad"); ok {
				t.Error("object with a bad checksum was stored")
			}
		})
	}
}

// object2 returns the stored description of an object.
func (f *fakeBackend) object2(bucket, key string) objects.ObjectInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, _ := f.object("fake.object2", bucket, key)
	return o.info
}

// FuzzCompleteMultipartUpload feeds arbitrary documents to the parser:
// it must never panic, and what it accepts has 1..10000 parts with valid
// numbers and unquoted ETags.
func FuzzCompleteMultipartUpload(f *testing.F) {
	f.Add([]byte(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"abc"</ETag></Part></CompleteMultipartUpload>`))
	f.Add([]byte(`<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>&quot;x&quot;</ETag><PartNumber>10000</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part></CompleteMultipartUpload>`))
	f.Add([]byte(`<CompleteMultipartUpload><Part><PartNumber>0</PartNumber></Part></CompleteMultipartUpload>`))
	f.Add([]byte(`<CompleteMultipartUpload></CompleteMultipartUpload>`))
	f.Add([]byte(`<a><Part><PartNumber>-1</PartNumber></Part>`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, doc []byte) {
		parts, err := parseCompleteRequest(doc)
		if err != nil {
			if code, _, _ := s3Status(err); code != "MalformedXML" {
				t.Fatalf("error %v, want MalformedXML", err)
			}
			return
		}
		if len(parts) == 0 || len(parts) > objects.MaxPartNum {
			t.Fatalf("%d parts accepted", len(parts))
		}
		for _, p := range parts {
			if p.Number < 1 || p.Number > objects.MaxPartNum || strings.HasPrefix(p.ETag, `"`) || strings.HasSuffix(p.ETag, `"`) {
				t.Fatalf("accepted part %+v", p)
			}
		}
	})
}

// FuzzDeleteObjects does the same for the multi-object delete document.
func FuzzDeleteObjects(f *testing.F) {
	f.Add([]byte(`<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object><Object><Key>b</Key><VersionId>null</VersionId></Object></Delete>`))
	f.Add([]byte(`<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a&amp;b</Key></Object></Delete>`))
	f.Add([]byte(`<Delete></Delete>`))
	f.Add([]byte(`<Delete><Quiet>maybe</Quiet><Object><Key>x</Key></Object></Delete>`))
	f.Add([]byte(`<`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		req, err := parseDeleteRequest(doc)
		if err != nil {
			if code, _, _ := s3Status(err); code != "MalformedXML" {
				t.Fatalf("error %v, want MalformedXML", err)
			}
			return
		}
		if len(req.Objects) == 0 || len(req.Objects) > maxDeleteKeys {
			t.Fatalf("%d objects accepted", len(req.Objects))
		}
	})
}

// The XML documents of the multipart calls and the read-only
// sub-resources, byte for byte.
func TestMultipartXML(t *testing.T) {
	h := newHarness(t, false, nil)
	h.fake.put("xml", "k", "0123456789")
	const hdr = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"
	const ns = `xmlns="http://s3.amazonaws.com/doc/2006-03-01/"`
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/xml/a%20b?uploads", "", 200,
			hdr + `<InitiateMultipartUploadResult ` + ns + `><Bucket>xml</Bucket><Key>a b</Key><UploadId>upload-001</UploadId></InitiateMultipartUploadResult>`},
		{"PUT", "/xml/a%20b?partNumber=1&uploadId=upload-001", "part one", 200, ""},
		{"GET", "/xml/a%20b?uploadId=upload-001", "", 200,
			hdr + `<ListPartsResult ` + ns + `><Bucket>xml</Bucket><Key>a b</Key><UploadId>upload-001</UploadId>` +
				`<Initiator><ID>kintsugi</ID><DisplayName>kintsugi</DisplayName></Initiator><Owner><ID>kintsugi</ID><DisplayName>kintsugi</DisplayName></Owner>` +
				`<StorageClass>STANDARD</StorageClass><PartNumberMarker>0</PartNumberMarker><MaxParts>1000</MaxParts><IsTruncated>false</IsTruncated>` +
				`<Part><PartNumber>1</PartNumber><LastModified>2024-05-06T07:08:13.000Z</LastModified><ETag>&#34;` + md5hex([]byte("part one")) + `&#34;</ETag><Size>8</Size></Part></ListPartsResult>`},
		{"GET", "/xml?uploads&prefix=a", "", 200,
			hdr + `<ListMultipartUploadsResult ` + ns + `><Bucket>xml</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><Prefix>a</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>` +
				`<Upload><Key>a b</Key><UploadId>upload-001</UploadId><Initiator><ID>kintsugi</ID><DisplayName>kintsugi</DisplayName></Initiator><Owner><ID>kintsugi</ID><DisplayName>kintsugi</DisplayName></Owner>` +
				`<StorageClass>STANDARD</StorageClass><Initiated>2024-05-06T07:08:12.000Z</Initiated></Upload></ListMultipartUploadsResult>`},
		{"POST", "/xml/a%20b?uploadId=upload-001", `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"` + md5hex([]byte("part one")) + `"</ETag></Part></CompleteMultipartUpload>`, 200,
			hdr + `<CompleteMultipartUploadResult ` + ns + `><Location>http://HOST/xml/a%20b</Location><Bucket>xml</Bucket><Key>a b</Key><ETag>&#34;` + multipartETag([]byte("part one"))[1:len(multipartETag([]byte("part one")))-1] + `&#34;</ETag></CompleteMultipartUploadResult>`},
		{"GET", "/xml/k?tagging", "", 200, hdr + `<Tagging ` + ns + `><TagSet></TagSet></Tagging>`},
		{"GET", "/xml?versioning", "", 200, hdr + `<VersioningConfiguration ` + ns + `></VersioningConfiguration>`},
	} {
		resp, body := h.do(tc.method, tc.path, nil, strings.NewReader(tc.body))
		want := strings.ReplaceAll(tc.want, "HOST", strings.TrimPrefix(h.srv.URL, "http://"))
		if resp.StatusCode != tc.status || (tc.want != "" && body != want) {
			t.Errorf("%s %s: %d\n%s\nwant %d\n%s", tc.method, tc.path, resp.StatusCode, body, tc.status, want)
		}
	}
}
