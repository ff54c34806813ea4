package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
	"github.com/minio/minio-go/v7"
	mcreds "github.com/minio/minio-go/v7/pkg/credentials"
)

const (
	testAccessKey = "AKIDEXAMPLE"
	testSecret    = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

func newAuthHarness(t *testing.T, tls bool) *harness {
	return newHarness(t, tls, func(c *Config) {
		c.Auth = &sigv4.Verifier{Creds: sigv4.StaticCredentials{testAccessKey: testSecret}, Region: "us-east-1"}
	})
}

func TestAuthSDK(t *testing.T) {
	for _, mode := range []struct {
		name string
		tls  bool
		calc aws.RequestChecksumCalculation
	}{
		{"signed payload", false, aws.RequestChecksumCalculationWhenRequired},
		{"chunked trailer", true, aws.RequestChecksumCalculationWhenSupported},
	} {
		t.Run(mode.name, func(t *testing.T) {
			h := newAuthHarness(t, mode.tls)
			c := h.client(func(o *s3.Options) { o.RequestChecksumCalculation = mode.calc })
			if _, err := c.CreateBucket(bg, &s3.CreateBucketInput{Bucket: aws.String("auth")}); err != nil {
				t.Fatal(err)
			}
			data := testPayload(100 << 10)
			if _, err := c.PutObject(bg, &s3.PutObjectInput{Bucket: aws.String("auth"), Key: aws.String("a b+c/ü"), Body: bytes.NewReader(data)}); err != nil {
				t.Fatal(err)
			}
			get, err := c.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("auth"), Key: aws.String("a b+c/ü")})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(get.Body)
			get.Body.Close()
			if !bytes.Equal(got, data) {
				t.Errorf("GetObject: %d bytes", len(got))
			}
			out, err := c.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("auth"), Prefix: aws.String("a b+")})
			if err != nil || len(out.Contents) != 1 {
				t.Errorf("ListObjectsV2 = %+v, %v", out, err)
			}
			if _, err := c.DeleteObjects(bg, &s3.DeleteObjectsInput{Bucket: aws.String("auth"),
				Delete: &s3types.Delete{Objects: []s3types.ObjectIdentifier{{Key: aws.String("nothing")}}}}); err != nil {
				t.Errorf("DeleteObjects: %v", err)
			}

			bad := h.client(func(o *s3.Options) {
				o.Credentials = credentials.NewStaticCredentialsProvider(testAccessKey, "wrong", "")
			})
			_, err = bad.ListBuckets(bg, &s3.ListBucketsInput{})
			wantCode(t, "wrong secret", err, "SignatureDoesNotMatch")
			_, err = bad.PutObject(bg, &s3.PutObjectInput{Bucket: aws.String("auth"), Key: aws.String("x"), Body: bytes.NewReader(data)})
			wantCode(t, "wrong secret put", err, "SignatureDoesNotMatch")
			unknown := h.client(func(o *s3.Options) {
				o.Credentials = credentials.NewStaticCredentialsProvider("NOBODY", testSecret, "")
			})
			_, err = unknown.ListBuckets(bg, &s3.ListBucketsInput{})
			wantCode(t, "unknown key", err, "InvalidAccessKeyId")
			if _, ok := h.fake.data("auth", "x"); ok {
				t.Error("a badly signed PUT created an object")
			}

			// Presigned download.
			ps := s3.NewPresignClient(c)
			req, err := ps.PresignGetObject(bg, &s3.GetObjectInput{Bucket: aws.String("auth"), Key: aws.String("a b+c/ü")})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := h.srv.Client().Get(req.URL)
			if err != nil {
				t.Fatal(err)
			}
			got, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Equal(got, data) {
				t.Errorf("presigned GET: %d, %d bytes", resp.StatusCode, len(got))
			}
		})
	}
}

func TestAuthAnonymousAndHealth(t *testing.T) {
	h := newAuthHarness(t, false)
	resp, body := h.do("GET", "/", nil, nil)
	if resp.StatusCode != 403 || s3Code(body) != "AccessDenied" {
		t.Errorf("anonymous: %d %s", resp.StatusCode, body)
	}
	resp, body = h.do("PUT", "/anon", nil, nil)
	if resp.StatusCode != 403 || s3Code(body) != "AccessDenied" {
		t.Errorf("anonymous create: %d %s", resp.StatusCode, body)
	}
	if _, err := h.fake.HeadBucket(bg, "anon"); err == nil {
		t.Error("anonymous request created a bucket")
	}
	if resp, body := h.do("GET", "/-/healthy", nil, nil); resp.StatusCode != 200 || body != "ok" {
		t.Errorf("health with auth: %d %q", resp.StatusCode, body)
	}
}

// A signed payload whose bytes do not match x-amz-content-sha256 fails at
// its end; the object is not created even though the Backend reads exactly
// the declared length and never asks for EOF itself.
func TestAuthPayloadMismatchCreatesNothing(t *testing.T) {
	h := newAuthHarness(t, false)
	if err := h.fake.CreateBucket(bg, "sums"); err != nil {
		t.Fatal(err)
	}
	real := testPayload(256 << 10)
	fake := bytes.Clone(real)
	fake[len(fake)-1]++
	signed := sha256.Sum256(real)
	req, _ := http.NewRequest("PUT", h.srv.URL+"/sums/obj", bytes.NewReader(fake))
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(signed[:]))
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret}
	if err := v4.NewSigner().SignHTTP(bg, creds, req, hex.EncodeToString(signed[:]), "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || s3Code(string(body)) != "XAmzContentSHA256Mismatch" {
		t.Errorf("mismatched payload: %d %s", resp.StatusCode, body)
	}
	if _, ok := h.fake.data("sums", "obj"); ok {
		t.Error("a payload that failed its digest was stored")
	}
}

// minio-go signs every aws-chunked chunk over plain HTTP.
func TestAuthMinioChunkSignatures(t *testing.T) {
	h := newAuthHarness(t, false)
	u, _ := url.Parse(h.srv.URL)
	mc, err := minio.New(u.Host, &minio.Options{
		Creds:        mcreds.NewStaticV4(testAccessKey, testSecret, ""),
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.MakeBucket(bg, "chunks", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	data := testPayload(200 << 10)
	if _, err := mc.PutObject(bg, "chunks", "k", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.fake.data("chunks", "k"); got != string(data) {
		t.Errorf("stored %d bytes, want %d", len(got), len(data))
	}
	streamed := false
	for _, hd := range h.requests() {
		streamed = streamed || hd.Get("X-Amz-Content-Sha256") == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	}
	if !streamed {
		t.Error("minio-go did not send a chunk-signed payload")
	}
}
