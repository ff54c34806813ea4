package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
)

// rawPut sends a PUT with a declared length and a body written by send,
// and returns the response status, its S3 code and how long the gateway
// took to answer after the headers.
func rawPut(t *testing.T, h *harness, path string, length int, send func(w io.Writer) error) (int, string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", h.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nX-Amz-Content-Sha256: UNSIGNED-PAYLOAD\r\n\r\n",
		path, h.srv.Listener.Addr(), length)
	start := time.Now()
	go send(conn)
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, s3Code(string(body)), time.Since(start)
}

// A client that trickles its body, or stops sending, is cut off with
// RequestTimeout and creates nothing; a client at speed is unaffected.
func TestSlowClientCutOff(t *testing.T) {
	h := newHarness(t, false, func(c *Config) {
		c.SlowClientTimeout = 500 * time.Millisecond
		c.MinBodyRate = 4096
	})
	if err := h.fake.CreateBucket(bg, "slow"); err != nil {
		t.Fatal(err)
	}
	trickle := func(w io.Writer) error {
		for {
			if _, err := w.Write([]byte("x")); err != nil {
				return err
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	stall := func(w io.Writer) error {
		_, err := w.Write(bytes.Repeat([]byte("y"), 1000))
		return err
	}
	for name, send := range map[string]func(io.Writer) error{"trickle": trickle, "stall": stall} {
		status, code, took := rawPut(t, h, "/slow/"+name, 100000, send)
		if status != 400 || code != "RequestTimeout" {
			t.Errorf("%s: %d %s, want 400 RequestTimeout", name, status, code)
		}
		// Generous bound for the race detector on a busy machine; the
		// point is that it does not wait for the 100000 bytes.
		if took > 5*time.Second {
			t.Errorf("%s: cut off after %v", name, took)
		}
		if _, ok := h.fake.data("slow", name); ok {
			t.Errorf("%s: the cut-off upload was stored", name)
		}
	}
	data := testPayload(2 << 20)
	status, code, _ := rawPut(t, h, "/slow/fast", len(data), func(w io.Writer) error { _, err := w.Write(data); return err })
	if status != 200 {
		t.Fatalf("fast client: %d %s", status, code)
	}
	if got, _ := h.fake.data("slow", "fast"); got != string(data) {
		t.Fatal("fast upload stored wrong bytes")
	}
	// The connection of a request that passed is reusable: its deadlines
	// were cleared.
	c := h.client()
	for i := range 3 {
		if _, err := c.PutObject(bg, &s3.PutObjectInput{Bucket: aws.String("slow"), Key: aws.String(fmt.Sprint("k", i)), Body: strings.NewReader("body")}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(600 * time.Millisecond)
	}
}

// With a domain configured, "<bucket>.<domain>" hosts are virtual-hosted
// requests; the domain itself and other hosts stay path-style.
func TestVirtualHostedStyle(t *testing.T) {
	h := newHarness(t, false, func(c *Config) {
		c.Domain = "s3.test, storage.example"
		c.Auth = newAuthHarnessVerifier()
	})
	addr := h.srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	dialer := &net.Dialer{}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}}}
	vh := h.client(func(o *s3.Options) {
		o.UsePathStyle = false
		o.BaseEndpoint = aws.String("http://s3.test:" + port)
		o.HTTPClient = hc
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	})
	if _, err := vh.CreateBucket(bg, &s3.CreateBucketInput{Bucket: aws.String("vhost")}); err != nil {
		t.Fatal(err)
	}
	if _, err := vh.PutObject(bg, &s3.PutObjectInput{Bucket: aws.String("vhost"), Key: aws.String("dir/a b"), Body: strings.NewReader("hosted")}); err != nil {
		t.Fatal(err)
	}
	if got, ok := h.fake.data("vhost", "dir/a b"); !ok || got != "hosted" {
		t.Fatalf("stored %q, %v", got, ok)
	}
	out, err := vh.ListObjectsV2(bg, &s3.ListObjectsV2Input{Bucket: aws.String("vhost")})
	if err != nil || len(out.Contents) != 1 || aws.ToString(out.Contents[0].Key) != "dir/a b" {
		t.Fatalf("list: %+v, %v", out, err)
	}
	get, err := vh.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("vhost"), Key: aws.String("dir/a b")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if string(b) != "hosted" {
		t.Fatalf("get %q", b)
	}
	_, err = vh.GetObject(bg, &s3.GetObjectInput{Bucket: aws.String("nobucket"), Key: aws.String("k")})
	wantCode(t, "missing virtual-hosted bucket", err, "NoSuchBucket")

	// Path-style requests to the domain and to other names still work.
	for _, host := range []string{"s3.test", "127.0.0.1", "storage.example"} {
		ps := h.client(func(o *s3.Options) {
			o.BaseEndpoint = aws.String("http://" + host + ":" + port)
			o.HTTPClient = hc
		})
		if _, err := ps.HeadObject(bg, &s3.HeadObjectInput{Bucket: aws.String("vhost"), Key: aws.String("dir/a b")}); err != nil {
			t.Errorf("path-style via %s: %v", host, err)
		}
	}
	if _, err := New(Config{Backend: newFake(), Domain: "http://s3.test"}); err == nil {
		t.Error("a domain with a scheme was accepted")
	}
}

func newAuthHarnessVerifier() *sigv4.Verifier {
	return &sigv4.Verifier{Creds: sigv4.StaticCredentials{testAccessKey: testSecret}, Region: "us-east-1"}
}
