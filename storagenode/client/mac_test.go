package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestSignatureFormat pins the signed string: nodes and gateways of
// different builds must keep agreeing on it.
func TestSignatureFormat(t *testing.T) {
	secret := []byte("s3cr3t")
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	long := strings.Repeat("k", 600) // longer than mac's stack buffer
	for _, tc := range []struct{ target, path, query string }{
		{"http://node/v1/bucket?b=2&a=1", "/v1/bucket", "a=1&b=2"},
		{"http://node/v1/shard?key=" + long, "/v1/shard", "key=" + long},
	} {
		r := httptest.NewRequest("GET", tc.target, nil)
		Sign(r, secret, UnsignedStream, now)
		h := hmac.New(sha256.New, secret)
		h.Write([]byte("GET\n" + tc.path + "\n" + tc.query + "\n2025-06-01T12:00:00Z\n" + UnsignedStream))
		if got, want := r.Header.Get(HeaderSignature), hex.EncodeToString(h.Sum(nil)); got != want {
			t.Errorf("%s: signature %s, want %s", tc.path, got, want)
		}
	}
}
