package objects

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// versionCluster is six real nodes (4+2) and gateways over them; each
// node's client can be told to fail bucket writes or version deletes, as
// a node that is down for just that call.
type versionCluster struct {
	m     *placement.Map
	nodes map[string]*flakyNode
}

type flakyNode struct {
	*client.Client
	failPutBucket, failDeleteVersion, failSetTags atomic.Bool
	// tagsFirst, once set, is a tag update the node takes just before
	// the next one it is sent, as if it had arrived first.
	tagsFirst atomic.Pointer[client.TagUpdate]
	// bucketFirst, once set, is a bucket record the node stores just
	// before the next one it is sent.
	bucketFirst atomic.Pointer[client.BucketRecord]
}

var errNodeFlaked = kerr.E("test", kerr.Unavailable, errors.New("node down for this call"))

func (f *flakyNode) PutBucket(ctx context.Context, rec client.BucketRecord) error {
	if f.failPutBucket.Load() {
		return errNodeFlaked
	}
	if first := f.bucketFirst.Swap(nil); first != nil {
		if err := f.Client.PutBucket(ctx, *first); err != nil {
			return err
		}
	}
	return f.Client.PutBucket(ctx, rec)
}

// A bucket record update that one node stored while the others refused it
// for a newer record is not written again above that record: a reader may
// have served it from the one node, and a version above could bury a
// record acknowledged since. It answers 503, and the newer record stays.
func TestBucketUpdateTakenSomewhereIsNotWrittenAgain(t *testing.T) {
	vc, s := newVersionedBucket(t)
	ctx := context.Background()
	ahead := vc.gateway(t, 0)
	ahead.clock.now = func() time.Time { return time.Now().Add(time.Hour) }
	rec, err := vc.nodes["n0"].GetBucket(ctx, testBucket)
	if err != nil {
		t.Fatal(err)
	}
	rec.Versioning, rec.Version = client.VersioningSuspended, ahead.newVersion()
	for id, n := range vc.nodes {
		if id != "n0" {
			n.bucketFirst.Store(&rec)
		}
	}
	err = s.PutBucketVersioning(ctx, testBucket, client.VersioningEnabled)
	if !kerr.Is(kerr.Unavailable, err) {
		t.Fatalf("bucket update: %v, want Unavailable", err)
	}
	for i := range 3 {
		if got, err := s.GetBucketVersioning(ctx, testBucket); err != nil || got != client.VersioningSuspended {
			t.Fatalf("read %d of versioning after the update: %q, %v; want the newer record's", i, got, err)
		}
	}
}

func (f *flakyNode) DeleteVersion(ctx context.Context, bucket, key, version string) (*client.Record, error) {
	if f.failDeleteVersion.Load() {
		return nil, errNodeFlaked
	}
	return f.Client.DeleteVersion(ctx, bucket, key, version)
}

func newVersionCluster(t *testing.T) *versionCluster {
	t.Helper()
	vc := &versionCluster{nodes: make(map[string]*flakyNode)}
	vc.m = &placement.Map{Epoch: 1, DataShards: 4, ParityShards: 2, Partitions: 64, BlockSize: testBlock}
	for i := range 6 {
		id := fmt.Sprintf("n%d", i)
		n, err := storagenode.Open(storagenode.Config{ID: id, Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(n.Handler())
		t.Cleanup(func() {
			srv.Close()
			n.Close()
		})
		vc.nodes[id] = &flakyNode{Client: client.New(srv.URL, nil)}
		vc.m.Nodes = append(vc.m.Nodes, placement.Node{ID: id, Addr: srv.Listener.Addr().String(), Zone: fmt.Sprintf("z%d", i)})
	}
	return vc
}

// gateway returns a Store over the cluster whose bucket cache trusts a
// record for ttl.
func (vc *versionCluster) gateway(t *testing.T, ttl time.Duration) *Store {
	t.Helper()
	s, err := New(Config{
		Map:            vc.m,
		Dial:           func(n placement.Node) client.Node { return vc.nodes[n.ID] },
		CallTimeout:    5 * time.Second,
		BucketCacheTTL: ttl,
		Logger:         slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.bg.Wait)
	return s
}

// newVersionedBucket returns a cluster and a gateway over it, with
// testBucket created and versioning Enabled.
func newVersionedBucket(t *testing.T) (*versionCluster, *Store) {
	t.Helper()
	vc := newVersionCluster(t)
	s := vc.gateway(t, 0)
	if err := s.CreateBucket(context.Background(), testBucket); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBucketVersioning(context.Background(), testBucket, client.VersioningEnabled); err != nil {
		t.Fatal(err)
	}
	return vc, s
}

func putString(t *testing.T, s *Store, key, body string) ObjectInfo {
	t.Helper()
	info, err := s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: key, Size: int64(len(body)), Body: strings.NewReader(body)})
	if err != nil {
		t.Fatalf("PUT %s: %v", key, err)
	}
	return info
}

func readObject(obj Object, err error) (string, error) {
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	err = obj.WriteRange(context.Background(), &buf, 0, obj.Info().Size)
	return buf.String(), err
}

func getVersion(s *Store, key, id string) (string, error) {
	return readObject(s.OpenObjectVersion(context.Background(), testBucket, key, id))
}

func getCurrent(s *Store, key string) (string, error) {
	return readObject(s.OpenObject(context.Background(), testBucket, key))
}

// listed returns "key id [marker] [latest]" per version listed.
func listed(t *testing.T, s *Store, opts VersionListOptions) []string {
	t.Helper()
	res, err := s.ListObjectVersions(context.Background(), testBucket, opts)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range res.Versions {
		e := v.Key + " " + v.VersionID
		if v.DeleteMarker {
			e += " marker"
		}
		if v.IsLatest {
			e += " latest"
		}
		out = append(out, e)
	}
	return out
}

// TestVersioningStaleGateway: gateway B has cached the bucket as
// unversioned; gateway A enables versioning while two nodes miss the
// bucket write. B then overwrites a key: the overwritten version survives
// on every node, the two unaware ones included, because a stage answer
// told B the bucket is versioned. A delete through B writes a marker and
// keeps the version too.
func TestVersioningStaleGateway(t *testing.T) {
	vc := newVersionCluster(t)
	ctx := context.Background()
	a, b := vc.gateway(t, time.Hour), vc.gateway(t, time.Hour)
	if err := a.CreateBucket(ctx, testBucket); err != nil {
		t.Fatal(err)
	}
	if _, err := b.HeadBucket(ctx, testBucket); err != nil { // B caches it
		t.Fatal(err)
	}
	putString(t, b, "k", "one")

	vc.nodes["n0"].failPutBucket.Store(true)
	vc.nodes["n1"].failPutBucket.Store(true)
	if err := a.PutBucketVersioning(ctx, testBucket, client.VersioningEnabled); err != nil {
		t.Fatal(err)
	}
	info := putString(t, b, "k", "two")
	if info.VersionID == client.NullVersion || !info.Versioned {
		t.Fatalf("PUT through the stale gateway: version id %q, versioned %v; want a real version", info.VersionID, info.Versioned)
	}
	for _, id := range []string{"n0", "n1"} {
		kv, err := vc.nodes[id].KeyVersions(ctx, testBucket, "k")
		if err != nil {
			t.Fatal(err)
		}
		if len(kv.Versions) != 2 {
			t.Errorf("node %s (missed Enabled) holds %d versions, want 2", id, len(kv.Versions))
		}
	}
	for _, s := range []*Store{a, b} {
		if got, err := getVersion(s, "k", client.NullVersion); err != nil || got != "one" {
			t.Errorf("GET versionId=null = %q, %v; want the overwritten version", got, err)
		}
		if got, err := getCurrent(s, "k"); err != nil || got != "two" {
			t.Errorf("GET = %q, %v", got, err)
		}
	}
	res, err := b.DeleteObjectMarked(ctx, testBucket, "k")
	if err != nil || !res.DeleteMarker || res.VersionID == "" || res.VersionID == client.NullVersion {
		t.Fatalf("DELETE through the stale gateway = %+v, %v; want a versioned marker", res, err)
	}
	want := []string{"k " + res.VersionID + " marker latest", "k " + info.VersionID, "k null"}
	if got := listed(t, a, VersionListOptions{}); !slices.Equal(got, want) {
		t.Fatalf("versions %q, want %q", got, want)
	}
}

// TestVersioningLifecycle: versions kept, read by id, a marker deleted by
// id restores the previous version, a noncurrent version deleted by id is
// gone for good; Suspended replaces the null version only.
func TestVersioningLifecycle(t *testing.T) {
	vc := newVersionCluster(t)
	ctx := context.Background()
	s := vc.gateway(t, 0)
	if err := s.CreateBucket(ctx, testBucket); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBucketVersioning(ctx, testBucket, "Sometimes"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("bad state: %v", err)
	}
	if err := s.PutBucketVersioning(ctx, testBucket, client.VersioningEnabled); err != nil {
		t.Fatal(err)
	}
	if st, err := s.GetBucketVersioning(ctx, testBucket); err != nil || st != client.VersioningEnabled {
		t.Fatalf("GetBucketVersioning = %q, %v", st, err)
	}
	v1 := putString(t, s, "k", "one").VersionID
	v2 := putString(t, s, "k", "two").VersionID
	for id, want := range map[string]string{v1: "one", v2: "two"} {
		if got, err := getVersion(s, "k", id); err != nil || got != want {
			t.Errorf("GET version %s = %q, %v; want %q", id, got, err, want)
		}
	}
	del, err := s.DeleteObjectMarked(ctx, testBucket, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := getCurrent(s, "k"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("GET after delete: %v", err)
	}
	if _, err := getVersion(s, "k", del.VersionID); !errors.Is(err, ErrDeleteMarker) {
		t.Fatalf("GET of the marker by id: %v", err)
	}
	// Restore: delete the marker by id.
	if r, err := s.DeleteObjectVersion(ctx, testBucket, "k", del.VersionID); err != nil || !r.DeleteMarker {
		t.Fatalf("DELETE marker by id = %+v, %v", r, err)
	}
	if got, err := getCurrent(s, "k"); err != nil || got != "two" {
		t.Fatalf("GET after restoring = %q, %v; want two", got, err)
	}
	// Delete the noncurrent v1 for good.
	if _, err := s.DeleteObjectVersion(ctx, testBucket, "k", v1); err != nil {
		t.Fatal(err)
	}
	if _, err := getVersion(s, "k", v1); !errors.Is(err, ErrNoSuchVersion) {
		t.Fatalf("GET of a deleted version: %v", err)
	}
	if got, want := listed(t, s, VersionListOptions{}), []string{"k " + v2 + " latest"}; !slices.Equal(got, want) {
		t.Fatalf("versions %q, want %q", got, want)
	}

	// Suspended: null writes replace each other, v2 stays.
	if err := s.PutBucketVersioning(ctx, testBucket, client.VersioningSuspended); err != nil {
		t.Fatal(err)
	}
	if id := putString(t, s, "k", "three").VersionID; id != client.NullVersion {
		t.Fatalf("suspended PUT version id %q", id)
	}
	putString(t, s, "k", "four")
	if got, want := listed(t, s, VersionListOptions{}), []string{"k null latest", "k " + v2}; !slices.Equal(got, want) {
		t.Fatalf("versions %q, want %q", got, want)
	}
	if got, err := getVersion(s, "k", client.NullVersion); err != nil || got != "four" {
		t.Fatalf("GET null = %q, %v", got, err)
	}
}

// TestDeletedVersionStaysDeleted: a node down while the current version
// is deleted by id still calls it current; readers must not serve it.
func TestDeletedVersionStaysDeleted(t *testing.T) {
	vc, s := newVersionedBucket(t)
	ctx := context.Background()
	putString(t, s, "k", "old")
	v2 := putString(t, s, "k", "new").VersionID
	vc.nodes["n3"].failDeleteVersion.Store(true)
	if _, err := s.DeleteObjectVersion(ctx, testBucket, "k", v2); err != nil {
		t.Fatal(err)
	}
	vc.nodes["n3"].failDeleteVersion.Store(false)
	st, err := vc.nodes["n3"].Stat(ctx, testBucket, "k")
	if err != nil || st.Committed == nil || st.Committed.Version != v2 {
		t.Fatalf("n3 should still hold the deleted version: %+v, %v", st.Committed, err)
	}
	for i := range 5 {
		if got, err := getCurrent(s, "k"); err != nil || got != "old" {
			t.Fatalf("GET %d = %q, %v; want old", i, got, err)
		}
	}
	if _, err := getVersion(s, "k", v2); !errors.Is(err, ErrNoSuchVersion) {
		t.Fatalf("GET of the deleted version: %v", err)
	}
}

// TestListObjectVersionsPaging: markers inside a key, delimiters, prefixes.
func TestListObjectVersionsPaging(t *testing.T) {
	_, s := newVersionedBucket(t)
	ctx := context.Background()
	var all []string
	ids := map[string][]string{}
	for _, k := range []string{"a", "d/x", "b", "a", "d/y", "b", "a"} {
		ids[k] = append([]string{putString(t, s, k, k).VersionID}, ids[k]...)
	}
	for _, k := range []string{"a", "b", "d/x", "d/y"} {
		for i, id := range ids[k] {
			e := k + " " + id
			if i == 0 {
				e += " latest"
			}
			all = append(all, e)
		}
	}
	var got []string
	opts := VersionListOptions{MaxKeys: 2}
	for range 10 {
		res, err := s.ListObjectVersions(ctx, testBucket, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range res.Versions {
			e := v.Key + " " + v.VersionID
			if v.IsLatest {
				e += " latest"
			}
			got = append(got, e)
		}
		if !res.Truncated {
			break
		}
		opts.KeyMarker, opts.VersionMarker = res.NextKeyMarker, res.NextVersionMarker
	}
	if !slices.Equal(got, all) {
		t.Fatalf("paged versions\n%q\nwant\n%q", got, all)
	}
	res, err := s.ListObjectVersions(ctx, testBucket, VersionListOptions{Delimiter: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.CommonPrefixes, []string{"d/"}) || len(res.Versions) != 5 {
		t.Fatalf("delimited: prefixes %q, %d versions", res.CommonPrefixes, len(res.Versions))
	}
	if got := listed(t, s, VersionListOptions{Prefix: "d/"}); len(got) != 2 {
		t.Fatalf("prefix d/: %q", got)
	}
}

// TestCurrentDeleteMarker: a read of a key whose current version is a
// delete marker fails with ErrNoSuchKey naming the marker, in a versioned
// bucket; an unversioned bucket's deleted key names none.
func TestCurrentDeleteMarker(t *testing.T) {
	vc := newVersionCluster(t)
	ctx := context.Background()
	s := vc.gateway(t, 0)
	if err := s.CreateBucket(ctx, testBucket); err != nil {
		t.Fatal(err)
	}
	putString(t, s, "plain", "x")
	if err := s.DeleteObject(ctx, testBucket, "plain"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBucketVersioning(ctx, testBucket, client.VersioningEnabled); err != nil {
		t.Fatal(err)
	}
	putString(t, s, "k", "data")
	del, err := s.DeleteObjectMarked(ctx, testBucket, "k")
	if err != nil || !del.DeleteMarker {
		t.Fatalf("DELETE = %+v, %v", del, err)
	}
	for _, c := range []struct {
		name string
		read func() error
	}{
		{"stat", func() error { _, err := s.StatObject(ctx, testBucket, "k"); return err }},
		{"open", func() error { _, err := s.OpenObject(ctx, testBucket, "k"); return err }},
	} {
		err := c.read()
		var me *CurrentMarkerError
		if !errors.Is(err, ErrNoSuchKey) || !kerr.Is(kerr.NotExist, err) || !errors.As(err, &me) {
			t.Fatalf("%s: %v, want ErrNoSuchKey naming the marker", c.name, err)
		}
		if me.Marker.VersionID != del.VersionID || !me.Marker.DeleteMarker {
			t.Fatalf("%s: marker %+v, want version %s", c.name, me.Marker, del.VersionID)
		}
	}
	_, err = s.StatObject(ctx, testBucket, "plain")
	var me *CurrentMarkerError
	if !errors.Is(err, ErrNoSuchKey) || errors.As(err, &me) {
		t.Fatalf("stat of a key deleted before versioning: %v, want ErrNoSuchKey naming no marker", err)
	}
}
