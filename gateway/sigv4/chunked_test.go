package sigv4

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash/crc32"
	"hash/crc64"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// streamSpec describes an aws-chunked body the way a client builds it,
// written from the AWS documentation without the package's own code.
type streamSpec struct {
	chunkSize int
	key       []byte // signing key; nil for unsigned chunks
	seed      string // the request's signature, which the first chunk signature chains from
	trailers  []string
	lf        bool // end trailer lines with a bare \n and add an empty line before the signature, as minio-go does
}

func (s streamSpec) encode(payload []byte) []byte {
	var b bytes.Buffer
	prev := s.seed
	scope := signTime.Format("20060102") + "/" + testRegion + "/s3/aws4_request"
	amzDate := signTime.Format("20060102T150405Z")
	chunk := func(data []byte) {
		b.WriteString(strconv.FormatInt(int64(len(data)), 16))
		if s.key != nil {
			prev = hmacHex(s.key, "AWS4-HMAC-SHA256-PAYLOAD\n"+amzDate+"\n"+scope+"\n"+prev+"\n"+sha256Hex(nil)+"\n"+sha256Hex(data))
			b.WriteString(";chunk-signature=" + prev)
		}
		b.WriteString("\r\n")
		b.Write(data)
	}
	for off := 0; off < len(payload); off += s.chunkSize {
		chunk(payload[off:min(off+s.chunkSize, len(payload))])
		b.WriteString("\r\n")
	}
	chunk(nil)
	signedTrailer := s.key != nil && s.trailers != nil
	if !signedTrailer && len(s.trailers) == 0 {
		b.WriteString("\r\n")
		return b.Bytes()
	}
	var canon strings.Builder
	for _, t := range s.trailers {
		canon.WriteString(t + "\n")
		if s.lf {
			b.WriteString(t + "\n")
		} else {
			b.WriteString(t + "\r\n")
		}
	}
	if s.lf {
		b.WriteString("\r\n")
	}
	if signedTrailer {
		sig := hmacHex(s.key, "AWS4-HMAC-SHA256-TRAILER\n"+amzDate+"\n"+scope+"\n"+prev+"\n"+sha256Hex([]byte(canon.String())))
		b.WriteString("x-amz-trailer-signature:" + sig + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// streamingRequest signs a PUT of payload in the given x-amz-content-sha256
// mode with the SDK signer, encodes its aws-chunked body and returns the
// request as the server receives it, with the encoded body.
func streamingRequest(t testing.TB, mode string, payload []byte, spec streamSpec, declared string) (*http.Request, []byte) {
	t.Helper()
	r := newClientRequest(t, "PUT", "/bucket/streamed object", "", nil)
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(payload)))
	if declared != "" {
		r.Header.Set("X-Amz-Trailer", declared)
	}
	if spec.key != nil {
		spec.seed = strings.Repeat("0", 64)
	}
	r.ContentLength = int64(len(spec.encode(payload)))
	signHeader(t, r, testSecret, mode, signTime)
	if spec.key != nil {
		spec.seed = authSignature(t, r)
	}
	body := spec.encode(payload)
	if int64(len(body)) != r.ContentLength {
		t.Fatalf("encoded length changed: %d != %d", len(body), r.ContentLength)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return toServer(t, r), body
}

func testPayload(n int) []byte {
	p := make([]byte, n)
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}

func b64(sum []byte) string { return base64.StdEncoding.EncodeToString(sum) }

func TestSignedChunks(t *testing.T) {
	key := testSigningKey(testSecret, signTime)
	for _, tc := range []struct {
		name      string
		size      int
		chunkSize int
	}{
		{"empty", 0, 64 << 10},
		{"one byte", 1, 64 << 10},
		{"one chunk", 1000, 64 << 10},
		{"exact chunks", 3 * 8192, 8192},
		{"ragged", 200_000, 64 << 10},
		{"big chunk", 5<<20 + 17, 4 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := testPayload(tc.size)
			sr, _ := streamingRequest(t, streamingSigned, payload, streamSpec{chunkSize: tc.chunkSize, key: key}, "")
			res, err := testVerifier().Verify(sr)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.Length != int64(tc.size) {
				t.Errorf("Length = %d, want %d", res.Length, tc.size)
			}
			got, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("decoded %d bytes, want %d, equal=false", len(got), len(payload))
			}
		})
	}
}

func TestSignedChunksSmallReads(t *testing.T) {
	key := testSigningKey(testSecret, signTime)
	payload := testPayload(40_000)
	sr, _ := streamingRequest(t, streamingSigned, payload, streamSpec{chunkSize: 8192, key: key}, "")
	sr.Body = io.NopCloser(iotest.HalfReader(sr.Body))
	res, err := testVerifier().Verify(sr)
	if err != nil {
		t.Fatal(err)
	}
	if err := iotest.TestReader(res.Body, payload); err != nil {
		t.Fatal(err)
	}
}

func TestSignedChunksTampered(t *testing.T) {
	key := testSigningKey(testSecret, signTime)
	payload := testPayload(3*8192 + 100)
	spec := streamSpec{chunkSize: 8192, key: key}
	chunkHeader := len("2000;chunk-signature=") + 64 + 2
	chunkLen := chunkHeader + 8192 + 2
	tests := []struct {
		name   string
		mutate func(b []byte) []byte
		code   string
		maxOut int // bytes that may be returned before the error
	}{
		{"flipped byte in chunk 2", func(b []byte) []byte {
			b[chunkLen+chunkHeader+100] ^= 0x20
			return b
		}, codeSignatureDoesNotMatch, 2 * 8192},
		{"flipped signature of chunk 1", func(b []byte) []byte {
			i := len("2000;chunk-signature=")
			b[i] = b[i] ^ 1
			return b
		}, codeSignatureDoesNotMatch, 8192},
		{"chunks swapped", func(b []byte) []byte {
			c1 := bytes.Clone(b[:chunkLen])
			copy(b, b[chunkLen:2*chunkLen])
			copy(b[chunkLen:], c1)
			return b
		}, codeSignatureDoesNotMatch, 8192},
		{"final chunk signature wrong", func(b []byte) []byte {
			i := bytes.LastIndex(b, []byte("0;chunk-signature=")) + len("0;chunk-signature=")
			b[i] ^= 1
			return b
		}, codeSignatureDoesNotMatch, len(payload)},
		{"truncated mid chunk", func(b []byte) []byte { return b[:chunkLen+500] }, codeIncompleteBody, 8192 + 500 - chunkHeader},
		{"truncated before final chunk", func(b []byte) []byte {
			return b[:bytes.LastIndex(b, []byte("0;chunk-signature="))]
		}, codeIncompleteBody, len(payload)},
		{"final chunk missing", func(b []byte) []byte {
			return b[:len(b)-(len("0;chunk-signature=")+64+4)]
		}, codeIncompleteBody, len(payload)},
		{"missing CRLF after data", func(b []byte) []byte {
			b[chunkHeader+8192] = 'x'
			return b
		}, codeInvalidRequest, 8192},
		{"garbage after final chunk", func(b []byte) []byte { return append(b, "trailing junk"...) }, codeInvalidRequest, len(payload)},
		{"chunk too large", func(b []byte) []byte {
			return []byte("1000001;chunk-signature=" + strings.Repeat("0", 64) + "\r\n")
		}, codeInvalidRequest, 0},
		{"bad size", func(b []byte) []byte {
			return []byte("zz;chunk-signature=" + strings.Repeat("0", 64) + "\r\n")
		}, codeInvalidRequest, 0},
		{"no signature", func(b []byte) []byte { return []byte("10\r\n0123456789abcdef\r\n") }, codeInvalidRequest, 0},
		{"header line too long", func(b []byte) []byte { return bytes.Repeat([]byte("0"), 10000) }, codeInvalidRequest, 0},
		{"empty body", func(b []byte) []byte { return nil }, codeIncompleteBody, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sr, body := streamingRequest(t, streamingSigned, payload, spec, "")
			sr.Body = io.NopCloser(bytes.NewReader(tt.mutate(bytes.Clone(body))))
			res, err := testVerifier().Verify(sr)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got, err := io.ReadAll(res.Body)
			wantCode(t, err, tt.code)
			if len(got) > tt.maxOut {
				t.Errorf("returned %d bytes before failing, want at most %d", len(got), tt.maxOut)
			}
			// Chunk data streams before its signature is checked, so only
			// failures outside the data keep the returned prefix intact.
			if tt.name != "flipped byte in chunk 2" && tt.name != "chunks swapped" && !bytes.Equal(got, payload[:len(got)]) {
				t.Errorf("returned bytes differ from the payload")
			}
		})
	}
}

func TestSignedChunksConnectionCut(t *testing.T) {
	key := testSigningKey(testSecret, signTime)
	payload := testPayload(20_000)
	sr, body := streamingRequest(t, streamingSigned, payload, streamSpec{chunkSize: 8192, key: key}, "")
	// What net/http's body returns when the client hangs up early.
	sr.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body[:9000]), iotest.ErrReader(io.ErrUnexpectedEOF)))
	res, err := testVerifier().Verify(sr)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(res.Body)
	wantCode(t, err, codeIncompleteBody)
}

func TestDecodedLengthMismatch(t *testing.T) {
	key := testSigningKey(testSecret, signTime)
	payload := testPayload(10_000)
	for _, tc := range []struct {
		declared string
		code     string
		maxOut   int
	}{
		{"10001", codeIncompleteBody, 10_000},
		{"9999", codeInvalidRequest, 9999},
		{"-1", codeInvalidArgument, 0},
	} {
		t.Run(tc.declared, func(t *testing.T) {
			r := newClientRequest(t, "PUT", "/bucket/key", "", nil)
			r.Header.Set("X-Amz-Decoded-Content-Length", tc.declared)
			spec := streamSpec{chunkSize: 4096, key: key, seed: strings.Repeat("0", 64)}
			r.ContentLength = int64(len(spec.encode(payload)))
			signHeader(t, r, testSecret, streamingSigned, signTime)
			spec.seed = authSignature(t, r)
			r.Body = io.NopCloser(bytes.NewReader(spec.encode(payload)))
			res, err := testVerifier().Verify(toServer(t, r))
			if tc.code == codeInvalidArgument {
				wantCode(t, err, tc.code)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(res.Body)
			wantCode(t, err, tc.code)
			if len(got) > tc.maxOut {
				t.Errorf("returned %d bytes, more than %d", len(got), tc.maxOut)
			}
		})
	}
}

// checksumOf returns the base64 checksum S3 expects in x-amz-checksum-<alg>.
func checksumOf(t testing.TB, alg string, p []byte) string {
	t.Helper()
	switch alg {
	case "crc32":
		return b64(be32(crc32.ChecksumIEEE(p)))
	case "crc32c":
		return b64(be32(crc32.Checksum(p, crc32.MakeTable(crc32.Castagnoli))))
	case "crc64nvme":
		return b64(be64(crc64.Checksum(p, crc64.MakeTable(0x9a6c9329ac4bc9b5))))
	case "sha1":
		s := sha1.Sum(p)
		return b64(s[:])
	case "sha256":
		s := sha256.Sum256(p)
		return b64(s[:])
	case "sha512":
		s := sha512.Sum512(p)
		return b64(s[:])
	case "md5":
		s := md5.Sum(p)
		return b64(s[:])
	}
	t.Fatalf("unknown checksum %s", alg)
	return ""
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
func be64(v uint64) []byte { return append(be32(uint32(v>>32)), be32(uint32(v))...) }

func TestUnsignedTrailer(t *testing.T) {
	payload := testPayload(100_000)
	for _, alg := range []string{"crc32", "crc32c", "crc64nvme", "sha1", "sha256", "sha512", "md5"} {
		name := "x-amz-checksum-" + alg
		for _, lf := range []bool{false, true} {
			t.Run(alg+"/lf="+strconv.FormatBool(lf), func(t *testing.T) {
				sum := checksumOf(t, alg, payload)
				sr, _ := streamingRequest(t, streamingUnsignedTrail, payload,
					streamSpec{chunkSize: 64 << 10, trailers: []string{name + ":" + sum}, lf: lf}, name)
				res, err := testVerifier().Verify(sr)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if len(res.Trailers) != 0 {
					t.Errorf("Trailers before EOF: %v", res.Trailers)
				}
				got, err := io.ReadAll(res.Body)
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if !bytes.Equal(got, payload) {
					t.Fatal("decoded payload differs")
				}
				if v := res.Trailers.Get(name); v != sum {
					t.Errorf("Trailers[%s] = %q, want %q", name, v, sum)
				}
			})
		}
		t.Run(alg+"/wrong", func(t *testing.T) {
			wrong := checksumOf(t, alg, []byte("something else"))
			sr, _ := streamingRequest(t, streamingUnsignedTrail, payload,
				streamSpec{chunkSize: 64 << 10, trailers: []string{name + ":" + wrong}}, name)
			res, err := testVerifier().Verify(sr)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got, err := io.ReadAll(res.Body)
			wantCode(t, err, codeBadDigest)
			if len(got) != len(payload) {
				t.Errorf("returned %d bytes", len(got))
			}
		})
	}
}

func TestUnsignedTrailerErrors(t *testing.T) {
	payload := testPayload(5000)
	good := "x-amz-checksum-crc32:" + checksumOf(t, "crc32", payload)
	tests := []struct {
		name      string
		declared  string
		trailers  []string
		raw       string // replaces the encoded body when set
		verifyErr string
		readErr   string
	}{
		{name: "no trailer declared or sent"},
		{name: "declared but missing", declared: "x-amz-checksum-crc32", readErr: codeInvalidRequest},
		{name: "sent but not declared", trailers: []string{good}, readErr: codeInvalidRequest},
		{name: "sent twice", declared: "x-amz-checksum-crc32", trailers: []string{good, good}, readErr: codeInvalidRequest},
		{name: "bad base64", declared: "x-amz-checksum-crc32", trailers: []string{"x-amz-checksum-crc32:!!!!"}, readErr: codeInvalidRequest},
		{name: "not a header line", declared: "x-amz-checksum-crc32", trailers: []string{"garbage"}, readErr: codeInvalidRequest},
		{name: "unsupported checksum", declared: "x-amz-checksum-md4", verifyErr: codeInvalidRequest},
		{name: "unexpected signature", declared: "x-amz-checksum-crc32", trailers: []string{good, "x-amz-trailer-signature:" + strings.Repeat("a", 64)}, readErr: codeInvalidRequest},
		{name: "signed chunk header accepted", raw: "5;chunk-signature=" + strings.Repeat("a", 64) + "\r\nhello\r\n0\r\n\r\n", readErr: codeIncompleteBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sr, _ := streamingRequest(t, streamingUnsignedTrail, payload, streamSpec{chunkSize: 1000, trailers: tt.trailers}, tt.declared)
			if tt.raw != "" {
				sr.Body = io.NopCloser(strings.NewReader(tt.raw))
			}
			res, err := testVerifier().Verify(sr)
			if tt.verifyErr != "" {
				wantCode(t, err, tt.verifyErr)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got, err := io.ReadAll(res.Body)
			if tt.readErr != "" {
				wantCode(t, err, tt.readErr)
				return
			}
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("read %d bytes, %v", len(got), err)
			}
		})
	}
}

func TestSignedTrailer(t *testing.T) {
	key := testSigningKey(testSecret, signTime)
	payload := testPayload(70_000)
	name := "x-amz-checksum-crc32c"
	sum := checksumOf(t, "crc32c", payload)
	for _, lf := range []bool{false, true} {
		t.Run("lf="+strconv.FormatBool(lf), func(t *testing.T) {
			sr, _ := streamingRequest(t, streamingSignedTrailer, payload,
				streamSpec{chunkSize: 64 << 10, key: key, trailers: []string{name + ":" + sum}, lf: lf}, name)
			res, err := testVerifier().Verify(sr)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got, err := io.ReadAll(res.Body)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("read %d bytes, %v", len(got), err)
			}
			if res.Trailers.Get(name) != sum {
				t.Errorf("Trailers = %v", res.Trailers)
			}
		})
	}
	t.Run("tampered trailer value", func(t *testing.T) {
		sr, body := streamingRequest(t, streamingSignedTrailer, payload,
			streamSpec{chunkSize: 64 << 10, key: key, trailers: []string{name + ":" + sum}}, name)
		other := checksumOf(t, "crc32c", []byte("x"))
		sr.Body = io.NopCloser(bytes.NewReader(bytes.Replace(body, []byte(sum), []byte(other), 1)))
		res, err := testVerifier().Verify(sr)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(res.Body)
		wantCode(t, err, codeSignatureDoesNotMatch)
	})
	t.Run("signed wrong checksum", func(t *testing.T) {
		wrong := checksumOf(t, "crc32c", []byte("x"))
		sr, _ := streamingRequest(t, streamingSignedTrailer, payload,
			streamSpec{chunkSize: 64 << 10, key: key, trailers: []string{name + ":" + wrong}}, name)
		res, err := testVerifier().Verify(sr)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(res.Body)
		wantCode(t, err, codeBadDigest)
	})
	t.Run("signature missing", func(t *testing.T) {
		sr, body := streamingRequest(t, streamingSignedTrailer, payload,
			streamSpec{chunkSize: 64 << 10, key: key, trailers: []string{name + ":" + sum}}, name)
		i := bytes.Index(body, []byte("x-amz-trailer-signature:"))
		sr.Body = io.NopCloser(bytes.NewReader(append(body[:i:i], "\r\n"...)))
		res, err := testVerifier().Verify(sr)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(res.Body)
		wantCode(t, err, codeIncompleteBody)
	})
}

func TestUnauthenticatedSignedStream(t *testing.T) {
	key := testSigningKey("a secret the server does not know", signTime)
	payload := testPayload(30_000)
	sr, _ := streamingRequest(t, streamingSigned, payload, streamSpec{chunkSize: 8192, key: key}, "")
	res, err := Unauthenticated(sr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(res.Body)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
}

func TestChecksumVectors(t *testing.T) {
	check := []byte("123456789")
	for _, tc := range []struct {
		name string
		want []byte
	}{
		{"x-amz-checksum-crc32", be32(0xCBF43926)},
		{"x-amz-checksum-crc32c", be32(0xE3069283)},
		{"x-amz-checksum-crc64nvme", be64(0xAE8B14860A799888)},
	} {
		h, ok := newChecksum(tc.name)
		if !ok {
			t.Fatalf("%s unsupported", tc.name)
		}
		h.Write(check)
		if got := h.Sum(nil); !bytes.Equal(got, tc.want) {
			t.Errorf("%s(123456789) = %x, want %x", tc.name, got, tc.want)
		}
	}
	if _, ok := newChecksum("x-amz-checksum-xxhash64"); ok {
		t.Error("xxhash64 checksum accepted")
	}
}
