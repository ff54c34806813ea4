package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
)

// TestServerKilledMidWrite kills `kintsugi server` with SIGKILL while
// clients PUT concurrently, restarts it on the same drives, and reads every
// object back: each acknowledged PUT returns exactly its bytes, each
// unacknowledged one is whole or absent.
func TestServerKilledMidWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test; run without -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	const ak, sk = "servertestkey", "servertestsecret123456"
	var drives []string
	for i := 1; i <= 6; i++ {
		drives = append(drives, filepath.Join(dir, fmt.Sprintf("drive%d", i)))
	}
	p, err := proctest.Start(ctx, "server", testBin, filepath.Join(dir, "server.log"),
		[]string{"KINTSUGI_ACCESS_KEY=" + ak, "KINTSUGI_SECRET_KEY=" + sk},
		"server", "--drives", strings.Join(drives, ","), "--listen", "127.0.0.1:0", "--scrub-interval", "0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	cl := procClient(p, ak, sk)
	mustCreateBucket(t, ctx, cl, "box")

	// Sizes cover inline small objects, one stripe and several.
	sizes := []int64{1 << 10, 64 << 10, 1 << 20, 3<<20 + 5}
	type put struct {
		key  string
		body []byte
		ack  bool
	}
	var (
		mu    sync.Mutex
		puts  []*put
		acked int
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				seed := int64(w*100000 + i)
				pt := &put{key: fmt.Sprintf("w%d/obj-%d", w, i), body: genBytes(seed, sizes[(w+i)%len(sizes)])}
				mu.Lock()
				puts = append(puts, pt)
				mu.Unlock()
				_, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("box"), Key: aws.String(pt.key), Body: bytes.NewReader(pt.body)})
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				pt.ack = true
				acked++
				mu.Unlock()
			}
		}()
	}
	// Kill once a fair number of writes are acknowledged, with eight
	// still in flight.
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := acked
		mu.Unlock()
		if n >= 40 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Kill()
	close(stop)
	wg.Wait()
	if acked == 0 {
		t.Fatalf("no PUT acknowledged before the kill\n%s", p.LogTail(4000))
	}

	if err := p.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	cl = procClient(p, ak, sk)
	var unacked, unackedWhole int
	for _, pt := range puts {
		got, err := getBytes(ctx, cl, "box", pt.key)
		switch {
		case pt.ack && err != nil:
			t.Errorf("acknowledged %s (%d bytes): GET after restart: %v", pt.key, len(pt.body), err)
		case pt.ack && !bytes.Equal(got, pt.body):
			t.Errorf("acknowledged %s: GET after restart returned %d bytes that differ from the %d written", pt.key, len(got), len(pt.body))
		case !pt.ack && err == nil && !bytes.Equal(got, pt.body):
			t.Errorf("unacknowledged %s: GET returned %d bytes, neither absent nor the %d written", pt.key, len(got), len(pt.body))
		case !pt.ack && err != nil && apiCode(err) != "NoSuchKey":
			t.Errorf("unacknowledged %s: GET: %v, want the object or NoSuchKey", pt.key, err)
		}
		if !pt.ack {
			unacked++
			if err == nil {
				unackedWhole++
			}
		}
	}
	t.Logf("%d PUTs acknowledged before SIGKILL, %d in flight (%d of them whole after restart)", acked, unacked, unackedWhole)
	// The restarted server takes writes.
	if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("box"), Key: aws.String("after"), Body: bytes.NewReader([]byte("x"))}); err != nil {
		t.Errorf("PUT after restart: %v", err)
	}
	if err := p.Stop(30 * time.Second); err != nil {
		t.Errorf("server after SIGTERM: %v\n%s", err, p.LogTail(4000))
	}
}

// procClient is an aws-sdk-go-v2 client of the S3 endpoint a process
// announced in its ready line, retries off.
func procClient(p *proctest.Proc, ak, sk string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String("http://" + p.Addr), Region: "us-east-1", UsePathStyle: true,
		Credentials:      credentials.NewStaticCredentialsProvider(ak, sk, ""),
		RetryMaxAttempts: 1, HTTPClient: &http.Client{Timeout: time.Minute},
	})
}
