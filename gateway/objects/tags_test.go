package objects

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

func (f *flakyNode) SetTags(ctx context.Context, u client.TagUpdate) (client.Record, error) {
	if f.failSetTags.Load() {
		return client.Record{}, errNodeFlaked
	}
	if first := f.tagsFirst.Swap(nil); first != nil {
		if _, err := f.Client.SetTags(ctx, *first); err != nil {
			return client.Record{}, err
		}
	}
	return f.Client.SetTags(ctx, u)
}

// A tag update that one node took while the others answered that they
// keep tags of a newer stamp (an update that reached them first) is not
// sent again above that stamp: a reader may have served it from the one
// node, and going again would put it above an update acknowledged since.
// It answers 503 ErrSuperseded, and the newer update's tags stay.
func TestTagUpdateTakenSomewhereIsNotSentAgain(t *testing.T) {
	vc, s := newVersionedBucket(t)
	ctx := context.Background()
	v := putString(t, s, "k", "body")
	ahead := vc.gateway(t, 0)
	ahead.clock.now = func() time.Time { return time.Now().Add(time.Hour) }
	newer := client.TagUpdate{Bucket: testBucket, Key: "k", Version: v.VersionID, Tagging: "newer=1", At: ahead.clock.next()}
	taker := ""
	for id, n := range vc.nodes {
		if taker == "" {
			taker = id
			continue
		}
		n.tagsFirst.Store(&newer)
	}
	_, err := s.SetObjectTags(ctx, testBucket, "k", "", "mine=1")
	if !errors.Is(err, ErrSuperseded) || kerr.KindOf(err) != kerr.Unavailable {
		t.Fatalf("tag update: %v, want ErrSuperseded with kind Unavailable", err)
	}
	for i := range 3 {
		if cur, err := s.StatObject(ctx, testBucket, "k"); err != nil || cur.Tagging != "newer=1" {
			t.Fatalf("read %d: tags %q, %v; want the newer update's", i, cur.Tagging, err)
		}
	}
	st, err := vc.nodes[taker].Stat(ctx, testBucket, "k")
	if err != nil || st.Committed == nil || st.Committed.Tagging != "mine=1" {
		t.Fatalf("node %s: %+v, %v; want it to hold the update it took", taker, st.Committed, err)
	}
}

// TestSetObjectTags: a tag update changes the tags of exactly the version
// it names and nothing else (no new version, same ETag and Last-Modified),
// is read back whichever nodes a read asks although one node missed it,
// needs a write quorum, and refuses delete markers.
func TestSetObjectTags(t *testing.T) {
	vc, s := newVersionedBucket(t)
	ctx := context.Background()
	v1 := putString(t, s, "k", "old")
	v2 := putString(t, s, "k", "new")
	versions := listed(t, s, VersionListOptions{})

	// The holder of data shard 0 is asked by every quick read: missing
	// the update, it must not hide the tags the others took.
	first := ""
	for id, n := range vc.nodes {
		if st, err := n.Stat(ctx, testBucket, "k"); err == nil && st.Committed != nil && st.Committed.Shard == 0 {
			first = id
		}
	}
	vc.nodes[first].failSetTags.Store(true)
	info, err := s.SetObjectTags(ctx, testBucket, "k", "", "a=1")
	if err != nil {
		t.Fatal(err)
	}
	if info.VersionID != v2.VersionID || info.Tagging != "a=1" {
		t.Fatalf("answer: version %s tags %q", info.VersionID, info.Tagging)
	}
	if _, err := s.SetObjectTags(ctx, testBucket, "k", v1.VersionID, "b=2"); err != nil {
		t.Fatal(err)
	}
	vc.nodes[first].failSetTags.Store(false)
	for i := range 3 {
		cur, err := s.StatObject(ctx, testBucket, "k")
		if err != nil {
			t.Fatal(err)
		}
		if cur.VersionID != v2.VersionID || cur.Tagging != "a=1" || cur.ETag != v2.ETag || !cur.Modified.Equal(v2.Modified) {
			t.Fatalf("read %d of the current version: %+v, was %+v", i, cur, v2)
		}
		if got, err := getCurrent(s, "k"); err != nil || got != "new" {
			t.Fatalf("GET = %q, %v", got, err)
		}
		old, err := s.StatObjectVersion(ctx, testBucket, "k", v1.VersionID)
		if err != nil {
			t.Fatal(err)
		}
		if old.Tagging != "b=2" || old.ETag != v1.ETag || !old.Modified.Equal(v1.Modified) {
			t.Fatalf("read %d of the noncurrent version: %+v, was %+v", i, old, v1)
		}
	}
	if got := listed(t, s, VersionListOptions{}); !slices.Equal(got, versions) {
		t.Fatalf("versions after tag updates %v, want %v", got, versions)
	}

	// A gateway whose clock lags by an hour still wins over an update
	// acknowledged before its own began.
	lagging := vc.gateway(t, 0)
	lagging.clock.now = func() time.Time { return time.Now().Add(-time.Hour) }
	if _, err := lagging.SetObjectTags(ctx, testBucket, "k", "", "late=1"); err != nil {
		t.Fatal(err)
	}
	if cur, err := s.StatObject(ctx, testBucket, "k"); err != nil || cur.Tagging != "late=1" {
		t.Fatalf("tags after the lagging gateway's update: %q, %v", cur.Tagging, err)
	}
	if _, err := s.SetObjectTags(ctx, testBucket, "k", "", ""); err != nil {
		t.Fatal(err)
	}
	if cur, err := lagging.StatObject(ctx, testBucket, "k"); err != nil || cur.Tagging != "" {
		t.Fatalf("tags after removing them: %q, %v", cur.Tagging, err)
	}

	// Too few nodes: not acknowledged.
	for _, id := range []string{"n1", "n2", "n3"} {
		vc.nodes[id].failSetTags.Store(true)
	}
	if _, err := s.SetObjectTags(ctx, testBucket, "k", "", "q=1"); !kerr.Is(kerr.Unavailable, err) {
		t.Fatalf("tag update on 3 of 6 nodes: %v, want Unavailable", err)
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		vc.nodes[id].failSetTags.Store(false)
	}

	// A delete marker has no tags; a deleted key has none to change.
	del, err := s.DeleteObjectMarked(ctx, testBucket, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetObjectTags(ctx, testBucket, "k", "", "c=3"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("tagging a deleted key: %v, want ErrNoSuchKey", err)
	}
	if _, err := s.SetObjectTags(ctx, testBucket, "k", del.VersionID, "c=3"); !errors.Is(err, ErrDeleteMarker) {
		t.Fatalf("tagging a delete marker: %v, want ErrDeleteMarker", err)
	}
	if _, err := s.SetObjectTags(ctx, testBucket, "k", "00000000000000000000000000", "c=3"); !errors.Is(err, ErrNoSuchVersion) {
		t.Fatalf("tagging a missing version: %v, want ErrNoSuchVersion", err)
	}
}
