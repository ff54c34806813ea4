package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/httpbinding"
)

const (
	testAccessKey = "AKIAKINTSUGITEST"
	testSecret    = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testRegion    = "us-east-1"
	testHost      = "s3.kintsugi.test:9000"
)

// signTime is when test requests are signed; test verifiers' clocks read it.
var signTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

func testVerifier() *Verifier {
	return &Verifier{
		Creds:  StaticCredentials{testAccessKey: testSecret, "OTHERKEY": "other-secret"},
		Region: testRegion,
		Now:    func() time.Time { return signTime },
	}
}

func testCreds(secret string) aws.Credentials {
	return aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: secret}
}

// s3Signer is the SDK's SigV4 signer set up as the SDK's S3 client uses it:
// S3 paths are escaped once, by the client, never again by the signer.
func s3Signer() *v4.Signer {
	return v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
}

// newClientRequest builds the request a client would send for bucket/key
// (key may be empty) and a raw query, escaping the path as the SDK's S3
// client does.
func newClientRequest(t testing.TB, method, path, rawQuery string, body []byte) *http.Request {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: testHost, Path: path, RawPath: httpbinding.EscapePath(path, false), RawQuery: rawQuery}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequest(method, u.String(), rd)
	if err != nil {
		t.Fatal(err)
	}
	// NewRequest re-parses the URL; keep the client's exact escaping.
	r.URL = u
	return r
}

// signHeader signs r with the SDK signer, declaring payloadHash in
// x-amz-content-sha256 as S3 clients must.
func signHeader(t testing.TB, r *http.Request, secret, payloadHash string, at time.Time) {
	t.Helper()
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if err := s3Signer().SignHTTP(context.Background(), testCreds(secret), r, payloadHash, "s3", testRegion, at); err != nil {
		t.Fatal(err)
	}
}

// presign returns a presigned request for method and path valid for
// expires, as the SDK's presigner builds it.
func presign(t testing.TB, method, path, rawQuery string, expires time.Duration, at time.Time) *http.Request {
	t.Helper()
	r := newClientRequest(t, method, path, rawQuery, nil)
	q := r.URL.Query()
	q.Set("X-Amz-Expires", strconv.FormatInt(int64(expires/time.Second), 10))
	r.URL.RawQuery = q.Encode()
	uri, hdr, err := s3Signer().PresignHTTP(context.Background(), testCreds(testSecret), r, unsignedPayload, "s3", testRegion, at)
	if err != nil {
		t.Fatal(err)
	}
	out, err := http.NewRequest(method, uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if !strings.EqualFold(k, "host") {
			out.Header[k] = v
		}
	}
	return out
}

// toServer sends r over an in-memory wire and returns it as an HTTP
// server would receive it.
func toServer(t testing.TB, r *http.Request) *http.Request {
	t.Helper()
	var wire bytes.Buffer
	if err := r.Write(&wire); err != nil {
		t.Fatal(err)
	}
	sr, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatal(err)
	}
	return sr
}

// wantCode fails unless err is an *Error with the given code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *Error %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("err code = %s (%q), want %s", e.Code, e.Message, code)
	}
	if e.Status != http.StatusForbidden && e.Status != http.StatusBadRequest {
		t.Fatalf("err status = %d", e.Status)
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// testSigningKey derives a SigV4 signing key as the AWS documentation
// spells it, independently of the package's own derivation.
func testSigningKey(secret string, at time.Time) []byte {
	mac := func(key []byte, s string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	k := mac([]byte("AWS4"+secret), at.Format("20060102"))
	k = mac(k, testRegion)
	k = mac(k, "s3")
	return mac(k, "aws4_request")
}

func hmacHex(key []byte, s string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// authSignature extracts Signature=... from an Authorization header.
func authSignature(t testing.TB, r *http.Request) string {
	t.Helper()
	_, sig, ok := strings.Cut(r.Header.Get("Authorization"), "Signature=")
	if !ok {
		t.Fatalf("no signature in %q", r.Header.Get("Authorization"))
	}
	return sig
}
