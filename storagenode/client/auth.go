package client

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// Request signing headers. Every request to a node that has a secret carries
// all three.
const (
	HeaderDate          = "X-Kintsugi-Date"           // RFC 3339, UTC
	HeaderContentSHA256 = "X-Kintsugi-Content-Sha256" // hex sha256 of the body, or UnsignedStream
	HeaderSignature     = "X-Kintsugi-Signature"      // hex HMAC-SHA256, see Sign
)

// UnsignedStream is the body digest of a shard stream. Such bodies are not
// hashed by the signature (that would need the whole stream before the first
// byte is sent); every block in them carries its own blake3 digest and the
// node reports the root digest it computed, which the commit must match.
const UnsignedStream = "UNSIGNED-STREAM"

// MaxSignedBody bounds a body whose digest is signed. Verify reads such a
// body whole, so it must stay small; metadata bodies are far below it.
const MaxSignedBody = 16 << 20

// BodyDigest returns the HeaderContentSHA256 value for body.
func BodyDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// Sign sets the signing headers on r: date is now (UTC, second precision),
// bodyDigest is BodyDigest(body) or UnsignedStream. The signature is
//
//	hex(HMAC-SHA256(secret, method "\n" path "\n" canonical-query "\n" date "\n" body-digest))
//
// where canonical-query is r.URL.RawQuery parsed and re-encoded with
// url.Values.Encode (sorted by name).
func Sign(r *http.Request, secret []byte, bodyDigest string, now time.Time) {
	date := now.UTC().Format(time.RFC3339)
	query, err := canonicalQuery(r.URL.RawQuery)
	if err != nil {
		// Sign the query as it is; the node rejects it, which is the
		// right answer for a malformed request.
		query = r.URL.RawQuery
	}
	r.Header.Set(HeaderDate, date)
	r.Header.Set(HeaderContentSHA256, bodyDigest)
	r.Header.Set(HeaderSignature, hex.EncodeToString(mac(secret, r.Method, r.URL.Path, query, date, bodyDigest)))
}

// canonicalQuery makes the signed form of a query independent of parameter
// order and escaping choices.
func canonicalQuery(raw string) (string, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "", err
	}
	return q.Encode(), nil
}

func mac(secret []byte, method, path, query, date, bodyDigest string) []byte {
	// One write of one buffer: writing each part with io.WriteString
	// converted (and allocated) every string, ten times per node request.
	var msg [512]byte
	b := msg[:0]
	for i, s := range [...]string{method, path, query, date, bodyDigest} {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, s...)
	}
	h := hmac.New(sha256.New, secret)
	h.Write(b)
	return h.Sum(make([]byte, 0, sha256.Size))
}

// Verify checks the signing headers of r against secret at time now: the
// date must be within maxSkew of now and the signature must match. When the
// body digest is not UnsignedStream, Verify reads the body (at most
// MaxSignedBody bytes), checks its sha256 and replaces r.Body with the
// verified bytes. Failures are kerr.Unauthorized (kerr.TooLarge for an
// oversized body); Verify changes nothing else.
//
// A signature can be replayed within maxSkew; every node operation is
// idempotent or newest-wins, so a replay cannot roll anything back.
func Verify(r *http.Request, secret []byte, now time.Time, maxSkew time.Duration) error {
	const op = "client.Verify"
	date := r.Header.Get(HeaderDate)
	digest := r.Header.Get(HeaderContentSHA256)
	sig := r.Header.Get(HeaderSignature)
	if date == "" || digest == "" || sig == "" {
		return kerr.E(op, kerr.Unauthorized, "missing signature headers")
	}
	t, err := time.Parse(time.RFC3339, date)
	if err != nil {
		return kerr.E(op, kerr.Unauthorized, fmt.Errorf("bad %s: %w", HeaderDate, err))
	}
	if skew := now.Sub(t).Abs(); skew > maxSkew {
		return kerr.E(op, kerr.Unauthorized, fmt.Errorf("request date %s is %v away from the node's clock (max %v)", date, skew.Round(time.Second), maxSkew))
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return kerr.E(op, kerr.Unauthorized, "signature is not hex")
	}
	query, err := canonicalQuery(r.URL.RawQuery)
	if err != nil {
		return kerr.E(op, kerr.Unauthorized, fmt.Errorf("bad query: %w", err))
	}
	if !hmac.Equal(got, mac(secret, r.Method, r.URL.Path, query, date, digest)) {
		return kerr.E(op, kerr.Unauthorized, "signature mismatch")
	}
	if digest == UnsignedStream {
		return nil
	}
	var body []byte
	if r.Body != nil {
		body, err = io.ReadAll(io.LimitReader(r.Body, MaxSignedBody+1))
		r.Body.Close()
		if err != nil {
			return kerr.E(op, kerr.Transient, fmt.Errorf("reading body: %w", err))
		}
		if len(body) > MaxSignedBody {
			return kerr.E(op, kerr.TooLarge, fmt.Errorf("signed body larger than %d bytes", MaxSignedBody))
		}
	}
	if subtle.ConstantTimeCompare([]byte(BodyDigest(body)), []byte(digest)) != 1 {
		return kerr.E(op, kerr.Unauthorized, errors.New("body does not match its signed digest"))
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return nil
}
