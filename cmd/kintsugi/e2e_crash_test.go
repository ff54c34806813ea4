package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
)

// slowReader paces a body so that a test can kill a process mid-transfer.
type slowReader struct {
	r       io.ReadSeeker
	sent    int64
	trigger int64
	fired   chan struct{}
	once    bool
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(p) > 256<<10 {
		p = p[:256<<10]
	}
	n, err := s.r.Read(p)
	s.sent += int64(n)
	if s.sent >= s.trigger && !s.once {
		s.once = true
		close(s.fired)
		time.Sleep(2 * time.Second) // hold the stream open while the test kills
	}
	return n, err
}

func (s *slowReader) Seek(off int64, whence int) (int64, error) {
	s.sent = 0
	return s.r.Seek(off, whence)
}

func sumOf(b []byte) [32]byte { return sha256.Sum256(b) }

// TestCrashSafety kills a gateway and a node in the middle of 64 MiB PUTs:
// afterwards a GET returns the old version or the new one, never a mix, and
// reads after overwrite and delete agree across GET, HEAD and LIST.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test; run without -short")
	}
	ctx := context.Background()
	c := proctest.StartCluster(t, testBin, proctest.Options{})
	cl := s3Client(c, 0)
	mustCreateBucket(t, ctx, cl, "crash")
	const big = 64 << 20

	oldBody := genBytes(7, 1<<20)
	oldSum := sumOf(oldBody)
	newSum := genSum(8, big)

	t.Run("GatewayKilledMidPut", func(t *testing.T) {
		if err := putObject(ctx, cl, "crash", "victim", bytes.NewReader(oldBody), int64(len(oldBody))); err != nil {
			t.Fatal(err)
		}
		body := &slowReader{r: newGen(8, big), trigger: 24 << 20, fired: make(chan struct{})}
		errc := make(chan error, 1)
		go func() { errc <- putObject(ctx, cl, "crash", "victim", body, big) }()
		<-body.fired
		c.Gateways[0].Signal(syscall.SIGKILL)
		if err := <-errc; err == nil {
			t.Fatal("PUT succeeded although its gateway was killed mid-body")
		}
		c.Gateways[0].Kill()
		if err := c.Gateways[0].Restart(ctx); err != nil {
			t.Fatal(err)
		}
		cl = s3Client(c, 0)
		sum, n, err := getSum(ctx, cl, "crash", "victim")
		if err != nil {
			t.Fatalf("GET after gateway crash: %v", err)
		}
		if sum != oldSum && sum != newSum {
			t.Fatalf("GET after gateway crash returned %d bytes matching neither version", n)
		}
		if sum != oldSum {
			t.Fatalf("GET returned the new version although its PUT was never completed")
		}
	})

	t.Run("NodeKilledMidStage", func(t *testing.T) {
		if err := putObject(ctx, cl, "crash", "victim2", bytes.NewReader(oldBody), int64(len(oldBody))); err != nil {
			t.Fatal(err)
		}
		body := &slowReader{r: newGen(8, big), trigger: 24 << 20, fired: make(chan struct{})}
		errc := make(chan error, 1)
		go func() { errc <- putObject(ctx, cl, "crash", "victim2", body, big) }()
		<-body.fired
		c.Nodes[2].Kill()
		putErr := <-errc
		sum, n, err := getSum(ctx, cl, "crash", "victim2")
		if err != nil {
			t.Fatalf("GET after node crash: %v (put: %v)", err, putErr)
		}
		switch {
		case sum == newSum && putErr == nil:
		case sum == oldSum && putErr != nil:
		case sum == oldSum && putErr == nil:
			t.Fatalf("PUT acknowledged but GET returns the old version")
		default:
			t.Fatalf("GET after node crash returned %d bytes matching neither version (put: %v)", n, putErr)
		}
		if err := c.Nodes[2].Restart(ctx); err != nil {
			t.Fatal(err)
		}
		sum2, _, err := getSum(ctx, cl, "crash", "victim2")
		if err != nil || sum2 != sum {
			t.Fatalf("after node restart: err %v, same version %v", err, sum2 == sum)
		}
	})

	t.Run("ReadAfterWrite", func(t *testing.T) {
		v1, v2 := genBytes(11, 300<<10), genBytes(12, 2<<20+17)
		for _, v := range [][]byte{v1, v2} {
			if err := putObject(ctx, cl, "crash", "raw/key", bytes.NewReader(v), int64(len(v))); err != nil {
				t.Fatal(err)
			}
		}
		got, err := getBytes(ctx, cl, "crash", "raw/key")
		if err != nil || !bytes.Equal(got, v2) {
			t.Fatalf("GET after overwrite: err %v, newest %v", err, bytes.Equal(got, v2))
		}
		head, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("crash"), Key: aws.String("raw/key")})
		if err != nil || aws.ToInt64(head.ContentLength) != int64(len(v2)) {
			t.Fatalf("HEAD after overwrite: err %v, size %d want %d", err, aws.ToInt64(head.ContentLength), len(v2))
		}
		list, err := cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("crash"), Prefix: aws.String("raw/")})
		if err != nil || len(list.Contents) != 1 || aws.ToInt64(list.Contents[0].Size) != int64(len(v2)) ||
			aws.ToString(list.Contents[0].ETag) != aws.ToString(head.ETag) {
			t.Fatalf("LIST after overwrite disagrees with HEAD: err %v, %+v", err, list)
		}
		if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("crash"), Key: aws.String("raw/key")}); err != nil {
			t.Fatal(err)
		}
		if _, err := getBytes(ctx, cl, "crash", "raw/key"); apiCode(err) != "NoSuchKey" {
			t.Fatalf("GET after delete: %v, want NoSuchKey", err)
		}
		if _, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("crash"), Key: aws.String("raw/key")}); httpStatus(err) != 404 {
			t.Fatalf("HEAD after delete: %v, want 404", err)
		}
		list, err = cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("crash"), Prefix: aws.String("raw/")})
		if err != nil || len(list.Contents) != 0 {
			t.Fatalf("LIST after delete: err %v, %d objects", err, len(list.Contents))
		}
		// A node that missed the delete must not bring the object back.
		c.Nodes[1].Kill()
		if err := c.Nodes[1].Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := getBytes(ctx, cl, "crash", "raw/key"); apiCode(err) != "NoSuchKey" {
			t.Fatalf("GET after delete and node restart: %v, want NoSuchKey", err)
		}
	})
}
