package objects

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// A multipart upload keeps the headers and tags it was started with, and
// a repeated completion of it answers as the first did.
func TestMultipartAttrsAndRepeatedCompletion(t *testing.T) {
	c, _ := mpCluster(t)
	ctx := context.Background()
	hdrs := map[string]string{"Cache-Control": "no-cache", "Content-Language": "de"}
	up, err := c.s.CreateUpload(ctx, UploadInput{Bucket: testBucket, Key: "k", ContentType: "text/plain", Headers: hdrs, Tagging: "a=1&b=2"})
	if err != nil {
		t.Fatal(err)
	}
	parts := []PartInfo{c.putPart("k", up.UploadID, 1, payload(MinPartSize, 1)), c.putPart("k", up.UploadID, 2, payload(10, 2))}
	in := CompleteInput{Bucket: testBucket, Key: "k", UploadID: up.UploadID, Parts: complete(parts...)}
	first, err := c.s.CompleteUpload(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(first.Headers, hdrs) || first.Tagging != "a=1&b=2" {
		t.Fatalf("completed: headers %v tagging %q", first.Headers, first.Tagging)
	}
	again, err := c.s.CompleteUpload(ctx, in)
	if err != nil || again.ETag != first.ETag || again.Version != first.Version {
		t.Fatalf("repeated completion: %+v, %v; first %+v", again, err, first)
	}
	// Other parts, or another upload id, are still NoSuchUpload.
	other := in
	other.Parts = other.Parts[:1]
	if _, err := c.s.CompleteUpload(ctx, other); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("completion with other parts: %v, want ErrNoSuchUpload", err)
	}
	other = in
	other.UploadID = c.create("k2")
	other.Key = "k"
	if _, err := c.s.CompleteUpload(ctx, other); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("completion of another upload: %v, want ErrNoSuchUpload", err)
	}
	// Once the key holds another version, the repeat is refused.
	c.put("k", []byte("new"))
	if _, err := c.s.CompleteUpload(ctx, in); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("completion after an overwrite: %v, want ErrNoSuchUpload", err)
	}
}

func TestPutKeepsHeadersAndTagging(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	ctx := context.Background()
	hdrs := map[string]string{"Content-Disposition": "attachment", "Expires": "Wed, 21 Oct 2026 07:28:00 GMT"}
	if _, err := c.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: 3, Body: bytesReader("abc"), Headers: hdrs, Tagging: "x=y"}); err != nil {
		t.Fatal(err)
	}
	st, err := c.s.StatObject(ctx, testBucket, "k")
	if err != nil || !maps.Equal(st.Headers, hdrs) || st.Tagging != "x=y" {
		t.Fatalf("StatObject: %+v, %v", st, err)
	}
	res, err := c.s.ListObjects(ctx, testBucket, ListOptions{})
	if err != nil || len(res.Objects) != 1 || res.Objects[0].Tagging != "x=y" {
		t.Fatalf("ListObjects: %+v, %v", res, err)
	}
}

func TestUpdateBucket(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	ctx := context.Background()
	set := func(f func(*BucketConfig)) {
		t.Helper()
		if err := c.s.UpdateBucket(ctx, testBucket, f); err != nil {
			t.Fatal(err)
		}
	}
	set(func(b *BucketConfig) { b.Tagging = "t=1" })
	set(func(b *BucketConfig) { b.CORS = "<CORSConfiguration/>" })
	want := BucketConfig{Tagging: "t=1", CORS: "<CORSConfiguration/>"}
	if info, err := c.s.HeadBucket(ctx, testBucket); err != nil || info.Config != want {
		t.Fatalf("HeadBucket: %+v, %v", info, err)
	}
	// A store that never cached the bucket reads the configuration from the
	// nodes, as does a listing.
	fresh := c.newStore(t)
	if info, err := fresh.HeadBucket(ctx, testBucket); err != nil || info.Config != want {
		t.Fatalf("HeadBucket from another store: %+v, %v", info, err)
	}
	if bs, err := fresh.ListBuckets(ctx); err != nil || len(bs) != 1 || bs[0].Config != want {
		t.Fatalf("ListBuckets: %+v, %v", bs, err)
	}
	if err := c.s.UpdateBucket(ctx, "nope", func(*BucketConfig) {}); !errors.Is(err, ErrNoSuchBucket) {
		t.Fatalf("UpdateBucket of a missing bucket: %v", err)
	}
	// A bucket deleted and created again starts with no configuration.
	if err := c.s.DeleteBucket(ctx, testBucket); err != nil {
		t.Fatal(err)
	}
	if err := c.s.CreateBucket(ctx, testBucket); err != nil {
		t.Fatal(err)
	}
	if info, err := c.newStore(t).HeadBucket(ctx, testBucket); err != nil || info.Config != (BucketConfig{}) {
		t.Fatalf("recreated bucket: %+v, %v", info, err)
	}
}

// newStore returns another store over c's nodes, with a cold bucket cache.
func (c *cluster) newStore(t *testing.T) *Store {
	t.Helper()
	return c.newStoreOn(t, c.s.Map())
}

// newStoreOn is newStore with map m.
func (c *cluster) newStoreOn(t *testing.T, m *placement.Map) *Store {
	t.Helper()
	s, err := New(Config{
		Map:         m,
		Dial:        func(n placement.Node) client.Node { return c.nodes[n.ID] },
		CallTimeout: time.Second,
		Now:         func() time.Time { return testNow },
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.bg.Wait)
	return s
}

func bytesReader(s string) *strings.Reader { return strings.NewReader(s) }
