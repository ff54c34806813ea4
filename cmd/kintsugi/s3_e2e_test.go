package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	mcreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
)

const mib = 1 << 20

// s3e2eDomain is the virtual-host domain of the compatibility cluster; the
// clients' dialers send every name under it to the gateway.
const s3e2eDomain = "s3.kintsugi.test"

// shardFiles counts the committed shard files of every node: freed parts
// must give their shards back.
// fileShards makes nodes keep every shard in a file of its own, so that
// tests can count, damage or remove shards on disk. Inline and packed
// shards get the same treatment in the storagenode package's tests.
var fileShards = []string{"--inline-max", "0", "--pack-max", "0"}

func shardFiles(t *testing.T, c *proctest.Cluster) int {
	t.Helper()
	n := 0
	for i := range c.Map.Nodes {
		filepath.WalkDir(filepath.Join(c.NodeDir(i), "shards"), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				n++
			}
			return nil
		})
	}
	return n
}

// waitShardFiles polls until the nodes hold want shard files.
func waitShardFiles(t *testing.T, c *proctest.Cluster, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := shardFiles(t, c)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d shard files on the nodes, want %d", what, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func md5Of(b []byte) []byte { s := md5.Sum(b); return s[:] }

func mpETag(parts ...[]byte) string {
	h := md5.New()
	for _, p := range parts {
		h.Write(md5Of(p))
	}
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(h.Sum(nil)), len(parts))
}

func crc32b64(b []byte) string {
	v := crc32.ChecksumIEEE(b)
	return base64.StdEncoding.EncodeToString([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// getAll runs a GET and reads its body whole.
func getAll(t *testing.T, cl *s3.Client, in *s3.GetObjectInput) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := cl.GetObject(context.Background(), in)
	return readAll(t, out, err), out
}

func readAll(t *testing.T, out *s3.GetObjectOutput, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestS3Compat drives every S3 call the gateway serves through
// aws-sdk-go-v2 and minio-go against a multi-process cluster, success and
// error paths, and checks what the nodes hold afterwards.
func TestS3Compat(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test; run without -short")
	}
	ctx := context.Background()
	// Freed shards are counted as soon as the S3 call returns: superseded
	// ones go at once rather than after a grace. They are counted as
	// files, so every shard gets one (not inline, not packed).
	c := proctest.StartCluster(t, testBin, proctest.Options{
		GatewayArgs: []string{"--domain", s3e2eDomain},
		NodeArgs:    append([]string{"--superseded-grace", "0"}, fileShards...),
	})
	cl := s3Client(c, 0)
	for _, b := range []string{"compat", "other"} {
		mustCreateBucket(t, ctx, cl, b)
	}
	defer func() {
		if t.Failed() {
			t.Log(c.Logs())
		}
	}()

	t.Run("Multipart", func(t *testing.T) {
		base := shardFiles(t, c)
		key := "dir/big object"
		p1, p2, p3 := genBytes(1, 5*mib), genBytes(2, 5*mib), genBytes(3, mib+7)
		up, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("compat"), Key: aws.String(key),
			ContentType: aws.String("application/x-big"), Metadata: map[string]string{"kind": "multipart"}, ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
		if err != nil {
			t.Fatal(err)
		}
		uploadPart := func(n int32, data []byte) string {
			t.Helper()
			out, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("compat"), Key: aws.String(key), UploadId: up.UploadId,
				PartNumber: aws.Int32(n), Body: bytes.NewReader(data), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
			if err != nil {
				t.Fatalf("UploadPart %d: %v", n, err)
			}
			if aws.ToString(out.ETag) != `"`+hex.EncodeToString(md5Of(data))+`"` || aws.ToString(out.ChecksumCRC32) != crc32b64(data) {
				t.Fatalf("UploadPart %d: ETag %s crc32 %s", n, aws.ToString(out.ETag), aws.ToString(out.ChecksumCRC32))
			}
			return aws.ToString(out.ETag)
		}
		uploadPart(2, genBytes(9, 5*mib)) // replaced below
		e1, e2, e3 := uploadPart(1, p1), uploadPart(2, p2), uploadPart(3, p3)
		e4 := uploadPart(4, []byte("tiny"))

		parts, err := cl.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("compat"), Key: aws.String(key), UploadId: up.UploadId})
		if err != nil || len(parts.Parts) != 4 || aws.ToString(parts.Parts[1].ETag) != e2 || aws.ToInt64(parts.Parts[2].Size) != int64(len(p3)) {
			t.Fatalf("ListParts: %+v, %v", parts, err)
		}
		ups, err := cl.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("compat")})
		if err != nil || len(ups.Uploads) != 1 || aws.ToString(ups.Uploads[0].UploadId) != aws.ToString(up.UploadId) {
			t.Fatalf("ListMultipartUploads: %+v, %v", ups, err)
		}
		complete := func(id *string, ps ...types.CompletedPart) (*s3.CompleteMultipartUploadOutput, error) {
			return cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("compat"), Key: aws.String(key),
				UploadId: id, MultipartUpload: &types.CompletedMultipartUpload{Parts: ps}})
		}
		part := func(n int32, etag string) types.CompletedPart {
			return types.CompletedPart{PartNumber: aws.Int32(n), ETag: aws.String(etag)}
		}
		for _, tc := range []struct {
			name  string
			id    *string
			parts []types.CompletedPart
			code  string
		}{
			{"order", up.UploadId, []types.CompletedPart{part(2, e2), part(1, e1)}, "InvalidPartOrder"},
			{"etag", up.UploadId, []types.CompletedPart{part(1, e2)}, "InvalidPart"},
			{"missing", up.UploadId, []types.CompletedPart{part(1, e1), part(7, e1)}, "InvalidPart"},
			{"too small", up.UploadId, []types.CompletedPart{part(3, e3), part(4, e4)}, "EntityTooSmall"},
			{"no such upload", aws.String("01J00000000000000000000000"), []types.CompletedPart{part(1, e1)}, "NoSuchUpload"},
		} {
			_, err := complete(tc.id, tc.parts...)
			if apiCode(err) != tc.code {
				t.Errorf("complete %s: %v, want %s", tc.name, err, tc.code)
			}
		}
		done, err := complete(up.UploadId, part(1, e1), part(2, e2), part(3, e3))
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(done.ETag) != mpETag(p1, p2, p3) {
			t.Fatalf("ETag %s, want %s", aws.ToString(done.ETag), mpETag(p1, p2, p3))
		}
		whole := bytes.Join([][]byte{p1, p2, p3}, nil)
		got, _ := getAll(t, cl, &s3.GetObjectInput{Bucket: aws.String("compat"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
		if !bytes.Equal(got, whole) {
			t.Fatalf("GET: %d bytes differ from the %d uploaded", len(got), len(whole))
		}
		got, _ = getAll(t, cl, &s3.GetObjectInput{Bucket: aws.String("compat"), Key: aws.String(key), Range: aws.String("bytes=5242870-10485770")})
		if !bytes.Equal(got, whole[5242870:10485771]) {
			t.Fatal("range across three parts differs")
		}
		pn, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("compat"), Key: aws.String(key), PartNumber: aws.Int32(3)})
		if got := readAll(t, pn, err); !bytes.Equal(got, p3) || aws.ToInt32(pn.PartsCount) != 3 {
			t.Fatalf("GET partNumber=3: %d bytes, %d parts", len(got), aws.ToInt32(pn.PartsCount))
		}
		head, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("compat"), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
		if err != nil || aws.ToString(head.ContentType) != "application/x-big" || head.Metadata["kind"] != "multipart" ||
			aws.ToInt64(head.ContentLength) != int64(len(whole)) || !strings.HasSuffix(aws.ToString(head.ChecksumCRC32), "-3") {
			t.Fatalf("HEAD: %+v, %v", head, err)
		}
		list, err := cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("compat")})
		if err != nil || len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != key || aws.ToString(list.Contents[0].ETag) != mpETag(p1, p2, p3) {
			t.Fatalf("LIST shows %+v, %v", list.Contents, err)
		}
		if ups, _ := cl.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("compat")}); len(ups.Uploads) != 0 {
			t.Fatalf("uploads after completion: %+v", ups.Uploads)
		}
		// The three parts used hold 6 shards each; the replaced part 2,
		// the unused part 4 and the upload record were freed.
		waitShardFiles(t, c, base+3*6, "after completion")

		// Abort frees what an upload stored.
		up2, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("compat"), Key: aws.String("aborted")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("compat"), Key: aws.String("aborted"), UploadId: up2.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader(genBytes(4, mib))}); err != nil {
			t.Fatal(err)
		}
		if n := shardFiles(t, c); n != base+3*6+12 {
			t.Fatalf("%d shard files with an upload in progress, want %d", n, base+3*6+12)
		}
		if _, err := cl.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("compat"), Key: aws.String("aborted"), UploadId: up2.UploadId}); err != nil {
			t.Fatal(err)
		}
		waitShardFiles(t, c, base+3*6, "after abort")
		_, err = cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("compat"), Key: aws.String("aborted"), UploadId: up2.UploadId,
			PartNumber: aws.Int32(2), Body: bytes.NewReader([]byte("late"))})
		if apiCode(err) != "NoSuchUpload" {
			t.Fatalf("part after abort: %v", err)
		}

		// Copying a multipart object makes a plain one; deleting the
		// multipart object frees its parts.
		if _, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("other"), Key: aws.String("big copy"),
			CopySource: aws.String("compat/dir/big%20object")}); err != nil {
			t.Fatal(err)
		}
		if sum, n, err := getSum(ctx, cl, "other", "big copy"); err != nil || n != int64(len(whole)) || sum != sha256.Sum256(whole) {
			t.Fatalf("copy of the multipart object: %d bytes, %v", n, err)
		}
		if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("compat"), Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
		waitShardFiles(t, c, base+6, "after deleting the multipart object")
		if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("other"), Key: aws.String("big copy")}); err != nil {
			t.Fatal(err)
		}
		waitShardFiles(t, c, base, "after deleting the copy")
	})

	t.Run("UploadPartCopy", func(t *testing.T) {
		src := genBytes(5, 6*mib+99)
		if err := putObject(ctx, cl, "compat", "src", bytes.NewReader(src), int64(len(src))); err != nil {
			t.Fatal(err)
		}
		up, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("other"), Key: aws.String("assembled")})
		if err != nil {
			t.Fatal(err)
		}
		var ps []types.CompletedPart
		for i, rng := range []string{"bytes=0-5242879", fmt.Sprintf("bytes=5242880-%d", len(src)-1)} {
			out, err := cl.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("other"), Key: aws.String("assembled"), UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), CopySource: aws.String("compat/src"), CopySourceRange: aws.String(rng)})
			if err != nil {
				t.Fatalf("UploadPartCopy %s: %v", rng, err)
			}
			ps = append(ps, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.CopyPartResult.ETag})
		}
		_, err = cl.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: aws.String("other"), Key: aws.String("assembled"), UploadId: up.UploadId,
			PartNumber: aws.Int32(3), CopySource: aws.String("compat/src"), CopySourceRange: aws.String("bytes=0-99999999")})
		if apiCode(err) != "InvalidRange" {
			t.Errorf("copy range past the end: %v", err)
		}
		if _, err := cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("other"), Key: aws.String("assembled"),
			UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: ps}}); err != nil {
			t.Fatal(err)
		}
		if got, err := getBytes(ctx, cl, "other", "assembled"); err != nil || !bytes.Equal(got, src) {
			t.Fatalf("assembled object: %d bytes, %v", len(got), err)
		}
	})

	t.Run("CopyObject", func(t *testing.T) {
		body := []byte("copy me, with metadata")
		if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("compat"), Key: aws.String("orig"), Body: bytes.NewReader(body),
			ContentType: aws.String("text/x-orig"), Metadata: map[string]string{"a": "1"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("other"), Key: aws.String("copied"), CopySource: aws.String("compat/orig")}); err != nil {
			t.Fatal(err)
		}
		head, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("other"), Key: aws.String("copied")})
		if err != nil || aws.ToString(head.ContentType) != "text/x-orig" || head.Metadata["a"] != "1" || aws.ToString(head.ETag) != `"`+hex.EncodeToString(md5Of(body))+`"` {
			t.Fatalf("COPY directive: %+v, %v", head, err)
		}
		if _, err := cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("compat"), Key: aws.String("orig"), CopySource: aws.String("compat/orig"),
			MetadataDirective: types.MetadataDirectiveReplace, ContentType: aws.String("text/x-new"), Metadata: map[string]string{"b": "2"}}); err != nil {
			t.Fatal(err)
		}
		head, err = cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("compat"), Key: aws.String("orig")})
		if err != nil || aws.ToString(head.ContentType) != "text/x-new" || head.Metadata["b"] != "2" || head.Metadata["a"] != "" {
			t.Fatalf("REPLACE directive: %+v, %v", head, err)
		}
		_, err = cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("compat"), Key: aws.String("orig"), CopySource: aws.String("compat/orig")})
		if apiCode(err) != "InvalidRequest" {
			t.Errorf("copy onto itself: %v", err)
		}
		_, err = cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("other"), Key: aws.String("c3"), CopySource: aws.String("compat/orig"),
			CopySourceIfNoneMatch: head.ETag})
		if apiCode(err) != "PreconditionFailed" {
			t.Errorf("copy-source-if-none-match: %v", err)
		}
		_, err = cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("other"), Key: aws.String("c4"), CopySource: aws.String("compat/none")})
		if apiCode(err) != "NoSuchKey" {
			t.Errorf("copy of a missing key: %v", err)
		}
	})

	t.Run("Checksums", func(t *testing.T) {
		data := genBytes(6, 300<<10)
		sum := sha256.Sum256(data)
		if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("compat"), Key: aws.String("summed"), Body: bytes.NewReader(data),
			ChecksumAlgorithm: types.ChecksumAlgorithmSha256}); err != nil {
			t.Fatal(err)
		}
		out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("compat"), Key: aws.String("summed"), ChecksumMode: types.ChecksumModeEnabled})
		if got := readAll(t, out, err); !bytes.Equal(got, data) || aws.ToString(out.ChecksumSHA256) != base64.StdEncoding.EncodeToString(sum[:]) {
			t.Fatalf("GET with checksum mode: %d bytes, sha256 %q", len(got), aws.ToString(out.ChecksumSHA256))
		}
		_, err = cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("compat"), Key: aws.String("badsum"), Body: bytes.NewReader(data),
			ChecksumCRC32: aws.String(crc32b64([]byte("something else")))})
		if apiCode(err) != "BadDigest" {
			t.Fatalf("wrong crc32: %v", err)
		}
		// Content-MD5 that does not match: BadDigest and nothing stored.
		req := signedRequest(t, c, "PUT", "/compat/badmd5", bytes.NewReader(data), int64(len(data)),
			map[string]string{"Content-MD5": base64.StdEncoding.EncodeToString(md5Of([]byte("x")))})
		if status, code, _ := doRaw(t, req); status != 400 || code != "BadDigest" {
			t.Fatalf("bad Content-MD5: %d %s", status, code)
		}
		for _, k := range []string{"badsum", "badmd5"} {
			if _, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("compat"), Key: aws.String(k)}); httpStatus(err) != 404 {
				t.Errorf("%s was stored: %v", k, err)
			}
		}
	})

	t.Run("Conditionals", func(t *testing.T) {
		if err := putObject(ctx, cl, "compat", "cond", bytes.NewReader([]byte("conditional")), 11); err != nil {
			t.Fatal(err)
		}
		head, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("compat"), Key: aws.String("cond")})
		if err != nil {
			t.Fatal(err)
		}
		past, future := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
		for _, tc := range []struct {
			hdr    map[string]string
			status int
		}{
			{map[string]string{"If-None-Match": aws.ToString(head.ETag)}, 304},
			{map[string]string{"If-Match": `"0123"`}, 412},
			{map[string]string{"If-Match": aws.ToString(head.ETag)}, 200},
			{map[string]string{"If-Modified-Since": future}, 304},
			{map[string]string{"If-Unmodified-Since": past}, 412},
			{map[string]string{"If-Modified-Since": past}, 200},
		} {
			if status, code, _ := doRaw(t, signedRequest(t, c, "GET", "/compat/cond", nil, 0, tc.hdr)); status != tc.status {
				t.Errorf("%v: %d %s, want %d", tc.hdr, status, code, tc.status)
			}
		}
	})

	t.Run("BatchDeleteListV1Location", func(t *testing.T) {
		mustCreateBucket(t, ctx, cl, "batch")
		for _, k := range []string{"del/a", "del/b", "del/c", "keep/d", "top"} {
			if err := putObject(ctx, cl, "batch", k, bytes.NewReader([]byte(k)), int64(len(k))); err != nil {
				t.Fatal(err)
			}
		}
		out, err := cl.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("batch"), Delete: &types.Delete{Quiet: aws.Bool(true),
			Objects: []types.ObjectIdentifier{{Key: aws.String("del/a")}, {Key: aws.String("del/b")}, {Key: aws.String("del/c")}, {Key: aws.String("del/never")}}}})
		if err != nil || len(out.Deleted) != 0 || len(out.Errors) != 0 {
			t.Fatalf("quiet DeleteObjects: %+v, %v", out, err)
		}
		v1, err := cl.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String("batch"), Delimiter: aws.String("/")})
		if err != nil || len(v1.Contents) != 1 || aws.ToString(v1.Contents[0].Key) != "top" || len(v1.CommonPrefixes) != 1 || aws.ToString(v1.CommonPrefixes[0].Prefix) != "keep/" {
			t.Fatalf("ListObjects v1: %+v, %v", v1, err)
		}
		loc, err := cl.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String("batch")})
		if err != nil || loc.LocationConstraint != "" {
			t.Fatalf("GetBucketLocation: %+v, %v", loc, err)
		}
	})

	t.Run("VirtualHosted", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(c.Gateways[0].Addr)
		d := &net.Dialer{}
		vh := s3.New(s3.Options{
			BaseEndpoint: aws.String("http://" + s3e2eDomain + ":" + port),
			Region:       "us-east-1",
			Credentials:  s3Client(c, 0).Options().Credentials,
			HTTPClient: &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, c.Gateways[0].Addr)
			}}},
			RetryMaxAttempts: 1,
		})
		if _, err := vh.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("other"), Key: aws.String("vhost/key"), Body: strings.NewReader("virtual")}); err != nil {
			t.Fatal(err)
		}
		if got, err := getBytes(ctx, cl, "other", "vhost/key"); err != nil || string(got) != "virtual" {
			t.Fatalf("path-style read of a virtual-hosted write: %q, %v", got, err)
		}
		list, err := vh.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("other"), Prefix: aws.String("vhost/")})
		if err != nil || len(list.Contents) != 1 {
			t.Fatalf("virtual-hosted list: %+v, %v", list, err)
		}
	})

	t.Run("PresignAndTampering", func(t *testing.T) {
		if err := putObject(ctx, cl, "compat", "signed", bytes.NewReader([]byte("presigned body")), 14); err != nil {
			t.Fatal(err)
		}
		ps := s3.NewPresignClient(cl)
		get := func(expires time.Duration) *http.Request {
			req, err := ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("compat"), Key: aws.String("signed")}, s3.WithPresignExpires(expires))
			if err != nil {
				t.Fatal(err)
			}
			r, _ := http.NewRequest("GET", req.URL, nil)
			return r
		}
		if status, _, body := doRaw(t, get(time.Minute)); status != 200 || string(body) != "presigned body" {
			t.Fatalf("presigned GET: %d %q", status, body)
		}
		short := get(time.Second)
		time.Sleep(2100 * time.Millisecond)
		if status, code, _ := doRaw(t, short); status != 403 || code != "AccessDenied" {
			t.Fatalf("replayed presign past expiry: %d %s, want 403 AccessDenied", status, code)
		}
		// A request signed for one body that carries another: the
		// signature holds, the payload digest does not.
		good := sha256.Sum256([]byte("good body"))
		digest := hex.EncodeToString(good[:])
		req, _ := http.NewRequest("PUT", c.Endpoint(0)+"/compat/tampered", strings.NewReader("evil body"))
		req.Header.Set("X-Amz-Content-Sha256", digest)
		creds := aws.Credentials{AccessKeyID: c.AccessKey, SecretAccessKey: c.SecretKey}
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, digest, "s3", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		if status, code, _ := doRaw(t, req); status != 400 || code != "XAmzContentSHA256Mismatch" {
			t.Fatalf("tampered body: %d %s, want 400 XAmzContentSHA256Mismatch", status, code)
		}
		if _, err := cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("compat"), Key: aws.String("tampered")}); httpStatus(err) != 404 {
			t.Fatalf("tampered PUT stored something: %v", err)
		}
	})

	t.Run("NodesRefuseUnsigned", func(t *testing.T) {
		before := shardFiles(t, c)
		node := "http://" + c.Map.Nodes[0].Addr
		for _, r := range []struct{ method, path, body string }{
			{"GET", "/v1/health", ""},
			{"GET", "/v1/buckets", ""},
			{"PUT", "/v1/bucket", `{"name":"evil","version":"01J00000000000000000000000"}`},
			{"PUT", "/v1/stage?bucket=compat&key=x&version=01J00000000000000000000000&shard=0&block=262144", "junk"},
			{"POST", "/v1/commit", `{"bucket":"compat","key":"x","version":"01J00000000000000000000000","deleted":true}`},
		} {
			req, _ := http.NewRequest(r.method, node+r.path, strings.NewReader(r.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Errorf("%s %s without a cluster proof: %d, want 401", r.method, r.path, resp.StatusCode)
			}
		}
		out, err := cl.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil || len(out.Buckets) != 3 {
			t.Fatalf("buckets after refused node requests: %+v, %v", out, err)
		}
		if after := shardFiles(t, c); after != before {
			t.Fatalf("refused node requests changed the shard files: %d -> %d", before, after)
		}
	})

	t.Run("Minio", func(t *testing.T) {
		mc, err := minio.New(c.Gateways[0].Addr, &minio.Options{
			Creds:        mcreds.NewStaticV4(c.AccessKey, c.SecretKey, ""),
			Region:       "us-east-1",
			BucketLookup: minio.BucketLookupPath,
			MaxRetries:   1,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := mc.MakeBucket(ctx, "minio-bkt", minio.MakeBucketOptions{}); err != nil {
			t.Fatal(err)
		}
		data := genBytes(7, 12*mib+5)
		info, err := mc.PutObject(ctx, "minio-bkt", "multi", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{PartSize: 5 * mib, ContentType: "x/y"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(info.ETag, "-3") {
			t.Errorf("minio multipart ETag %q", info.ETag)
		}
		st, err := mc.StatObject(ctx, "minio-bkt", "multi", minio.StatObjectOptions{})
		if err != nil || st.Size != int64(len(data)) || st.ContentType != "x/y" {
			t.Fatalf("StatObject: %+v, %v", st, err)
		}
		opts := minio.GetObjectOptions{}
		opts.SetRange(5*mib-3, 10*mib+3)
		obj, err := mc.GetObject(ctx, "minio-bkt", "multi", opts)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		obj.Close()
		if err != nil || !bytes.Equal(got, data[5*mib-3:10*mib+4]) {
			t.Fatalf("range GET: %d bytes, %v", len(got), err)
		}
		// ComposeObject copies parts on the server (UploadPartCopy).
		if _, err := mc.ComposeObject(ctx, minio.CopyDestOptions{Bucket: "minio-bkt", Object: "composed"},
			minio.CopySrcOptions{Bucket: "minio-bkt", Object: "multi"}, minio.CopySrcOptions{Bucket: "minio-bkt", Object: "multi"}); err != nil {
			t.Fatal(err)
		}
		obj, err = mc.GetObject(ctx, "minio-bkt", "composed", minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, obj)
		obj.Close()
		want := sha256.Sum256(append(append([]byte(nil), data...), data...))
		if err != nil || n != 2*int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatalf("composed object: %d bytes, %v", n, err)
		}
		if _, err := mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "minio-bkt", Object: "copied"}, minio.CopySrcOptions{Bucket: "minio-bkt", Object: "composed"}); err != nil {
			t.Fatal(err)
		}
		if st, err := mc.StatObject(ctx, "minio-bkt", "copied", minio.StatObjectOptions{}); err != nil || st.Size != 2*int64(len(data)) {
			t.Fatalf("copy: %+v, %v", st, err)
		}
		core := minio.Core{Client: mc}
		id, err := core.NewMultipartUpload(ctx, "minio-bkt", "pending", minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var pending []string
		for u := range mc.ListIncompleteUploads(ctx, "minio-bkt", "", true) {
			if u.Err != nil {
				t.Fatal(u.Err)
			}
			pending = append(pending, u.Key+"/"+u.UploadID)
		}
		if len(pending) != 1 || pending[0] != "pending/"+id {
			t.Fatalf("incomplete uploads %v, want pending/%s", pending, id)
		}
		if err := mc.RemoveIncompleteUpload(ctx, "minio-bkt", "pending"); err != nil {
			t.Fatal(err)
		}
		ch := make(chan minio.ObjectInfo, 3)
		for _, k := range []string{"multi", "composed", "copied"} {
			ch <- minio.ObjectInfo{Key: k}
		}
		close(ch)
		for e := range mc.RemoveObjects(ctx, "minio-bkt", ch, minio.RemoveObjectsOptions{}) {
			t.Errorf("RemoveObjects: %v", e.Err)
		}
		u, err := mc.PresignedGetObject(ctx, "minio-bkt", "multi", time.Minute, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("presigned GET of a removed object: %d", resp.StatusCode)
		}
		if err := mc.RemoveBucket(ctx, "minio-bkt"); err != nil {
			t.Fatalf("RemoveBucket: %v", err)
		}
	})
}

// TestMultipartExpiry checks that stale uploads are aborted by the
// gateway's sweep and their shards freed.
func TestMultipartExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test; run without -short")
	}
	ctx := context.Background()
	// The parts' shards are superseded by the abort and freed by the
	// nodes' sweep once their grace is over.
	c := proctest.StartCluster(t, testBin, proctest.Options{
		GatewayArgs: []string{"--upload-expiry", "2s", "--upload-sweep", "500ms"},
		NodeArgs:    append([]string{"--superseded-grace", "1s", "--sweep-interval", "500ms"}, fileShards...),
	})
	cl := s3Client(c, 0)
	mustCreateBucket(t, ctx, cl, "stale")
	base := shardFiles(t, c)
	up, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("stale"), Key: aws.String("left")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("stale"), Key: aws.String("left"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(genBytes(8, mib))}); err != nil {
		t.Fatal(err)
	}
	waitShardFiles(t, c, base, "after the upload expired")
	ups, err := cl.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("stale")})
	if err != nil || len(ups.Uploads) != 0 {
		t.Fatalf("uploads after expiry: %+v, %v", ups, err)
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// to dir and returns their paths.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kintsugi test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestTLS runs a cluster whose nodes and gateway all serve HTTPS with a
// certificate made here: the SDK (which sends aws-chunked bodies with
// trailing checksums over TLS) works, plain HTTP does not, and the nodes
// still want a cluster proof.
func TestTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process cluster test; run without -short")
	}
	ctx := context.Background()
	cert, key := selfSigned(t, t.TempDir())
	c := proctest.StartCluster(t, testBin, proctest.Options{TLSCert: cert, TLSKey: key})
	pemBytes, _ := os.ReadFile(cert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	cl := s3.New(s3.Options{
		BaseEndpoint:     aws.String(c.Endpoint(0)),
		Region:           "us-east-1",
		UsePathStyle:     true,
		Credentials:      s3Client(c, 0).Options().Credentials,
		HTTPClient:       hc,
		RetryMaxAttempts: 1,
	})
	mustCreateBucket(t, ctx, cl, "secure")
	data := genBytes(10, 3*mib+1)
	if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("secure"), Key: aws.String("k"), Body: bytes.NewReader(data),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32}); err != nil {
		t.Fatal(err)
	}
	out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("secure"), Key: aws.String("k"), ChecksumMode: types.ChecksumModeEnabled})
	if got := readAll(t, out, err); !bytes.Equal(got, data) || aws.ToString(out.ChecksumCRC32) != crc32b64(data) {
		t.Fatalf("GET over TLS: %d bytes, crc32 %q", len(got), aws.ToString(out.ChecksumCRC32))
	}
	// The TLS listener answers plain HTTP with an error of its own, never
	// with the object.
	if resp, err := http.Get("http://" + c.Gateways[0].Addr + "/secure/k"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served the object")
		}
	}
	resp, err := hc.Get(c.Map.Nodes[0].Addr + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("unsigned HTTPS request to a node: %d, want 401", resp.StatusCode)
	}
}
