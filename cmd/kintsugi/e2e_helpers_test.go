package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
)

// testBin is the kintsugi binary the multi-process tests run, built once.
var testBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kintsugi-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testBin, err = proctest.BuildBinary(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// s3Client returns an aws-sdk-go-v2 client for gateway i of c. Retries are
// off so tests see each answer as the gateway gave it.
func s3Client(c *proctest.Cluster, i int) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint:     aws.String(c.Endpoint(i)),
		Region:           "us-east-1",
		UsePathStyle:     true,
		Credentials:      credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Timeout: 5 * time.Minute},
	})
}

// genReader yields size deterministic pseudo-random bytes derived from seed,
// without holding them: block b is a function of (seed, b). It seeks, so the
// SDK can hash then send it.
type genReader struct {
	seed, size, off int64
}

func newGen(seed, size int64) *genReader { return &genReader{seed: seed, size: size} }

func (g *genReader) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	if rem := g.size - g.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	fillGen(p, g.seed, g.off)
	g.off += int64(len(p))
	return len(p), nil
}

// genWord is word w (bytes 8w to 8w+7, little-endian) of seed's stream.
func genWord(seed, w int64) uint64 {
	x := uint64(w)*0x9E3779B97F4A7C15 ^ uint64(seed)*0xBF58476D1CE4E5B9
	x ^= x >> 31
	x *= 0x94D049BB133111EB
	x ^= x >> 29
	return x
}

// fillGen writes bytes [off, off+len(p)) of seed's stream into p.
//
// The race detector ignores it (go:norace): instrumented, this loop made
// the test process, not the cluster, the bottleneck of every test that
// streams tens of MiB or more (about 25 MB/s). The multi-process tests'
// servers are separate processes, and p belongs to the one goroutine that
// reads, so nothing of what the detector should watch runs here.
//
//go:norace
func fillGen(p []byte, seed, off int64) {
	var word [8]byte
	for len(p) > 0 {
		if off%8 == 0 && len(p) >= 8 {
			binary.LittleEndian.PutUint64(p, genWord(seed, off/8))
			p, off = p[8:], off+8
			continue
		}
		binary.LittleEndian.PutUint64(word[:], genWord(seed, off/8))
		c := copy(p, word[off%8:])
		p, off = p[c:], off+int64(c)
	}
}

func (g *genReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += g.off
	case io.SeekEnd:
		off += g.size
	}
	if off < 0 {
		return 0, errors.New("negative seek")
	}
	g.off = off
	return off, nil
}

// genSum is the sha256 of newGen(seed, size)'s bytes.
func genSum(seed, size int64) [32]byte {
	h := sha256.New()
	io.Copy(h, newGen(seed, size))
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func genBytes(seed, size int64) []byte {
	b := make([]byte, size)
	io.ReadFull(newGen(seed, size), b)
	return b
}

func putObject(ctx context.Context, cl *s3.Client, bucket, key string, body io.ReadSeeker, size int64) error {
	_, err := cl.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          body,
		ContentLength: aws.Int64(size),
	})
	return err
}

// getSum GETs an object and returns the sha256 of its body and its length.
func getSum(ctx context.Context, cl *s3.Client, bucket, key string) ([32]byte, int64, error) {
	var sum [32]byte
	out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return sum, 0, err
	}
	defer out.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	if err != nil {
		return sum, n, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, n, nil
}

func getBytes(ctx context.Context, cl *s3.Client, bucket, key string) ([]byte, error) {
	out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	_, err = io.Copy(&buf, out.Body)
	return buf.Bytes(), err
}

// apiCode returns the S3 error code of err, or "" if it is not an API error.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// apiMessage returns the S3 error message of a failed SDK call, or "".
func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

// httpStatus returns the HTTP status of a failed SDK call, or 0.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func mustCreateBucket(t *testing.T, ctx context.Context, cl *s3.Client, bucket string) {
	t.Helper()
	if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("CreateBucket %s: %v", bucket, err)
	}
}

// TestGenReader: reads of any length and alignment, after any seek, give
// byte i of the stream as byte i%8 of word i/8, and the stream of a seed
// is the one it always was (its digest is pinned).
func TestGenReader(t *testing.T) {
	const seed, size = 42, 1<<16 + 5
	want := make([]byte, size)
	for i := range want {
		want[i] = byte(genWord(seed, int64(i/8)) >> (8 * (i % 8)))
	}
	for _, tc := range []struct{ start, chunk int }{{0, 1}, {0, 3}, {0, 8}, {5, 7}, {3, 4096}, {13, 1 << 17}, {size, 8}} {
		g := newGen(seed, size)
		if _, err := g.Seek(int64(tc.start), io.SeekStart); err != nil {
			t.Fatal(err)
		}
		var got []byte
		buf := make([]byte, tc.chunk)
		for {
			n, err := g.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil || n == 0 {
				t.Fatalf("start %d chunk %d: read %d, %v", tc.start, tc.chunk, n, err)
			}
		}
		if !bytes.Equal(got, want[tc.start:]) {
			t.Fatalf("start %d chunk %d: %d bytes differ from the stream", tc.start, tc.chunk, len(got))
		}
	}
	if got, want := fmt.Sprintf("%x", genSum(seed, size)), "b2088557847b46bbe155e2ebdbf402989bd8014ad1fb3ce4f568d40bf7b224f4"; got != want {
		t.Fatalf("genSum(%d, %d) = %s, want %s", seed, size, got, want)
	}
}
