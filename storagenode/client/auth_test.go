package client

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

func TestSignVerify(t *testing.T) {
	secret := []byte("s3cr3t")
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"name":"bk"}`)
	newReq := func() *http.Request {
		r := httptest.NewRequest("PUT", "http://node/v1/bucket?b=2&a=1", bytes.NewReader(body))
		Sign(r, secret, BodyDigest(body), now)
		return r
	}
	r := newReq()
	if got := r.Header.Get(HeaderDate); got != "2025-06-01T12:00:00Z" {
		t.Errorf("date header = %q", got)
	}
	if err := Verify(r, secret, now.Add(4*time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("Verify of a good request: %v", err)
	}
	if got, _ := io.ReadAll(r.Body); !bytes.Equal(got, body) {
		t.Errorf("body after Verify = %q, want %q", got, body)
	}

	for _, tc := range []struct {
		name   string
		edit   func(r *http.Request)
		now    time.Time
		secret []byte
		want   kerr.Kind
	}{
		{"query reordered", func(r *http.Request) { r.URL.RawQuery = "a=1&b=2" }, now, secret, kerr.Other},
		{"query changed", func(r *http.Request) { r.URL.RawQuery = "a=1&b=3" }, now, secret, kerr.Unauthorized},
		{"path changed", func(r *http.Request) { r.URL.Path = "/v1/buckets" }, now, secret, kerr.Unauthorized},
		{"method changed", func(r *http.Request) { r.Method = "POST" }, now, secret, kerr.Unauthorized},
		{"body changed", func(r *http.Request) { r.Body = io.NopCloser(bytes.NewReader([]byte(`{"name":"x"}`))) }, now, secret, kerr.Unauthorized},
		{"body dropped", func(r *http.Request) { r.Body = nil }, now, secret, kerr.Unauthorized},
		{"digest changed", func(r *http.Request) { r.Header.Set(HeaderContentSHA256, UnsignedStream) }, now, secret, kerr.Unauthorized},
		{"date changed", func(r *http.Request) { r.Header.Set(HeaderDate, "2025-06-01T12:00:01Z") }, now, secret, kerr.Unauthorized},
		{"date garbage", func(r *http.Request) { r.Header.Set(HeaderDate, "yesterday") }, now, secret, kerr.Unauthorized},
		{"signature missing", func(r *http.Request) { r.Header.Del(HeaderSignature) }, now, secret, kerr.Unauthorized},
		{"signature not hex", func(r *http.Request) { r.Header.Set(HeaderSignature, "zz") }, now, secret, kerr.Unauthorized},
		{"too old", func(*http.Request) {}, now.Add(6 * time.Minute), secret, kerr.Unauthorized},
		{"from the future", func(*http.Request) {}, now.Add(-6 * time.Minute), secret, kerr.Unauthorized},
		{"other secret", func(*http.Request) {}, now, []byte("other"), kerr.Unauthorized},
	} {
		r := newReq()
		tc.edit(r)
		err := Verify(r, tc.secret, tc.now, 5*time.Minute)
		if got := kerr.KindOf(err); got != tc.want || (tc.want == kerr.Other) != (err == nil) {
			t.Errorf("%s: Verify = %v, want kind %v", tc.name, err, tc.want)
		}
	}

	// A shard stream is signed without its body, which Verify leaves unread.
	stream := []byte("frames...")
	r = httptest.NewRequest("PUT", "http://node/v1/stage?shard=1", bytes.NewReader(stream))
	Sign(r, secret, UnsignedStream, now)
	if err := Verify(r, secret, now, time.Minute); err != nil {
		t.Fatalf("Verify of a stream: %v", err)
	}
	if got, _ := io.ReadAll(r.Body); !bytes.Equal(got, stream) {
		t.Errorf("stream body = %q", got)
	}

	big := bytes.Repeat([]byte("x"), MaxSignedBody+1)
	r = httptest.NewRequest("PUT", "http://node/v1/hints", bytes.NewReader(big))
	Sign(r, secret, BodyDigest(big), now)
	if err := Verify(r, secret, now, time.Minute); !kerr.Is(kerr.TooLarge, err) {
		t.Errorf("Verify of an oversized body: %v, want TooLarge", err)
	}
}
