package sigv4

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// seen is what the test server observed of one request.
type seen struct {
	method, path string
	mode         string // x-amz-content-sha256
	header       http.Header
	length       int64
	body         []byte
	trailers     http.Header
	err          error
}

// echoServer answers S3 requests after Verify, reading the whole payload;
// it answers the payload's SHA-256 as the ETag, or the S3 error.
type echoServer struct {
	v    *Verifier
	mu   sync.Mutex
	reqs []seen
}

func (s *echoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	got := seen{method: r.Method, path: r.URL.Path, mode: r.Header.Get("X-Amz-Content-Sha256"), header: r.Header.Clone()}
	res, err := s.v.Verify(r)
	if err == nil {
		got.length = res.Length
		got.body, err = io.ReadAll(res.Body)
		got.trailers = res.Trailers
	}
	got.err = err
	s.mu.Lock()
	s.reqs = append(s.reqs, got)
	s.mu.Unlock()
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Code: "InternalError", Message: err.Error(), Status: http.StatusInternalServerError}
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(e.Status)
		xml.NewEncoder(w).Encode(struct {
			XMLName xml.Name `xml:"Error"`
			Code    string
			Message string
		}{Code: e.Code, Message: e.Message})
		return
	}
	sum := sha256.Sum256(got.body)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	w.Header().Set("Last-Modified", "Mon, 06 May 2024 07:08:09 GMT")
	if r.Method == http.MethodDelete {
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *echoServer) last(t *testing.T) seen {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("no request reached the server")
	}
	return s.reqs[len(s.reqs)-1]
}

func newEchoServer(t *testing.T, tls bool) (*echoServer, *httptest.Server) {
	es := &echoServer{v: &Verifier{Creds: StaticCredentials{testAccessKey: testSecret}, Region: testRegion}}
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(es)
	} else {
		srv = httptest.NewServer(es)
	}
	t.Cleanup(srv.Close)
	return es, srv
}

func sdkClient(srv *httptest.Server, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:           testRegion,
		BaseEndpoint:     aws.String(srv.URL),
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider(testAccessKey, secret, ""),
		HTTPClient:       srv.Client(),
		RetryMaxAttempts: 1,
	})
}

const e2eKey = "dir/ünï cødé+%!$&'()*,;=:@~[x]{y}^`|\\\"<>#?.txt"

// TestSDKPutObject sends PutObject with the real aws-sdk-go-v2 S3 client:
// over plain HTTP it signs the payload's SHA-256 and sends checksum
// headers, over TLS it streams aws-chunked with a trailing checksum.
func TestSDKPutObject(t *testing.T) {
	payload := testPayload(300_000)
	digest := sha256.Sum256(payload)
	etag := `"` + hex.EncodeToString(digest[:]) + `"`
	algs := []types.ChecksumAlgorithm{"", types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c,
		types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256, types.ChecksumAlgorithmSha512}
	for _, tls := range []bool{false, true} {
		es, srv := newEchoServer(t, tls)
		client := sdkClient(srv, testSecret)
		for _, alg := range algs {
			for _, seekable := range []bool{true, false} {
				if !seekable && !tls {
					continue // the SDK needs TLS to stream an unseekable body
				}
				name := map[bool]string{false: "http", true: "https"}[tls] + "/" + string(alg) + map[bool]string{true: "/seekable", false: "/stream"}[seekable]
				t.Run(name, func(t *testing.T) {
					var body io.Reader = bytes.NewReader(payload)
					if !seekable {
						body = iotest.HalfReader(bytes.NewReader(payload))
					}
					out, err := client.PutObject(t.Context(), &s3.PutObjectInput{
						Bucket:            aws.String("bucket"),
						Key:               aws.String(e2eKey),
						Body:              body,
						ContentLength:     aws.Int64(int64(len(payload))),
						ChecksumAlgorithm: alg,
						Metadata:          map[string]string{"note": "two  spaces"},
					})
					got := es.last(t)
					if err != nil {
						t.Fatalf("PutObject: %v (server: %v, mode %s)", err, got.err, got.mode)
					}
					if aws.ToString(out.ETag) != etag {
						t.Errorf("ETag = %s, want %s", aws.ToString(out.ETag), etag)
					}
					if got.path != "/bucket/"+e2eKey || got.length != int64(len(payload)) {
						t.Errorf("server saw path %q length %d", got.path, got.length)
					}
					header, sum := "", ""
					if alg != "" {
						header = "x-amz-checksum-" + strings.ToLower(string(alg))
						sum = checksumOf(t, strings.ToLower(string(alg)), payload)
					}
					switch {
					case !tls:
						// Plain HTTP: the payload's SHA-256 is signed and the
						// checksum travels as a header.
						if got.mode != hex.EncodeToString(digest[:]) {
							t.Errorf("mode = %s, want the payload digest", got.mode)
						}
						if alg != "" && got.header.Get(header) != sum {
							t.Errorf("%s header = %q, want %q", header, got.header.Get(header), sum)
						}
					case alg == "":
						if got.mode != unsignedPayload {
							t.Errorf("mode = %s, want %s", got.mode, unsignedPayload)
						}
					default:
						if got.mode != streamingUnsignedTrail {
							t.Errorf("mode = %s, want %s", got.mode, streamingUnsignedTrail)
						}
						if got.trailers.Get(header) != sum {
							t.Errorf("trailers = %v, want %s: %s", got.trailers, header, sum)
						}
					}
				})
			}
		}
	}
}

func TestSDKObjectCalls(t *testing.T) {
	es, srv := newEchoServer(t, false)
	client := sdkClient(srv, testSecret)
	ctx := t.Context()
	keys := []string{"plain", e2eKey, "a/b/c", "ключ/日本語 ☃", "trailing/", "100%/%2F"}
	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			in := aws.String("bucket")
			if _, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: in, Key: aws.String(key)}); err != nil {
				t.Fatalf("HeadObject: %v (server: %v)", err, es.last(t).err)
			}
			out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: in, Key: aws.String(key), Range: aws.String("bytes=0-9"), VersionId: aws.String("v 1+2")})
			if err != nil {
				t.Fatalf("GetObject: %v (server: %v)", err, es.last(t).err)
			}
			out.Body.Close()
			if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: in, Key: aws.String(key)}); err != nil {
				t.Fatalf("DeleteObject: %v (server: %v)", err, es.last(t).err)
			}
			if got := es.last(t); got.path != "/bucket/"+key {
				t.Errorf("server saw path %q", got.path)
			}
		})
	}
}

func TestSDKWrongSecret(t *testing.T) {
	_, srv := newEchoServer(t, false)
	_, err := sdkClient(srv, "not the secret").PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String("bucket"), Key: aws.String("k"), Body: strings.NewReader("x"),
	})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != codeSignatureDoesNotMatch {
		t.Fatalf("err = %v, want %s", err, codeSignatureDoesNotMatch)
	}
}

func TestSDKPresign(t *testing.T) {
	es, srv := newEchoServer(t, false)
	pc := s3.NewPresignClient(sdkClient(srv, testSecret))
	ctx := t.Context()
	get, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String(e2eKey)})
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("put through a presigned URL")
	put, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String(e2eKey)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		method, url string
		hdr         http.Header
		body        []byte
	}{{get.Method, get.URL, get.SignedHeader, nil}, {put.Method, put.URL, put.SignedHeader, payload}} {
		req, err := http.NewRequestWithContext(ctx, p.method, p.url, bytes.NewReader(p.body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range p.hdr {
			if !strings.EqualFold(k, "host") {
				req.Header[k] = v
			}
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := es.last(t)
		if resp.StatusCode != http.StatusOK || got.err != nil {
			t.Fatalf("%s %s: status %d, server: %v", p.method, p.url, resp.StatusCode, got.err)
		}
		if !bytes.Equal(got.body, p.body) {
			t.Errorf("body %q, want %q", got.body, p.body)
		}
	}
}

// TestMinioPutObject sends PutObject with minio-go, which over plain HTTP
// uses signed aws-chunked streaming, with a signed trailer when asked for a
// checksum.
func TestMinioPutObject(t *testing.T) {
	es, srv := newEchoServer(t, false)
	u, _ := url.Parse(srv.URL)
	mc, err := minio.New(u.Host, &minio.Options{
		Creds:     miniocreds.NewStaticV4(testAccessKey, testSecret, ""),
		Region:    testRegion,
		Transport: srv.Client().Transport,
		// Trailing checksums are what make minio-go use the signed
		// trailer form.
		TrailingHeaders: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	payload := testPayload(200_000)
	sum := sha256.Sum256(payload)
	for _, tc := range []struct {
		name string
		opts minio.PutObjectOptions
		mode string
	}{
		{"default", minio.PutObjectOptions{}, streamingSigned},
		{"md5", minio.PutObjectOptions{SendContentMd5: true}, streamingSigned},
		{"crc32c", minio.PutObjectOptions{Checksum: minio.ChecksumCRC32C}, streamingSignedTrailer},
		{"auto sha256", minio.PutObjectOptions{AutoChecksum: minio.ChecksumSHA256}, streamingSigned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := mc.PutObject(t.Context(), "bucket", e2eKey, bytes.NewReader(payload), int64(len(payload)), tc.opts)
			got := es.last(t)
			if err != nil {
				t.Fatalf("PutObject: %v (server: %v, mode %s)", err, got.err, got.mode)
			}
			if info.ETag != hex.EncodeToString(sum[:]) {
				t.Errorf("ETag = %s", info.ETag)
			}
			if !bytes.Equal(got.body, payload) || got.path != "/bucket/"+e2eKey {
				t.Errorf("server saw %d bytes at %q", len(got.body), got.path)
			}
			if got.mode != tc.mode {
				t.Errorf("mode = %s, want %s", got.mode, tc.mode)
			}
			if tc.opts.SendContentMd5 && got.header.Get("Content-Md5") == "" {
				t.Error("no Content-MD5 reached the server")
			}
			if tc.mode == streamingSignedTrailer && got.trailers.Get("x-amz-checksum-crc32c") != checksumOf(t, "crc32c", payload) {
				t.Errorf("trailers = %v", got.trailers)
			}
		})
	}
	if err := mc.RemoveObject(t.Context(), "bucket", e2eKey, minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("RemoveObject: %v (server: %v)", err, es.last(t).err)
	}
}
