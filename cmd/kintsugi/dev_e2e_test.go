package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
)

// TestDevCluster runs `kintsugi dev` as `make run` does: objects of every
// storage kind (packed shards, shard files) read back exact, also after a
// restart on the same data directory, and SIGTERM exits 0.
func TestDevCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kintsugi dev process; run without -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	const ak, sk = "devtestkey", "devtestsecret1234567890"
	start := func() *proctest.Proc {
		t.Helper()
		p, err := proctest.Start(ctx, "dev", testBin, filepath.Join(dir, "dev.log"),
			[]string{"KINTSUGI_ACCESS_KEY=" + ak, "KINTSUGI_SECRET_KEY=" + sk},
			"dev", "--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0",
			"--node-base-port", "0", "--scrub-listen", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	p := start()
	cl := procClient(p, ak, sk)
	if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("dev")}); err != nil {
		t.Fatalf("CreateBucket: %v\n%s", err, p.LogTail(4000))
	}
	sizes := []int{0, 1, 4 << 10, 100 << 10, 1 << 20, 3<<20 + 17}
	objs := map[string][]byte{}
	for i, n := range sizes {
		key := fmt.Sprintf("obj-%d", n)
		objs[key] = genBytes(int64(i+1), int64(n))
		if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("dev"), Key: aws.String(key), Body: bytes.NewReader(objs[key])}); err != nil {
			t.Fatalf("PUT %s: %v", key, err)
		}
	}
	check := func(cl *s3.Client) {
		t.Helper()
		for key, want := range objs {
			out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("dev"), Key: aws.String(key)})
			if err != nil {
				t.Fatalf("GET %s: %v", key, err)
			}
			got, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("GET %s: %d bytes, %v; want the %d bytes written", key, len(got), err, len(want))
			}
		}
	}
	check(cl)
	packs, _ := filepath.Glob(filepath.Join(dir, "data", "n1", "packs", "*.pack"))
	shardFiles, _ := filepath.Glob(filepath.Join(dir, "data", "n1", "shards", "*", "*", "*"))
	if len(packs) == 0 || len(shardFiles) == 0 {
		t.Errorf("node n1 has %d pack files and %d shard files; want both kinds", len(packs), len(shardFiles))
	}
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatalf("dev after SIGTERM: %v\n%s", err, p.LogTail(4000))
	}
	p = start()
	check(procClient(p, ak, sk))
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatalf("dev after SIGTERM: %v", err)
	}
}
