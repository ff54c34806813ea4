package sigv4

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestVerifyPresigned(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		query  string
	}{
		{"get", "GET", "/bucket/key", ""},
		{"head", "HEAD", "/bucket/key", ""},
		{"delete", "DELETE", "/bucket/key", ""},
		{"put", "PUT", "/bucket/key", ""},
		{"unicode key", "GET", "/bucket/ünï cødé+%/x", ""},
		{"with query", "GET", "/bucket/key", "versionId=abc&response-content-type=text%2Fplain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := presign(t, tt.method, tt.path, tt.query, time.Hour, signTime)
			var body []byte
			if tt.method == "PUT" {
				body = []byte("uploaded through a presigned URL")
				r.Body = io.NopCloser(bytes.NewReader(body))
				r.ContentLength = int64(len(body))
			}
			sr := toServer(t, r)
			v := testVerifier()
			v.Now = func() time.Time { return signTime.Add(59 * time.Minute) }
			res, err := v.Verify(sr)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.AccessKey != testAccessKey {
				t.Errorf("AccessKey = %q", res.AccessKey)
			}
			got, err := io.ReadAll(res.Body)
			if err != nil || !bytes.Equal(got, body) && len(body) > 0 {
				t.Fatalf("body = %q, %v", got, err)
			}
		})
	}
}

func TestVerifyPresignedErrors(t *testing.T) {
	tests := []struct {
		name    string
		expires time.Duration
		now     time.Time
		mutate  func(r *http.Request)
		code    string
		msg     string
	}{
		{name: "expired", expires: time.Hour, now: signTime.Add(time.Hour + time.Second), code: codeAccessDenied, msg: "Request has expired"},
		{name: "future beyond skew", expires: time.Hour, now: signTime.Add(-16 * time.Minute), code: codeRequestTimeTooSkewed},
		{name: "expires zero", expires: 0, code: codeQueryParametersError},
		{name: "expires over a week", expires: 604801 * time.Second, code: codeQueryParametersError},
		{name: "tampered path", expires: time.Hour, mutate: func(r *http.Request) {
			r.URL.Path, r.URL.RawPath = "/bucket/other", ""
		}, code: codeSignatureDoesNotMatch},
		{name: "tampered expiry", expires: time.Hour, mutate: func(r *http.Request) {
			r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "X-Amz-Expires=3600", "X-Amz-Expires=7200", 1)
		}, code: codeSignatureDoesNotMatch},
		{name: "added query", expires: time.Hour, mutate: func(r *http.Request) {
			r.URL.RawQuery += "&versionId=1"
		}, code: codeSignatureDoesNotMatch},
		{name: "wrong signature", expires: time.Hour, mutate: func(r *http.Request) {
			q := r.URL.Query()
			q.Set("X-Amz-Signature", strings.Repeat("ab", 32))
			r.URL.RawQuery = q.Encode()
		}, code: codeSignatureDoesNotMatch},
		{name: "signature shortened", expires: time.Hour, mutate: alterPresigned(func(s string) string { return s[:40] }), code: codeSignatureDoesNotMatch},
		{name: "signature lengthened", expires: time.Hour, mutate: alterPresigned(func(s string) string { return s + "ff" }), code: codeSignatureDoesNotMatch},
		{name: "signature upper-case", expires: time.Hour, mutate: alterPresigned(strings.ToUpper), code: codeSignatureDoesNotMatch},
		{name: "signature not hex", expires: time.Hour, mutate: alterPresigned(func(s string) string { return "signature-" + s }), code: codeSignatureDoesNotMatch},
		{name: "signature empty", expires: time.Hour, mutate: alterPresigned(func(string) string { return "" }), code: codeQueryParametersError},
		{name: "unknown key", expires: time.Hour, mutate: func(r *http.Request) {
			q := r.URL.Query()
			q.Set("X-Amz-Credential", strings.Replace(q.Get("X-Amz-Credential"), testAccessKey, "NOBODY", 1))
			r.URL.RawQuery = q.Encode()
		}, code: codeInvalidAccessKeyID},
		{name: "missing signature", expires: time.Hour, mutate: func(r *http.Request) {
			q := r.URL.Query()
			q.Del("X-Amz-Signature")
			r.URL.RawQuery = q.Encode()
		}, code: codeQueryParametersError},
		{name: "unsigned amz header", expires: time.Hour, mutate: func(r *http.Request) {
			r.Header.Set("X-Amz-Meta-Injected", "1")
		}, code: codeAccessDenied},
		{name: "also authorization header", expires: time.Hour, mutate: func(r *http.Request) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 whatever")
		}, code: codeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := presign(t, "GET", "/bucket/key", "", tt.expires, signTime)
			if tt.mutate != nil {
				tt.mutate(r)
			}
			v := testVerifier()
			if !tt.now.IsZero() {
				v.Now = func() time.Time { return tt.now }
			}
			_, err := v.Verify(toServer(t, r))
			wantCode(t, err, tt.code)
			if tt.msg != "" && err.(*Error).Message != tt.msg {
				t.Errorf("message = %q, want %q", err.(*Error).Message, tt.msg)
			}
		})
	}
}

func TestVerifyPresignedExpiryBoundary(t *testing.T) {
	r := presign(t, "GET", "/bucket/key", "", 604800*time.Second, signTime)
	v := testVerifier()
	v.Now = func() time.Time { return signTime.Add(604800 * time.Second) }
	if _, err := v.Verify(toServer(t, r)); err != nil {
		t.Fatalf("at the last valid second: %v", err)
	}
}

func TestVerifyPresignedPayloadDigest(t *testing.T) {
	body := []byte("hashed body")
	r := presign(t, "PUT", "/bucket/key", "", time.Hour, signTime)
	r.Body = io.NopCloser(bytes.NewReader([]byte("tampered!!!")))
	r.ContentLength = int64(len(body))
	r.Header.Set("X-Amz-Content-Sha256", sha256Hex(body))
	res, err := testVerifier().Verify(toServer(t, r))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	_, err = io.ReadAll(res.Body)
	wantCode(t, err, codeSHA256Mismatch)
}

func TestParsePresign(t *testing.T) {
	valid := url.Values{
		"X-Amz-Algorithm":     {"AWS4-HMAC-SHA256"},
		"X-Amz-Credential":    {testAccessKey + "/20240506/us-east-1/s3/aws4_request"},
		"X-Amz-Date":          {"20240506T070809Z"},
		"X-Amz-Expires":       {"900"},
		"X-Amz-SignedHeaders": {"host;x-amz-meta-a"},
		"X-Amz-Signature":     {strings.Repeat("0f", 32)},
	}
	p, err := parsePresign(valid)
	if err != nil {
		t.Fatal(err)
	}
	if p.cred != (credential{testAccessKey, "20240506", "us-east-1"}) || p.expires != 900*time.Second ||
		!p.date.Equal(signTime) || p.amzDate != "20240506T070809Z" || strings.Join(p.signedHeaders, ",") != "host,x-amz-meta-a" {
		t.Fatalf("parsePresign = %+v", p)
	}
	for _, tc := range []struct{ key, value string }{
		{"X-Amz-Algorithm", "AWS4-HMAC-SHA512"},
		{"X-Amz-Credential", "AK/20240506/us-east-1/s3"},
		{"X-Amz-Credential", "AK/20240506/us-east-1/ec2/aws4_request"},
		{"X-Amz-Credential", "AK/2024-05-06/us-east-1/s3/aws4_request"},
		{"X-Amz-Credential", "/20240506/us-east-1/s3/aws4_request"},
		{"X-Amz-Date", "2024-05-06T07:08:09Z"},
		{"X-Amz-Expires", "-1"},
		{"X-Amz-Expires", "soon"},
		{"X-Amz-SignedHeaders", "x-amz-date"},
		{"X-Amz-SignedHeaders", "Host"},
		{"X-Amz-Signature", ""},
	} {
		q := url.Values{}
		for k, v := range valid {
			q[k] = v
		}
		q.Set(tc.key, tc.value)
		if _, err := parsePresign(q); err == nil || err.Code != codeQueryParametersError {
			t.Errorf("%s=%s: err = %v", tc.key, tc.value, err)
		}
	}
	q := url.Values{}
	for k, v := range valid {
		q[k] = v
	}
	q.Add("X-Amz-Date", "20240506T070809Z")
	if _, err := parsePresign(q); err == nil {
		t.Error("duplicated X-Amz-Date accepted")
	}
}

// alterPresigned rewrites a presigned request's X-Amz-Signature with f.
func alterPresigned(f func(string) string) func(r *http.Request) {
	return func(r *http.Request) {
		q := r.URL.Query()
		q.Set("X-Amz-Signature", f(q.Get("X-Amz-Signature")))
		r.URL.RawQuery = q.Encode()
	}
}
