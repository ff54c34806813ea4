package objects

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// mpCluster is a cluster whose clock tests can move.
func mpCluster(t *testing.T) (*cluster, *atomic.Int64) {
	var clock atomic.Int64
	clock.Store(testNow.UnixNano())
	c := newCluster(t, 6, 4, 2, func(cfg *Config) {
		cfg.Now = func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	})
	return c, &clock
}

func (c *cluster) create(key string) string {
	c.t.Helper()
	up, err := c.s.CreateUpload(context.Background(), UploadInput{Bucket: testBucket, Key: key, ContentType: "text/x-test", UserMeta: map[string]string{"a": "b"}})
	if err != nil {
		c.t.Fatalf("CreateUpload %s: %v", key, err)
	}
	return up.UploadID
}

func (c *cluster) putPart(key, id string, n int, data []byte) PartInfo {
	c.t.Helper()
	p, err := c.s.PutPart(context.Background(), PartInput{Bucket: testBucket, Key: key, UploadID: id, Number: n, Size: int64(len(data)), Body: bytes.NewReader(data)})
	if err != nil {
		c.t.Fatalf("PutPart %s #%d: %v", key, n, err)
	}
	return p
}

// liveInternal returns the internal keys some node holds a live version of.
func (c *cluster) liveInternal() []string {
	c.flush()
	seen := map[string]bool{}
	var out []string
	for _, n := range c.list {
		n.Edit(func(st *nodetest.State) {
			for k, fk := range st.Keys {
				_, key, _ := strings.Cut(k, "\x00")
				if isInternal(key) && fk.Committed != nil && !fk.Committed.Deleted && !seen[key] {
					seen[key] = true
					out = append(out, key)
				}
			}
		})
	}
	return out
}

func complete(parts ...PartInfo) []CompletePart {
	out := make([]CompletePart, len(parts))
	for i, p := range parts {
		out[i] = CompletePart{Number: p.Number, ETag: p.ETag}
	}
	return out
}

func TestMultipartRoundTrip(t *testing.T) {
	c, _ := mpCluster(t)
	ctx := context.Background()
	p1, p2, p3 := payload(MinPartSize, 1), payload(MinPartSize+1000, 2), payload(777, 3)
	id := c.create("big")

	c.putPart("big", id, 2, payload(MinPartSize, 9)) // replaced below
	parts := []PartInfo{c.putPart("big", id, 1, p1), c.putPart("big", id, 2, p2), c.putPart("big", id, 3, p3)}
	if parts[1].ETag != md5hex(p2) || parts[1].Size != int64(len(p2)) {
		t.Fatalf("part 2: %+v", parts[1])
	}

	list, err := c.s.ListParts(ctx, testBucket, "big", id, PartListOptions{})
	if err != nil || len(list.Parts) != 3 || list.Parts[1].ETag != md5hex(p2) || list.Truncated {
		t.Fatalf("ListParts: %+v, %v", list, err)
	}
	page, err := c.s.ListParts(ctx, testBucket, "big", id, PartListOptions{After: 1, MaxParts: 1})
	if err != nil || len(page.Parts) != 1 || page.Parts[0].Number != 2 || !page.Truncated || page.NextAfter != 2 {
		t.Fatalf("ListParts page: %+v, %v", page, err)
	}
	ups, err := c.s.ListUploads(ctx, testBucket, UploadListOptions{})
	if err != nil || len(ups.Uploads) != 1 || ups.Uploads[0].UploadID != id || ups.Uploads[0].Key != "big" {
		t.Fatalf("ListUploads: %+v, %v", ups, err)
	}
	// Internal keys never show in listings.
	if res, err := c.s.ListObjects(ctx, testBucket, ListOptions{}); err != nil || len(res.Objects) != 0 {
		t.Fatalf("ListObjects during the upload: %+v, %v", res, err)
	}

	info, err := c.s.CompleteUpload(ctx, CompleteInput{Bucket: testBucket, Key: "big", UploadID: id, Parts: complete(parts...)})
	if err != nil {
		t.Fatal(err)
	}
	whole := append(append(append([]byte(nil), p1...), p2...), p3...)
	sum := md5.New()
	for _, p := range [][]byte{p1, p2, p3} {
		s := md5.Sum(p)
		sum.Write(s[:])
	}
	wantETag := hex.EncodeToString(sum.Sum(nil)) + "-3"
	if info.ETag != wantETag || info.Size != int64(len(whole)) || info.ContentType != "text/x-test" || info.UserMeta["a"] != "b" {
		t.Fatalf("completed: %+v, want ETag %s size %d", info, wantETag, len(whole))
	}
	st, err := c.s.StatObject(ctx, testBucket, "big")
	if err != nil || st.ETag != wantETag || len(st.PartSizes) != 3 || st.PartSizes[1] != int64(len(p2)) {
		t.Fatalf("StatObject: %+v, %v", st, err)
	}
	c.mustGet("big", whole)
	obj, err := c.s.OpenObject(ctx, testBucket, "big")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int64{{0, 1}, {MinPartSize - 10, 20}, {MinPartSize - 1, MinPartSize + 1002}, {int64(len(whole)) - 800, 800}, {5, int64(len(whole)) - 5}} {
		var buf bytes.Buffer
		if err := obj.WriteRange(ctx, &buf, r[0], r[1]); err != nil || !bytes.Equal(buf.Bytes(), whole[r[0]:r[0]+r[1]]) {
			t.Fatalf("range %v: %v (%d bytes)", r, err, buf.Len())
		}
	}
	res, err := c.s.ListObjects(ctx, testBucket, ListOptions{})
	if err != nil || len(res.Objects) != 1 || res.Objects[0].Key != "big" || res.Objects[0].ETag != wantETag || res.Objects[0].Size != int64(len(whole)) {
		t.Fatalf("ListObjects: %+v, %v", res, err)
	}

	// The upload is gone and only the three listed parts remain.
	if _, err := c.s.ListParts(ctx, testBucket, "big", id, PartListOptions{}); !kerr.Is(kerr.NotExist, err) {
		t.Fatalf("ListParts after completion: %v", err)
	}
	if ups, _ := c.s.ListUploads(ctx, testBucket, UploadListOptions{}); len(ups.Uploads) != 0 {
		t.Fatalf("uploads after completion: %+v", ups)
	}
	if live := c.liveInternal(); len(live) != 3 {
		t.Fatalf("live internal keys after completion: %q, want the 3 parts", live)
	}

	// Deleting the object frees its parts.
	if err := c.s.DeleteObject(ctx, testBucket, "big"); err != nil {
		t.Fatal(err)
	}
	if live := c.liveInternal(); len(live) != 0 {
		t.Fatalf("live internal keys after delete: %q", live)
	}
	if _, err := c.get("big"); !kerr.Is(kerr.NotExist, err) {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestMultipartErrors(t *testing.T) {
	c, _ := mpCluster(t)
	ctx := context.Background()
	id := c.create("k")
	small := c.putPart("k", id, 1, payload(1000, 1))
	big := c.putPart("k", id, 2, payload(MinPartSize, 2))
	c.putPart("k", id, 3, payload(10, 3))
	other := c.create("other")

	completeErr := func(key, upload string, parts ...CompletePart) error {
		_, err := c.s.CompleteUpload(ctx, CompleteInput{Bucket: testBucket, Key: key, UploadID: upload, Parts: parts})
		return err
	}
	cp := func(p PartInfo) CompletePart { return CompletePart{Number: p.Number, ETag: p.ETag} }
	putErr := func(in PartInput) error { _, err := c.s.PutPart(ctx, in); return err }
	listErr := func(key, upload string) error {
		_, err := c.s.ListParts(ctx, testBucket, key, upload, PartListOptions{})
		return err
	}
	createErr := func(bucket, key string) error {
		_, err := c.s.CreateUpload(ctx, UploadInput{Bucket: bucket, Key: key})
		return err
	}

	for _, tc := range []struct {
		name string
		err  error
		want error
		kind kerr.Kind
	}{
		{"unknown upload", completeErr("k", "01ARZ3NDEKTSV4RRFFQ69G5FAV", cp(big)), ErrNoSuchUpload, kerr.NotExist},
		{"garbage upload", completeErr("k", "../x", cp(big)), ErrNoSuchUpload, kerr.NotExist},
		{"other key", completeErr("k", other, cp(big)), ErrNoSuchUpload, kerr.NotExist},
		{"order", completeErr("k", id, cp(big), cp(small)), ErrInvalidPartOrder, kerr.Invalid},
		{"duplicate", completeErr("k", id, cp(big), cp(big)), ErrInvalidPartOrder, kerr.Invalid},
		{"missing part", completeErr("k", id, cp(big), CompletePart{Number: 7, ETag: big.ETag}), ErrInvalidPart, kerr.Invalid},
		{"wrong etag", completeErr("k", id, CompletePart{Number: 2, ETag: small.ETag}), ErrInvalidPart, kerr.Invalid},
		{"part number 0", completeErr("k", id, CompletePart{Number: 0, ETag: small.ETag}), ErrInvalidPart, kerr.Invalid},
		{"too small", completeErr("k", id, cp(small), cp(big)), ErrEntityTooSmall, kerr.Invalid},
		{"no parts", completeErr("k", id), ErrInvalidArgument, kerr.Invalid},
		{"internal key", completeErr("\x00mpu/x", id, cp(big)), ErrInvalidArgument, kerr.Invalid},
		{"abort other key", c.s.AbortUpload(ctx, testBucket, "k", other), ErrNoSuchUpload, kerr.NotExist},
		{"part of no such upload", putErr(PartInput{Bucket: testBucket, Key: "k", UploadID: other, Number: 1, Body: strings.NewReader("")}), ErrNoSuchUpload, kerr.NotExist},
		{"part number 10001", putErr(PartInput{Bucket: testBucket, Key: "k", UploadID: id, Number: 10001, Body: strings.NewReader("")}), ErrInvalidArgument, kerr.Invalid},
		{"list parts of another key", listErr("k", other), ErrNoSuchUpload, kerr.NotExist},
		{"no bucket", createErr("nope", "k"), ErrNoSuchBucket, kerr.NotExist},
	} {
		if !errors.Is(tc.err, tc.want) || kerr.KindOf(tc.err) != tc.kind {
			t.Errorf("%s: %v, want %v (%v)", tc.name, tc.err, tc.want, tc.kind)
		}
	}
	// Parts stored without a checksum cannot contradict one.
	if err := completeErr("k", id, CompletePart{Number: 2, ETag: big.ETag, Checksums: map[string]string{"crc32": "AAAAAA=="}}); err != nil {
		t.Fatal(err)
	}
	// The upload was completed with part 2 only; the last part alone may
	// be small.
	c.mustGet("k", payload(MinPartSize, 2))
	id2 := c.create("k2")
	p := c.putPart("k2", id2, 4, payload(10, 4))
	if _, err := c.s.CompleteUpload(ctx, CompleteInput{Bucket: testBucket, Key: "k2", UploadID: id2, Parts: complete(p)}); err != nil {
		t.Fatal(err)
	}
	c.mustGet("k2", payload(10, 4))
}

func TestMultipartChecksums(t *testing.T) {
	c, _ := mpCluster(t)
	ctx := context.Background()
	id := c.create("sum")
	crc := func(b []byte) string {
		v := crc32.ChecksumIEEE(b)
		return base64.StdEncoding.EncodeToString([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	a, b := payload(MinPartSize, 5), payload(100, 6)
	var parts []PartInfo
	for i, data := range [][]byte{a, b} {
		sums := map[string]string{"crc32": crc(data)}
		p, err := c.s.PutPart(ctx, PartInput{Bucket: testBucket, Key: "sum", UploadID: id, Number: i + 1, Size: int64(len(data)),
			Body: bytes.NewReader(data), Checksums: func() map[string]string { return sums }})
		if err != nil || p.Checksums["crc32"] != sums["crc32"] {
			t.Fatalf("part %d: %+v, %v", i+1, p, err)
		}
		parts = append(parts, p)
	}
	bad := complete(parts...)
	bad[1].Checksums = map[string]string{"crc32": crc(a)}
	if _, err := c.s.CompleteUpload(ctx, CompleteInput{Bucket: testBucket, Key: "sum", UploadID: id, Parts: bad}); !errors.Is(err, ErrInvalidPart) {
		t.Fatalf("complete with a wrong part checksum: %v", err)
	}
	good := complete(parts...)
	good[0].Checksums = map[string]string{"crc32": crc(a)}
	info, err := c.s.CompleteUpload(ctx, CompleteInput{Bucket: testBucket, Key: "sum", UploadID: id, Parts: good})
	if err != nil {
		t.Fatal(err)
	}
	ra, _ := base64.StdEncoding.DecodeString(crc(a))
	rb, _ := base64.StdEncoding.DecodeString(crc(b))
	want := crc(append(ra, rb...)) + "-2"
	if info.Checksums["crc32"] != want {
		t.Fatalf("composite checksum %q, want %q", info.Checksums["crc32"], want)
	}
	if st, _ := c.s.StatObject(ctx, testBucket, "sum"); st.Checksums["crc32"] != want {
		t.Fatalf("stat checksum %q, want %q", st.Checksums["crc32"], want)
	}
}

func TestMultipartAbort(t *testing.T) {
	c, _ := mpCluster(t)
	ctx := context.Background()
	id := c.create("gone")
	c.putPart("gone", id, 1, payload(3000, 1))
	c.putPart("gone", id, 1, payload(3000, 2))
	c.putPart("gone", id, 2, payload(30, 3))
	if live := c.liveInternal(); len(live) != 4 {
		t.Fatalf("before abort: %q", live)
	}
	if err := c.s.AbortUpload(ctx, testBucket, "gone", id); err != nil {
		t.Fatal(err)
	}
	if live := c.liveInternal(); len(live) != 0 {
		t.Fatalf("after abort: %q", live)
	}
	if err := c.s.AbortUpload(ctx, testBucket, "gone", id); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("second abort: %v", err)
	}
	if _, err := c.s.PutPart(ctx, PartInput{Bucket: testBucket, Key: "gone", UploadID: id, Number: 3, Body: strings.NewReader("")}); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("part after abort: %v", err)
	}
	if _, err := c.get("gone"); !kerr.Is(kerr.NotExist, err) {
		t.Fatalf("aborted upload left an object: %v", err)
	}
}

func TestListUploads(t *testing.T) {
	c, _ := mpCluster(t)
	ctx := context.Background()
	ids := map[string][]string{}
	for _, k := range []string{"b/2", "a", "b/1", "a", "c"} {
		ids[k] = append(ids[k], c.create(k))
	}
	type up struct{ key, id string }
	flat := func(l UploadList) (out []up) {
		for _, u := range l.Uploads {
			out = append(out, up{u.Key, u.UploadID})
		}
		return out
	}
	all, err := c.s.ListUploads(ctx, testBucket, UploadListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []up{{"a", ids["a"][0]}, {"a", ids["a"][1]}, {"b/1", ids["b/1"][0]}, {"b/2", ids["b/2"][0]}, {"c", ids["c"][0]}}
	if got := flat(all); !equalUps(got, want) {
		t.Fatalf("all uploads: %v, want %v", got, want)
	}
	page, err := c.s.ListUploads(ctx, testBucket, UploadListOptions{MaxUploads: 2})
	if err != nil || !page.Truncated || page.NextKeyMarker != "a" || page.NextUploadIDMarker != ids["a"][1] {
		t.Fatalf("first page: %+v, %v", page, err)
	}
	page, err = c.s.ListUploads(ctx, testBucket, UploadListOptions{KeyMarker: "a", UploadIDMarker: ids["a"][0]})
	if got := flat(page); err != nil || !equalUps(got, want[1:]) {
		t.Fatalf("after a's first upload: %v, %v", got, err)
	}
	page, err = c.s.ListUploads(ctx, testBucket, UploadListOptions{KeyMarker: "a"})
	if got := flat(page); err != nil || !equalUps(got, want[2:]) {
		t.Fatalf("after key a: %v, %v", got, err)
	}
	page, err = c.s.ListUploads(ctx, testBucket, UploadListOptions{Delimiter: "/"})
	if err != nil || len(page.CommonPrefixes) != 1 || page.CommonPrefixes[0] != "b/" || len(page.Uploads) != 3 {
		t.Fatalf("with delimiter: %+v, %v", page, err)
	}
	page, err = c.s.ListUploads(ctx, testBucket, UploadListOptions{Prefix: "b/"})
	if got := flat(page); err != nil || !equalUps(got, want[2:4]) {
		t.Fatalf("prefix b/: %v, %v", got, err)
	}
	// Deleting the bucket aborts them (the bucket holds no objects).
	if err := c.s.DeleteBucket(ctx, testBucket); err != nil {
		t.Fatal(err)
	}
	if live := c.liveInternal(); len(live) != 0 {
		t.Fatalf("uploads survived their bucket: %q", live)
	}
}

func equalUps[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSweepUploads(t *testing.T) {
	c, clock := mpCluster(t)
	ctx := context.Background()

	// An overwritten multipart object leaves its parts behind; the sweep
	// frees them once they are past the grace period.
	id := c.create("over")
	p := c.putPart("over", id, 1, payload(100, 1))
	if _, err := c.s.CompleteUpload(ctx, CompleteInput{Bucket: testBucket, Key: "over", UploadID: id, Parts: complete(p)}); err != nil {
		t.Fatal(err)
	}
	c.put("over", []byte("plain now"))
	// A completed object that is still live keeps its parts.
	id2 := c.create("kept")
	p2 := c.putPart("kept", id2, 1, payload(100, 2))
	if _, err := c.s.CompleteUpload(ctx, CompleteInput{Bucket: testBucket, Key: "kept", UploadID: id2, Parts: complete(p2)}); err != nil {
		t.Fatal(err)
	}
	// A stale and a fresh upload in progress.
	stale := c.create("stale")
	c.putPart("stale", stale, 1, payload(100, 3))
	clock.Add(int64(3 * 24 * time.Hour))
	fresh := c.create("fresh")
	c.putPart("fresh", fresh, 1, payload(100, 4))

	rep, err := c.s.SweepUploads(ctx, &SweepOptions{Expiry: 4 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep != (SweepReport{Buckets: 1, Freed: 1}) {
		t.Fatalf("first sweep: %+v", rep)
	}
	clock.Add(int64(2 * 24 * time.Hour))
	rep, err = c.s.SweepUploads(ctx, &SweepOptions{Expiry: 4 * 24 * time.Hour})
	if err != nil || rep != (SweepReport{Buckets: 1, Expired: 1}) {
		t.Fatalf("second sweep: %+v, %v", rep, err)
	}
	live := c.liveInternal()
	want := map[string]bool{uploadKey(fresh): true}
	for _, k := range live {
		if id, n, _ := parseUploadKey(k); n == 1 && (id == fresh || id == id2) {
			want[k] = true
		}
	}
	if len(live) != 3 || len(want) != 3 {
		t.Fatalf("after the sweeps: %q", live)
	}
	c.mustGet("kept", payload(100, 2))
	c.mustGet("over", []byte("plain now"))
	if ups, _ := c.s.ListUploads(ctx, testBucket, UploadListOptions{}); len(ups.Uploads) != 1 || ups.Uploads[0].UploadID != fresh {
		t.Fatalf("uploads after the sweeps: %+v", ups)
	}
}

func TestManifestQuorumAndRollForward(t *testing.T) {
	c, _ := mpCluster(t)
	ctx := context.Background()
	id := c.create("mq")
	p := c.putPart("mq", id, 1, payload(5000, 7))
	nodes := c.s.Map().PlaceKey(testBucket, "mq")

	// Two nodes lose the commit: below the write quorum of 5.
	c.nodes[nodes[0].ID].Edit(func(n *nodetest.State) { n.DropCommit = true })
	c.nodes[nodes[1].ID].Edit(func(n *nodetest.State) { n.DropCommit = true })
	_, err := c.s.CompleteUpload(ctx, CompleteInput{Bucket: testBucket, Key: "mq", UploadID: id, Parts: complete(p)})
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
	// The upload survives a failed completion and can be retried.
	c.nodes[nodes[0].ID].Edit(func(n *nodetest.State) { n.DropCommit = false })
	if _, err := c.s.CompleteUpload(ctx, CompleteInput{Bucket: testBucket, Key: "mq", UploadID: id, Parts: complete(p)}); err != nil {
		t.Fatal(err)
	}
	if rec := c.nodes[nodes[1].ID].Committed(testBucket, "mq"); rec != nil {
		t.Fatalf("node that dropped the commit has %+v", rec)
	}
	// A reader finishes the commit on the node that missed it.
	c.nodes[nodes[1].ID].Edit(func(n *nodetest.State) { n.DropCommit = false })
	c.mustGet("mq", payload(5000, 7))
	if rec := c.nodes[nodes[1].ID].Committed(testBucket, "mq"); rec == nil || len(rec.Parts) != 1 || rec.Shard != -1 {
		t.Fatalf("manifest not rolled forward: %+v", rec)
	}
	// Reads survive p nodes down, for the manifest and for its part.
	c.nodes[nodes[2].ID].SetDown("*", true)
	c.nodes[nodes[3].ID].SetDown("*", true)
	c.mustGet("mq", payload(5000, 7))
}

func TestInternalKeysRefused(t *testing.T) {
	c, _ := mpCluster(t)
	ctx := context.Background()
	_, err := c.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: uploadsPrefix + "x", Body: strings.NewReader("")})
	wantErr(t, err, ErrInvalidArgument, kerr.Invalid)
	wantErr(t, c.s.DeleteObject(ctx, testBucket, "\x00x"), ErrInvalidArgument, kerr.Invalid)
	for _, k := range []string{uploadKey("01ARZ3NDEKTSV4RRFFQ69G5FAV"), partKey("01ARZ3NDEKTSV4RRFFQ69G5FAV", 12, "01ARZ3NDEKTSV4RRFFQ69G5FAW")} {
		id, n, ok := parseUploadKey(k)
		if !ok || id != "01ARZ3NDEKTSV4RRFFQ69G5FAV" || (n != 0 && n != 12) {
			t.Errorf("parseUploadKey(%q) = %q, %d, %v", k, id, n, ok)
		}
	}
	for _, k := range []string{"x", uploadsPrefix, uploadsPrefix + "short", uploadKey("01ARZ3NDEKTSV4RRFFQ69G5FAV") + "/1.x", uploadKey("01ARZ3NDEKTSV4RRFFQ69G5FAV") + "/00000.01ARZ3NDEKTSV4RRFFQ69G5FAW"} {
		if _, _, ok := parseUploadKey(k); ok {
			t.Errorf("parseUploadKey(%q) accepted", k)
		}
	}
}

// A completion that committed its manifest on one node only (below the
// write quorum, so it failed), then an abort while that node is down: when
// the node is back, a read must serve the previous acknowledged version or
// the completed object, exactly, never a manifest whose parts are gone.
func TestAbortAfterFailedCompletionNeverBreaksObject(t *testing.T) {
	c, _ := mpCluster(t)
	ctx := context.Background()
	prev := payload(3000, 5)
	c.put("mp", prev)
	id := c.create("mp")
	p1, p2 := payload(MinPartSize, 1), payload(1000, 2)
	parts := complete(c.putPart("mp", id, 1, p1), c.putPart("mp", id, 2, p2))
	nodes := c.s.Map().PlaceKey(testBucket, "mp")
	holder := c.nodes[nodes[0].ID]
	for _, n := range nodes[1:] {
		c.nodes[n.ID].Edit(func(n *nodetest.State) { n.DropCommit = true })
	}
	_, err := c.s.CompleteUpload(ctx, CompleteInput{Bucket: testBucket, Key: "mp", UploadID: id, Parts: parts})
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
	if rec := holder.Committed(testBucket, "mp"); rec == nil || len(rec.Parts) != 2 {
		t.Fatalf("the manifest is not on %s: %+v", holder.ID(), rec)
	}
	for _, n := range nodes[1:] {
		c.nodes[n.ID].Edit(func(n *nodetest.State) { n.DropCommit = false })
	}

	holder.SetDown("*", true)
	err = c.s.AbortUpload(ctx, testBucket, "mp", id)
	c.flush()
	holder.SetDown("*", false)
	if err != nil && !errors.Is(err, ErrQuorum) {
		t.Fatalf("abort while a node that may hold a manifest is down: %v", err)
	}
	got, err := c.get("mp")
	switch {
	case err != nil:
		t.Fatalf("read after the abort: %v", err)
	case !bytes.Equal(got, prev) && !bytes.Equal(got, append(slices.Clone(p1), p2...)):
		t.Fatalf("read after the abort: %d bytes, neither the previous version nor the completed object", len(got))
	}
	// The sweep does not free what a served manifest still names either.
	if _, err := c.s.SweepUploads(ctx, &SweepOptions{Expiry: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	c.flush()
	if again, err := c.get("mp"); err != nil || !bytes.Equal(again, got) {
		t.Fatalf("read after the sweep: %d bytes, %v; want the %d bytes read before", len(again), err, len(got))
	}
}
