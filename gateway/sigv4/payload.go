package sigv4

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// payloadMode is how the body is protected, from x-amz-content-sha256.
type payloadMode int

const (
	payloadDigest          payloadMode = iota // hex SHA-256 of the body
	payloadUnsigned                           // UNSIGNED-PAYLOAD
	payloadSigned                             // aws-chunked, signed chunks
	payloadSignedTrailer                      // aws-chunked, signed chunks and trailer
	payloadUnsignedTrailer                    // aws-chunked, no signatures, optional trailer
)

// x-amz-content-sha256 values other than a hex digest.
const (
	unsignedPayload        = "UNSIGNED-PAYLOAD"
	streamingSigned        = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrail = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

func (m payloadMode) chunked() bool { return m >= payloadSigned }
func (m payloadMode) trailer() bool { return m == payloadSignedTrailer || m == payloadUnsignedTrailer }

// parsePayloadMode interprets an x-amz-content-sha256 value. For a hex
// digest it also returns the digest.
func parsePayloadMode(v string) (payloadMode, []byte, *Error) {
	switch v {
	case unsignedPayload:
		return payloadUnsigned, nil, nil
	case streamingSigned:
		return payloadSigned, nil, nil
	case streamingSignedTrailer:
		return payloadSignedTrailer, nil, nil
	case streamingUnsignedTrail:
		return payloadUnsignedTrailer, nil, nil
	}
	if strings.HasPrefix(v, "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD") {
		return 0, nil, newError(codeInvalidRequest, "SigV4a streaming payloads are not supported.")
	}
	if len(v) == 2*sha256.Size {
		if d, err := hex.DecodeString(v); err == nil {
			return payloadDigest, d, nil
		}
	}
	return 0, nil, newError(codeInvalidArgument, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.")
}

// newResult builds the payload reader of an authenticated (or deliberately
// unauthenticated) request. signer is nil when chunk signatures are not to
// be checked.
func newResult(r *http.Request, mode payloadMode, digest []byte, signer *chunkSigner) (*Result, *Error) {
	body := io.Reader(r.Body)
	if r.Body == nil {
		body = http.NoBody
	}
	checks, err := headerChecks(r)
	if err != nil {
		return nil, err
	}
	declared, err := declaredTrailers(r.Header)
	if err != nil {
		return nil, err
	}
	if len(declared) > 0 && !mode.trailer() {
		return nil, newError(codeInvalidRequest, "x-amz-trailer requires a STREAMING-*-TRAILER x-amz-content-sha256.")
	}
	res := &Result{Length: r.ContentLength, Trailers: make(http.Header)}
	vr := &verifyingReader{src: body, limit: -1, out: res.Trailers}
	switch {
	case mode == payloadDigest:
		checks = append(checks, &digestCheck{
			name: "x-amz-content-sha256", h: sha256.New(), want: digest,
			code: codeSHA256Mismatch, msg: "The provided 'x-amz-content-sha256' header does not match what was computed.",
		})
	case mode.chunked():
		res.Length = -1
		if s := r.Header.Get("X-Amz-Decoded-Content-Length"); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				return nil, newError(codeInvalidArgument, "x-amz-decoded-content-length must be a non-negative integer.")
			}
			res.Length, vr.limit = n, n
		}
		dec := newChunkedReader(body, mode, signer, declared)
		vr.src, vr.trailers = dec, dec.trailers
		for _, name := range declared {
			h, _ := newChecksum(name)
			checks = append(checks, &digestCheck{
				name: name, h: h, trailer: true,
				code: codeBadDigest, msg: "The " + name + " you specified did not match the calculated checksum.",
			})
		}
	}
	vr.checks = checks
	res.Body = vr
	return res, nil
}

// headerChecks returns the checks that Content-MD5 and x-amz-checksum-*
// request headers ask for.
func headerChecks(r *http.Request) ([]*digestCheck, *Error) {
	var checks []*digestCheck
	if v := r.Header.Get("Content-Md5"); v != "" {
		want, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(want) != md5.Size {
			return nil, newError(codeInvalidDigest, "The Content-MD5 you specified is not valid.")
		}
		checks = append(checks, &digestCheck{
			name: "Content-MD5", h: md5.New(), want: want,
			code: codeBadDigest, msg: "The Content-MD5 you specified did not match what we received.",
		})
	}
	// CompleteMultipartUpload's checksum headers describe the whole
	// object, not the XML body that names its parts.
	if r.Method == http.MethodPost && r.URL.Query().Has("uploadId") {
		return checks, nil
	}
	for _, name := range checksumNames {
		v := r.Header.Get(name)
		if v == "" {
			continue
		}
		h, _ := newChecksum(name)
		want, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(want) != h.Size() {
			return nil, newError(codeInvalidRequest, "Value for "+name+" header is invalid.")
		}
		checks = append(checks, &digestCheck{
			name: name, h: h, want: want,
			code: codeBadDigest, msg: "The " + name + " you specified did not match the calculated checksum.",
		})
	}
	return checks, nil
}

// declaredTrailers returns the lower-case trailer names x-amz-trailer
// announces. Only checksum trailers are understood.
func declaredTrailers(h http.Header) ([]string, *Error) {
	var names []string
	for _, v := range h.Values("X-Amz-Trailer") {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" || contains(names, name) {
				continue
			}
			if _, ok := newChecksum(name); !ok {
				return nil, newError(codeInvalidRequest, "unsupported checksum trailer "+strconv.Quote(name))
			}
			names = append(names, name)
		}
	}
	return names, nil
}

// digestCheck is one digest of the payload compared at EOF.
type digestCheck struct {
	name    string
	h       hash.Hash
	want    []byte // from a header; nil when it arrives as a trailer
	trailer bool   // want is the base64 trailer value named name
	code    string // S3 error code on mismatch
	msg     string
}

// verifyingReader passes src through, feeding every check, and at src's
// EOF replaces io.EOF with the first failed check's *Error.
type verifyingReader struct {
	src      io.Reader
	checks   []*digestCheck
	limit    int64 // the payload must be exactly this long; -1 when unknown
	n        int64
	trailers http.Header // the decoder's trailers, complete at src's EOF; nil for a raw body
	out      http.Header // Result.Trailers
	err      error
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.src.Read(p)
	if v.limit >= 0 && v.n+int64(n) > v.limit {
		n = int(v.limit - v.n)
		err = newError(codeInvalidRequest, "The aws-chunked payload is longer than x-amz-decoded-content-length.")
	}
	v.n += int64(n)
	for _, c := range v.checks {
		c.h.Write(p[:n])
	}
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF:
		err = v.finish()
	case errors.Is(err, io.ErrUnexpectedEOF):
		err = newError(codeIncompleteBody, "You did not provide the number of bytes specified by the Content-Length HTTP header.")
	}
	v.err = err
	return n, err
}

// finish runs the end-of-payload checks and returns io.EOF if all pass.
func (v *verifyingReader) finish() error {
	if v.limit >= 0 && v.n < v.limit {
		return newError(codeIncompleteBody, "The aws-chunked payload is shorter than x-amz-decoded-content-length.")
	}
	for name, vals := range v.trailers {
		v.out[name] = vals
	}
	for _, c := range v.checks {
		want := c.want
		if c.trailer {
			var err error
			want, err = base64.StdEncoding.DecodeString(v.out.Get(c.name))
			if err != nil || len(want) != c.h.Size() {
				return newError(codeInvalidRequest, "Value for "+c.name+" trailing header is invalid.")
			}
		}
		if string(c.h.Sum(nil)) != string(want) {
			return newError(c.code, c.msg)
		}
	}
	return io.EOF
}
