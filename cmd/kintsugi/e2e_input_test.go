package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
)

// signedRequest builds a SigV4-signed request (unsigned payload) with the
// SDK's own signer, for inputs the SDK itself would refuse to send. S3 signs
// the path as sent, without escaping it a second time.
func signedRequest(t *testing.T, c *proctest.Cluster, method, rawPath string, body io.Reader, size int64, hdr map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, c.Endpoint(0), body)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = ""
	req.URL.RawPath = rawPath
	req.URL.Path, err = url.PathUnescape(rawPath)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	creds := aws.Credentials{AccessKeyID: c.AccessKey, SecretAccessKey: c.SecretKey}
	if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(), creds, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	return req
}

type s3Error struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// doRaw sends req and returns the status and the S3 error code of the body.
func doRaw(t *testing.T, req *http.Request) (int, string, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e s3Error
	if resp.StatusCode >= 300 {
		xml.Unmarshal(b, &e)
	}
	return resp.StatusCode, e.Code, b
}

// TestBadInput checks that malformed requests get a clear S3 error and
// change nothing, and that hostile names never become paths.
func TestBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test; run without -short")
	}
	ctx := context.Background()
	c := proctest.StartCluster(t, testBin, proctest.Options{})
	cl := s3Client(c, 0)
	mustCreateBucket(t, ctx, cl, "input")

	t.Run("BucketNames", func(t *testing.T) {
		for _, name := range []string{"ab", "-abc", "abc-", "ABC", "a_b_c", "abc..def", "192.168.1.1", strings.Repeat("a", 64), "xn--abc"} {
			status, code, _ := doRaw(t, signedRequest(t, c, "PUT", "/"+name, nil, 0, nil))
			if status != 400 || code != "InvalidBucketName" {
				t.Errorf("CreateBucket %q: %d %s, want 400 InvalidBucketName", name, status, code)
			}
		}
		out, err := cl.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil || len(out.Buckets) != 1 {
			t.Fatalf("after invalid names: err %v, %d buckets, want 1", err, len(out.Buckets))
		}
	})

	t.Run("NoSuchBucket", func(t *testing.T) {
		_, err := getBytes(ctx, cl, "missing-bucket", "k")
		if apiCode(err) != "NoSuchBucket" {
			t.Fatalf("GET in a missing bucket: %v", err)
		}
		err = putObject(ctx, cl, "missing-bucket", "k", bytes.NewReader([]byte("x")), 1)
		if apiCode(err) != "NoSuchBucket" {
			t.Fatalf("PUT in a missing bucket: %v", err)
		}
	})

	t.Run("KeyTooLong", func(t *testing.T) {
		err := putObject(ctx, cl, "input", strings.Repeat("k", 1025), bytes.NewReader([]byte("x")), 1)
		if apiCode(err) != "KeyTooLongError" {
			t.Fatalf("PUT with a 1025-byte key: %v, want KeyTooLongError", err)
		}
		if err := putObject(ctx, cl, "input", strings.Repeat("k", 1024), bytes.NewReader([]byte("x")), 1); err != nil {
			t.Fatalf("PUT with a 1024-byte key: %v", err)
		}
	})

	t.Run("HostileKeys", func(t *testing.T) {
		keys := []string{"../escape-a", "../../../../../../tmp/escape-b", "%2e%2e/escape-c", "a/../../escape-d", "./escape-e", "/escape-f", "a//b", "sp ace+plus%percent", "ünïcødé/ключ/鍵"}
		for _, k := range keys {
			body := []byte(fmt.Sprintf("body of %q", k))
			if err := putObject(ctx, cl, "input", k, bytes.NewReader(body), int64(len(body))); err != nil {
				t.Fatalf("PUT %q: %v", k, err)
			}
			got, err := getBytes(ctx, cl, "input", k)
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("GET %q: err %v, got %q", k, err, got)
			}
		}
		list, err := cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("input")})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, o := range list.Contents {
			seen[aws.ToString(o.Key)] = true
		}
		for _, k := range keys {
			if !seen[k] {
				t.Errorf("LIST lacks key %q", k)
			}
		}
		// No file anywhere may carry a client-chosen name.
		for _, root := range []string{c.Dir, filepath.Dir(c.Dir), "/tmp"} {
			filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return nil
				}
				if strings.Contains(d.Name(), "escape-") {
					t.Errorf("client-chosen name became a path: %s", p)
				}
				if d.IsDir() && p != root && root != c.Dir {
					return fs.SkipDir
				}
				return nil
			})
		}
	})

	t.Run("ControlBytesInKey", func(t *testing.T) {
		for _, raw := range []string{"/input/nul%00byte", "/input/bell%07", "/input/del%7F"} {
			status, code, _ := doRaw(t, signedRequest(t, c, "PUT", raw, strings.NewReader("x"), 1, nil))
			if status != 400 {
				t.Errorf("PUT %s: %d %s, want 400", raw, status, code)
			}
		}
	})

	t.Run("TruncatedBody", func(t *testing.T) {
		req := signedRequest(t, c, "PUT", "/input/truncated", nil, 1000, map[string]string{"Content-Length": "1000"})
		conn, err := net.Dial("tcp", c.Gateways[0].Addr)
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriter(conn)
		fmt.Fprintf(w, "PUT /input/truncated HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n", req.Host)
		for k, vs := range req.Header {
			if k != "Content-Length" {
				fmt.Fprintf(w, "%s: %s\r\n", k, vs[0])
			}
		}
		w.WriteString("\r\n")
		w.Write(bytes.Repeat([]byte("z"), 500))
		w.Flush()
		conn.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, conn)
		conn.Close()
		_, err = cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("input"), Key: aws.String("truncated")})
		if httpStatus(err) != 404 {
			t.Fatalf("HEAD after a truncated PUT: %v, want 404", err)
		}
	})

	t.Run("Ranges", func(t *testing.T) {
		body := genBytes(99, 1<<20+333)
		if err := putObject(ctx, cl, "input", "ranged", bytes.NewReader(body), int64(len(body))); err != nil {
			t.Fatal(err)
		}
		size := int64(len(body))
		for _, tc := range []struct {
			rng        string
			status     int
			start, end int64 // inclusive; ignored unless status is 206
		}{
			{"bytes=0-0", 206, 0, 0},
			{"bytes=100-199", 206, 100, 199},
			{"bytes=262100-786500", 206, 262100, 786500},
			{"bytes=1048000-", 206, 1048000, size - 1},
			{"bytes=-333", 206, size - 333, size - 1},
			{"bytes=5-99999999", 206, 5, size - 1},
			{"bytes=abc", 200, 0, 0},
			{"bytes=10-5", 200, 0, 0},
			{"items=0-5", 200, 0, 0},
			{"bytes=0-1,5-6", 200, 0, 0},
			{"garbage", 200, 0, 0},
			{fmt.Sprintf("bytes=%d-", size), 416, 0, 0},
			{"bytes=99999999-", 416, 0, 0},
		} {
			req := signedRequest(t, c, "GET", "/input/ranged", nil, 0, map[string]string{"Range": tc.rng})
			status, code, got := doRaw(t, req)
			if status != tc.status {
				t.Errorf("Range %q: status %d (%s), want %d", tc.rng, status, code, tc.status)
				continue
			}
			switch status {
			case 206:
				if !bytes.Equal(got, body[tc.start:tc.end+1]) {
					t.Errorf("Range %q: wrong bytes (%d bytes)", tc.rng, len(got))
				}
			case 200:
				if !bytes.Equal(got, body) {
					t.Errorf("Range %q: ignored range must return the whole object", tc.rng)
				}
			case 416:
				if code != "InvalidRange" {
					t.Errorf("Range %q: code %q, want InvalidRange", tc.rng, code)
				}
			}
		}
	})

	t.Run("WrongSecret", func(t *testing.T) {
		bad := *c
		bad.SecretKey = "not-the-secret"
		_, err := s3Client(&bad, 0).ListBuckets(ctx, &s3.ListBucketsInput{})
		if apiCode(err) != "SignatureDoesNotMatch" {
			t.Fatalf("wrong secret: %v, want SignatureDoesNotMatch", err)
		}
		anon, err := http.Get(c.Endpoint(0) + "/input/ranged")
		if err != nil {
			t.Fatal(err)
		}
		anon.Body.Close()
		if anon.StatusCode != 403 {
			t.Fatalf("anonymous GET: %d, want 403", anon.StatusCode)
		}
	})
}
