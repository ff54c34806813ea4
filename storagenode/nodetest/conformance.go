package nodetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Client is a storage node as its callers see it: the method set of
// *client.Client that the gateway, the scrubber and the tools use. Both
// *client.Client and *Node implement it, and RunConformance checks they
// do so alike.
type Client interface {
	client.Node
	GetMap(ctx context.Context) (*placement.Map, error)
}

var (
	_ Client = (*client.Client)(nil)
	_ Client = (*Node)(nil)
)

// ShardCorrupter is implemented by nodes under test that can damage a
// committed shard where it lies (one byte of its stream at off), as a
// failing disk would. Cases that need it are skipped for nodes without.
type ShardCorrupter interface {
	CorruptShard(bucket, key, version string, shard int, off int64) error
}

// CorruptShard is ShardCorrupter for the fake: version and shard must be
// the committed ones.
func (n *Node) CorruptShard(bucket, key, version string, shard int, off int64) error {
	if c := n.Committed(bucket, key); c == nil || c.Version != version || c.Shard != shard {
		return errors.New("nodetest: no such committed shard")
	}
	return n.Corrupt(bucket, key, off)
}

// RunConformance runs the node contract's cases in parallel, each against
// a fresh empty node from newNode.
func RunConformance(t *testing.T, newNode func(t *testing.T) Client) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newNode(t))
		})
	}
}

// RunGraceConformance runs the cases of a node that keeps superseded
// shards for a grace (storagenode.Config.SupersededGrace, Faults.KeepSuperseded),
// in parallel, each against a fresh empty node from newNode.
func RunGraceConformance(t *testing.T, newNode func(t *testing.T) Client) {
	for _, tc := range graceCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newNode(t))
		})
	}
}

// Test objects are 2+1 with small blocks, so that every shard has several
// frames and a range can cross one.
const (
	confData, confParity = 2, 1
	confBlock            = 4096
	confBucket           = "conf"
)

// obj is an encoded test object.
type obj struct {
	data   []byte
	shards [][]byte
	roots  []string
}

func encodeObj(t *testing.T, size int, seed byte) obj {
	t.Helper()
	cd, err := codec.New(confData, confParity, codec.WithBlockSize(confBlock))
	if err != nil {
		t.Fatal(err)
	}
	o := obj{data: make([]byte, size)}
	x := uint32(seed)*2654435761 + 1
	for i := range o.data {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		o.data[i] = byte(x)
	}
	bufs := make([]*bytes.Buffer, confData+confParity)
	ws := make([]io.Writer, len(bufs))
	for i := range bufs {
		bufs[i] = new(bytes.Buffer)
		ws[i] = bufs[i]
	}
	enc, err := cd.Encode(bytes.NewReader(o.data), ws)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range bufs {
		o.shards = append(o.shards, b.Bytes())
		o.roots = append(o.roots, enc.Roots[i].String())
	}
	return o
}

// ver returns a version that sorts by i.
func ver(i int) string {
	return ulid.MustNew(uint64(1_700_000_000_000+i), bytes.NewReader(make([]byte, 16))).String()
}

var modified = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func (o obj) meta(key, version string) client.ObjectMeta {
	return client.ObjectMeta{
		Bucket: confBucket, Key: key, Version: version, Size: int64(len(o.data)),
		ETag: "0123456789abcdef0123456789abcdef", Modified: modified,
		Data: confData, Parity: confParity, BlockSize: confBlock, Format: codec.FormatVersion,
		Roots: slices.Clone(o.roots), Nodes: []string{"a", "b", "c"},
	}
}

func marker(key, version string) client.ObjectMeta {
	return client.ObjectMeta{Bucket: confBucket, Key: key, Version: version, Deleted: true, Modified: modified}
}

func stage(t *testing.T, c Client, key, version string, o obj, shard int) client.StagedRef {
	t.Helper()
	ref, err := c.Stage(context.Background(), confBucket, key, version, shard, confBlock, bytes.NewReader(o.shards[shard]))
	if err != nil {
		t.Fatalf("Stage %s %s shard %d: %v", key, version, shard, err)
	}
	return ref
}

func commit(t *testing.T, c Client, m client.ObjectMeta) client.Record {
	t.Helper()
	rec, err := c.Commit(context.Background(), m)
	if err != nil {
		t.Fatalf("Commit %s %s: %v", m.Key, m.Version, err)
	}
	return rec
}

// put stages shard of o under version and commits it.
func put(t *testing.T, c Client, key, version string, o obj, shard int) client.Record {
	t.Helper()
	stage(t, c, key, version, o, shard)
	return commit(t, c, o.meta(key, version))
}

func read(c Client, key, version string, shard int, off, length int64) ([]byte, error) {
	rc, err := c.ReadShard(context.Background(), confBucket, key, version, shard, off, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func stat(t *testing.T, c Client, key string) client.KeyState {
	t.Helper()
	ks, err := c.Stat(context.Background(), confBucket, key)
	if err != nil {
		t.Fatalf("Stat %s: %v", key, err)
	}
	return ks
}

// wantKind fails unless err is of kind k.
func wantKind(t *testing.T, what string, err error, k kerr.Kind) {
	t.Helper()
	if err == nil || kerr.KindOf(err) != k {
		t.Fatalf("%s: error %v (kind %v), want kind %v", what, err, kerr.KindOf(err), k)
	}
}

func wantCommitted(t *testing.T, ks client.KeyState, version string, shard int) {
	t.Helper()
	if ks.Committed == nil || ks.Committed.Version != version || ks.Committed.Shard != shard {
		t.Fatalf("committed %+v, want version %s shard %d", ks.Committed, version, shard)
	}
}

type confCase struct {
	name string
	run  func(t *testing.T, c Client)
}

var cases = []confCase{
	{"StageCommitReadExactBytes", testStageCommitRead},
	{"StatAfterStageAndCommit", testStat},
	{"StatUnknownKey", testStatUnknown},
	{"NewerVersionSupersedes", testSupersede},
	{"OlderCommitRefusedWithConflict", testOlderRefused},
	{"CommitIsIdempotent", testCommitAgain},
	{"CommitUnderNewerVersion", testCommitStagedAlias},
	{"CommitRootMismatchIsCorrupt", testRootMismatch},
	{"StageCorruptFramesRefused", testStageCorrupt},
	{"StageAnswersNewest", testStageNewest},
	{"WrongShardRefused", testWrongShard},
	{"RangedShardReads", testRanged},
	{"StatDataPreloadsDataShards", testStatData},
	{"AbortDropsStaged", testAbort},
	{"DeleteMarker", testDeleteMarker},
	{"ListPaginationAndPrefix", testList},
	{"BucketRecords", testBuckets},
	{"Hints", testHints},
	{"Verify", testVerify},
	{"VerifyCorruptQuarantines", testVerifyCorrupt},
	{"DropMarker", testDropMarker},
	{"DropShard", testDropShard},
	{"DropShardThenCommitInstallsStaged", testSwap},
	{"ListStaged", testListStaged},
	{"MapEpochFencing", testFencing},
	{"NotFoundKinds", testNotFound},
	{"RecodeVersionReplacesOnlyItsBase", testRecodeVersion},
}

var graceCases = []confCase{
	{"SupersededReadableByVersion", testGraceRead},
	{"StatReportsPrevious", testGracePrevious},
}

func testGraceRead(t *testing.T, c Client) {
	a, b := encodeObj(t, 3*confBlock+1, 26), encodeObj(t, 2*confBlock, 27)
	put(t, c, "k", ver(1), a, 0)
	put(t, c, "k", ver(2), b, 0)
	commit(t, c, marker("k", ver(3)))
	for _, r := range []struct {
		version string
		want    []byte
	}{{ver(1), a.shards[0]}, {ver(2), b.shards[0]}} {
		got, err := read(c, "k", r.version, 0, 0, -1)
		if err != nil || !bytes.Equal(got, r.want) {
			t.Fatalf("read of superseded %s: %d bytes, %v; want %d", r.version, len(got), err, len(r.want))
		}
	}
	if got, err := read(c, "k", ver(2), 0, 5, 10); err != nil || !bytes.Equal(got, b.shards[0][5:15]) {
		t.Fatalf("ranged read of a superseded version: %d bytes, %v", len(got), err)
	}
}

func testGracePrevious(t *testing.T, c Client) {
	a, b := encodeObj(t, 2*confBlock, 28), encodeObj(t, confBlock, 29)
	put(t, c, "k", ver(1), a, 1)
	if ks := stat(t, c, "k"); ks.Previous != nil {
		t.Fatalf("previous %+v with nothing superseded", ks.Previous)
	}
	put(t, c, "k", ver(2), b, 1)
	ks := stat(t, c, "k")
	wantCommitted(t, ks, ver(2), 1)
	if p := ks.Previous; p == nil || p.Version != ver(1) || p.Shard != 1 || !slices.Equal(p.Roots, a.roots) {
		t.Fatalf("previous %+v, want version %s shard 1", p, ver(1))
	}
	commit(t, c, marker("k", ver(3)))
	ks = stat(t, c, "k")
	if p := ks.Previous; p == nil || p.Version != ver(2) {
		t.Fatalf("after a delete: previous %+v, want version %s", p, ver(2))
	}
}

func testStageCommitRead(t *testing.T, c Client) {
	o := encodeObj(t, 5*confBlock+17, 1)
	v := ver(1)
	ref := stage(t, c, "k", v, o, 1)
	if ref.Version != v || ref.Shard != 1 || ref.Root != o.roots[1] || ref.Size != int64(len(o.shards[1])) {
		t.Errorf("staged %+v, want version %s shard 1 root %s size %d", ref, v, o.roots[1], len(o.shards[1]))
	}
	rec := commit(t, c, o.meta("k", v))
	if rec.Version != v || rec.Shard != 1 || !slices.Equal(rec.Roots, o.roots) || rec.Size != int64(len(o.data)) {
		t.Errorf("commit answered %+v", rec)
	}
	got, err := read(c, "k", v, 1, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, o.shards[1]) {
		t.Fatalf("read %d bytes, not the %d staged", len(got), len(o.shards[1]))
	}
}

func testStat(t *testing.T, c Client) {
	o := encodeObj(t, 3*confBlock, 2)
	v := ver(1)
	ref := stage(t, c, "k", v, o, 0)
	ks := stat(t, c, "k")
	if ks.Committed != nil || len(ks.Staged) != 1 || ks.Staged[0].Version != v || ks.Staged[0].Shard != 0 || ks.Staged[0].Root != ref.Root {
		t.Fatalf("after stage: %+v", ks)
	}
	m := o.meta("k", v)
	m.ContentType, m.UserMeta = "text/plain", map[string]string{"color": "blue"}
	commit(t, c, m)
	ks = stat(t, c, "k")
	wantCommitted(t, ks, v, 0)
	if len(ks.Staged) != 0 {
		t.Errorf("staged after commit: %+v", ks.Staged)
	}
	got := ks.Committed.ObjectMeta
	if got.Size != m.Size || got.ETag != m.ETag || got.ContentType != m.ContentType || got.UserMeta["color"] != "blue" ||
		!got.Modified.Equal(m.Modified) || !slices.Equal(got.Roots, m.Roots) || !slices.Equal(got.Nodes, m.Nodes) ||
		got.Data != m.Data || got.Parity != m.Parity || got.BlockSize != m.BlockSize || got.Format != m.Format {
		t.Errorf("stat record %+v, want %+v", got, m)
	}
}

func testStatUnknown(t *testing.T, c Client) {
	ks := stat(t, c, "nothing")
	if ks.Committed != nil || len(ks.Staged) != 0 || ks.Previous != nil || ks.Data != nil {
		t.Fatalf("unknown key: %+v", ks)
	}
}

func testSupersede(t *testing.T, c Client) {
	a, b := encodeObj(t, 2*confBlock, 3), encodeObj(t, 4*confBlock+1, 4)
	put(t, c, "k", ver(1), a, 0)
	put(t, c, "k", ver(2), b, 0)
	wantCommitted(t, stat(t, c, "k"), ver(2), 0)
	got, err := read(c, "k", ver(2), 0, 0, -1)
	if err != nil || !bytes.Equal(got, b.shards[0]) {
		t.Fatalf("read of the newer version: %d bytes, %v", len(got), err)
	}
	_, err = read(c, "k", ver(1), 0, 0, -1)
	wantKind(t, "read of the superseded version", err, kerr.NotExist)
}

func testOlderRefused(t *testing.T, c Client) {
	a, b := encodeObj(t, 2*confBlock, 5), encodeObj(t, 2*confBlock, 6)
	put(t, c, "k", ver(5), a, 0)
	stage(t, c, "k", ver(3), b, 0)
	_, err := c.Commit(context.Background(), b.meta("k", ver(3)))
	wantKind(t, "commit of an older version", err, kerr.Conflict)
	if got := client.Newer(err); got != ver(5) {
		t.Errorf("conflict names %q, want %s", got, ver(5))
	}
	wantCommitted(t, stat(t, c, "k"), ver(5), 0)
	// A marker older than the committed version is refused alike.
	_, err = c.Commit(context.Background(), marker("k", ver(4)))
	wantKind(t, "older delete marker", err, kerr.Conflict)
	wantCommitted(t, stat(t, c, "k"), ver(5), 0)
}

func testCommitAgain(t *testing.T, c Client) {
	o := encodeObj(t, 2*confBlock, 7)
	first := put(t, c, "k", ver(1), o, 1)
	again := commit(t, c, o.meta("k", ver(1)))
	if again.Version != first.Version || again.Shard != first.Shard {
		t.Errorf("second commit answered %+v, first %+v", again, first)
	}
	// The same version with other content is a conflict.
	m := o.meta("k", ver(1))
	m.ETag = "ffffffffffffffffffffffffffffffff"
	_, err := c.Commit(context.Background(), m)
	wantKind(t, "same version, other content", err, kerr.Conflict)
}

func testCommitStagedAlias(t *testing.T, c Client) {
	o := encodeObj(t, 3*confBlock+5, 8)
	stage(t, c, "k", ver(1), o, 2)
	m := o.meta("k", ver(2))
	m.Staged = ver(1)
	rec := commit(t, c, m)
	if rec.Version != ver(2) || rec.Staged != ver(1) || rec.Shard != 2 {
		t.Fatalf("commit answered version %s staged %s shard %d", rec.Version, rec.Staged, rec.Shard)
	}
	got, err := read(c, "k", ver(2), 2, 0, -1)
	if err != nil || !bytes.Equal(got, o.shards[2]) {
		t.Fatalf("read under the commit's version: %d bytes, %v", len(got), err)
	}
	if ks := stat(t, c, "k"); len(ks.Staged) != 0 {
		t.Errorf("stage left after commit: %+v", ks.Staged)
	}
}

func testRootMismatch(t *testing.T, c Client) {
	o := encodeObj(t, 2*confBlock, 9)
	stage(t, c, "k", ver(1), o, 0)
	m := o.meta("k", ver(1))
	m.Roots[0] = o.roots[1]
	_, err := c.Commit(context.Background(), m)
	wantKind(t, "commit naming another root", err, kerr.Corrupt)
	if ks := stat(t, c, "k"); ks.Committed != nil {
		t.Fatalf("committed %+v after a refused commit", ks.Committed)
	}
}

func testStageCorrupt(t *testing.T, c Client) {
	o := encodeObj(t, 2*confBlock, 10)
	bad := slices.Clone(o.shards[0])
	bad[codec.DigestSize+3] ^= 0x5a
	_, err := c.Stage(context.Background(), confBucket, "k", ver(1), 0, confBlock, bytes.NewReader(bad))
	wantKind(t, "stage of a corrupt frame", err, kerr.Corrupt)
	if ks := stat(t, c, "k"); len(ks.Staged) != 0 {
		t.Fatalf("corrupt stage kept: %+v", ks.Staged)
	}
}

func testStageNewest(t *testing.T, c Client) {
	o := encodeObj(t, confBlock, 11)
	if ref := stage(t, c, "k", ver(2), o, 0); ref.Newest != ver(2) {
		t.Errorf("first stage: newest %q, want %s", ref.Newest, ver(2))
	}
	if ref := stage(t, c, "k", ver(1), o, 0); ref.Newest != ver(2) {
		t.Errorf("older stage: newest %q, want %s", ref.Newest, ver(2))
	}
	commit(t, c, o.meta("k", ver(2)))
	put(t, c, "k", ver(3), o, 0)
	if ref := stage(t, c, "k", ver(1), o, 1); ref.Newest != ver(3) {
		t.Errorf("stage below the committed version: newest %q, want %s", ref.Newest, ver(3))
	}
}

func testWrongShard(t *testing.T, c Client) {
	o := encodeObj(t, 2*confBlock, 12)
	put(t, c, "k", ver(1), o, 1)
	_, err := read(c, "k", ver(1), 0, 0, -1)
	if !errors.Is(err, client.ErrWrongShard) {
		t.Fatalf("read of another index: %v, want ErrWrongShard", err)
	}
	wantKind(t, "read of another index", err, kerr.NotExist)
	// A version the node does not hold is missing, not another index.
	_, err = read(c, "k", ver(2), 1, 0, -1)
	wantKind(t, "read of another version", err, kerr.NotExist)
	if errors.Is(err, client.ErrWrongShard) {
		t.Errorf("read of another version: %v is ErrWrongShard", err)
	}
}

func testRanged(t *testing.T, c Client) {
	o := encodeObj(t, 6*confBlock+100, 13)
	put(t, c, "k", ver(1), o, 0)
	shard := o.shards[0]
	n := int64(len(shard))
	for _, r := range []struct{ off, length int64 }{
		{0, 1}, {0, n}, {5, 100}, {int64(codec.DigestSize + confBlock - 3), 10}, // across a frame
		{n - 7, 7}, {n - 7, 100}, {10, -1}, {n, -1}, {n, 5},
	} {
		got, err := read(c, "k", ver(1), 0, r.off, r.length)
		if err != nil {
			t.Fatalf("range %d+%d: %v", r.off, r.length, err)
		}
		end := n
		if r.length >= 0 {
			end = min(n, r.off+r.length)
		}
		if want := shard[min(r.off, end):end]; !bytes.Equal(got, want) {
			t.Errorf("range %d+%d: %d bytes, want %d", r.off, r.length, len(got), len(want))
		}
	}
	_, err := read(c, "k", ver(1), 0, -1, 10)
	wantKind(t, "negative offset", err, kerr.Invalid)
}

func testStatData(t *testing.T, c Client) {
	o := encodeObj(t, 2*confBlock, 14)
	put(t, c, "d", ver(1), o, 0)
	put(t, c, "p", ver(1), o, confData) // a parity shard
	ctx := context.Background()
	n := int64(len(o.shards[0]))
	for _, tc := range []struct {
		key    string
		limit  int64
		parity bool
		want   []byte
	}{
		{"d", n, false, o.shards[0]},
		{"d", n - 1, false, nil},
		{"p", n, false, nil},
		{"p", n, true, o.shards[confData]},
	} {
		ks, err := c.StatData(ctx, confBucket, tc.key, tc.limit, tc.parity)
		if err != nil {
			t.Fatal(err)
		}
		wantCommitted(t, ks, ver(1), ks.Committed.Shard)
		if !bytes.Equal(ks.Data, tc.want) {
			t.Errorf("StatData %s limit %d parity %v: %d bytes, want %d", tc.key, tc.limit, tc.parity, len(ks.Data), len(tc.want))
		}
	}
}

func testAbort(t *testing.T, c Client) {
	o := encodeObj(t, 2*confBlock, 15)
	stage(t, c, "k", ver(1), o, 0)
	if err := c.Abort(context.Background(), confBucket, "k", ver(1)); err != nil {
		t.Fatal(err)
	}
	if ks := stat(t, c, "k"); len(ks.Staged) != 0 {
		t.Fatalf("staged after abort: %+v", ks.Staged)
	}
	_, err := c.Commit(context.Background(), o.meta("k", ver(1)))
	wantKind(t, "commit after abort", err, kerr.NotExist)
	// Aborting what is not staged is not an error.
	if err := c.Abort(context.Background(), confBucket, "k", ver(2)); err != nil {
		t.Fatalf("abort of nothing: %v", err)
	}
}

func testDeleteMarker(t *testing.T, c Client) {
	o := encodeObj(t, 2*confBlock, 16)
	put(t, c, "k", ver(1), o, 0)
	rec := commit(t, c, marker("k", ver(2)))
	if !rec.Deleted || rec.Shard != -1 {
		t.Errorf("marker commit answered %+v", rec)
	}
	ks := stat(t, c, "k")
	wantCommitted(t, ks, ver(2), -1)
	if !ks.Committed.Deleted {
		t.Fatalf("stat after delete: %+v", ks.Committed)
	}
	_, err := read(c, "k", ver(2), 0, 0, -1)
	wantKind(t, "read of a marker", err, kerr.NotExist)
}

func testList(t *testing.T, c Client) {
	o := encodeObj(t, confBlock, 17)
	for i, k := range []string{"a/3", "a/1", "b/1", "a/2", "a/4"} {
		put(t, c, k, ver(i+1), o, 0)
	}
	commit(t, c, marker("a/4", ver(10)))
	stage(t, c, "a/5", ver(11), o, 0) // staged only: never listed
	keys := func(p client.ListPage) []string {
		var out []string
		for _, r := range p.Records {
			out = append(out, r.Key)
		}
		return out
	}
	ctx := context.Background()
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		p, err := c.List(ctx, confBucket, "a/", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Records) > 2 || pages > 3 {
			t.Fatalf("page of %d records, page %d", len(p.Records), pages)
		}
		got = append(got, keys(p)...)
		if !p.Truncated {
			break
		}
		after = got[len(got)-1]
	}
	if want := []string{"a/1", "a/2", "a/3", "a/4"}; !slices.Equal(got, want) {
		t.Fatalf("paged listing %v, want %v", got, want)
	}
	p, err := c.List(ctx, confBucket, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a/1", "a/2", "a/3", "a/4", "b/1"}; !slices.Equal(keys(p), want) || p.Truncated {
		t.Fatalf("whole listing %v (truncated %v), want %v", keys(p), p.Truncated, want)
	}
	if r := p.Records[3]; !r.Deleted || r.Version != ver(10) {
		t.Errorf("listed a/4 as %+v, want its marker", r)
	}
	p, err = c.List(ctx, confBucket, "a/", "a/4", 10)
	if err != nil || len(p.Records) != 0 || p.Truncated {
		t.Fatalf("listing after the last key: %+v, %v", p, err)
	}
	p, err = c.List(ctx, "other", "", "", 10)
	if err != nil || len(p.Records) != 0 {
		t.Fatalf("listing another bucket: %+v, %v", p, err)
	}
}

func testBuckets(t *testing.T, c Client) {
	ctx := context.Background()
	b := client.BucketRecord{Name: "b1", Version: ver(2), Created: modified}
	if err := c.PutBucket(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := c.PutBucket(ctx, b); err != nil {
		t.Fatalf("the same record again: %v", err)
	}
	got, err := c.GetBucket(ctx, "b1")
	if err != nil || got.Version != b.Version || !got.Created.Equal(b.Created) || got.Deleted {
		t.Fatalf("GetBucket: %+v, %v", got, err)
	}
	err = c.PutBucket(ctx, client.BucketRecord{Name: "b1", Version: ver(1), Created: modified})
	wantKind(t, "older bucket record", err, kerr.Conflict)
	if client.Newer(err) != ver(2) {
		t.Errorf("conflict names %q, want %s", client.Newer(err), ver(2))
	}
	if err := c.PutBucket(ctx, client.BucketRecord{Name: "b1", Version: ver(3), Created: modified, Deleted: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutBucket(ctx, client.BucketRecord{Name: "b0", Version: ver(1), Created: modified}); err != nil {
		t.Fatal(err)
	}
	got, err = c.GetBucket(ctx, "b1")
	if err != nil || !got.Deleted || got.Version != ver(3) {
		t.Fatalf("after the tombstone: %+v, %v", got, err)
	}
	all, err := c.ListBuckets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range all {
		names = append(names, r.Name+"@"+r.Version)
	}
	slices.Sort(names)
	if want := []string{"b0@" + ver(1), "b1@" + ver(3)}; !slices.Equal(names, want) {
		t.Fatalf("ListBuckets %v, want %v", names, want)
	}
}

func testHints(t *testing.T, c Client) {
	ctx := context.Background()
	at := modified
	h1 := client.Hint{Bucket: confBucket, Key: "k1", Version: ver(1), Shard: 2, NodeID: "n1", Reason: "missing", Time: at}
	h2 := client.Hint{Bucket: confBucket, Key: "k2", Version: ver(2), Shard: -1, Reason: "stale", Time: at}
	if err := c.AddHints(ctx, []client.Hint{h1, h2}); err != nil {
		t.Fatal(err)
	}
	h1b := h1
	h1b.Reason = "corrupt"
	if err := c.AddHints(ctx, []client.Hint{h1b}); err != nil {
		t.Fatal(err)
	}
	list := func() []string {
		t.Helper()
		hs, err := c.ListHints(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, h := range hs {
			out = append(out, h.Key+"/"+h.Reason+"/"+h.NodeID)
		}
		slices.Sort(out)
		return out
	}
	if got, want := list(), []string{"k1/corrupt/n1", "k2/stale/"}; !slices.Equal(got, want) {
		t.Fatalf("hints %v, want %v (a hint added again replaces the stored one)", got, want)
	}
	if hs, err := c.ListHints(ctx, 1); err != nil || len(hs) != 1 {
		t.Fatalf("ListHints limit 1: %d hints, %v", len(hs), err)
	}
	del := h1
	del.Reason, del.Time = "", time.Time{} // identity only
	if err := c.DeleteHints(ctx, []client.Hint{del}); err != nil {
		t.Fatal(err)
	}
	if got, want := list(), []string{"k2/stale/"}; !slices.Equal(got, want) {
		t.Fatalf("after delete: hints %v, want %v", got, want)
	}
}

func testVerify(t *testing.T, c Client) {
	o := encodeObj(t, 3*confBlock+9, 18)
	put(t, c, "k", ver(2), o, 1)
	commit(t, c, marker("m", ver(1)))
	refs := []client.ShardRef{
		{Bucket: confBucket, Key: "k", Version: ver(2), Shard: 1},
		{Bucket: confBucket, Key: "k", Version: ver(2), Shard: 0},
		{Bucket: confBucket, Key: "k", Version: ver(1), Shard: 1},
		{Bucket: confBucket, Key: "none", Version: ver(1), Shard: 0},
		{Bucket: confBucket, Key: "m", Version: ver(1), Shard: 0},
	}
	res, err := c.Verify(context.Background(), refs)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		status, current string
		shard           int
	}{
		{client.VerifyOK, "", 1},
		{client.VerifyAbsent, "", 1},
		{client.VerifyAbsent, ver(2), -1},
		{client.VerifyAbsent, "", -1},
		{client.VerifyAbsent, ver(1), -1},
	}
	if len(res) != len(refs) {
		t.Fatalf("%d results for %d refs", len(res), len(refs))
	}
	for i, r := range res {
		w := want[i]
		if r.ShardRef != refs[i] || r.Status != w.status || r.Current != w.current || r.Shard != w.shard {
			t.Errorf("ref %d: %+v, want status %s current %q shard %d", i, r, w.status, w.current, w.shard)
		}
	}
	if res[0].Bytes != int64(len(o.shards[1])) {
		t.Errorf("verified %d bytes, shard has %d", res[0].Bytes, len(o.shards[1]))
	}
	if res, err := c.Verify(context.Background(), nil); err != nil || len(res) != 0 {
		t.Errorf("Verify of nothing: %v, %v", res, err)
	}
}

func testVerifyCorrupt(t *testing.T, c Client) {
	dmg, ok := c.(ShardCorrupter)
	if !ok {
		t.Skip("node cannot corrupt a shard in place")
	}
	o := encodeObj(t, 3*confBlock, 19)
	put(t, c, "k", ver(1), o, 0)
	if err := dmg.CorruptShard(confBucket, "k", ver(1), 0, codec.DigestSize+confBlock/2); err != nil {
		t.Fatal(err)
	}
	ref := client.ShardRef{Bucket: confBucket, Key: "k", Version: ver(1), Shard: 0}
	for i := range 2 { // the second verdict is on the quarantine
		res, err := c.Verify(context.Background(), []client.ShardRef{ref})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Status != client.VerifyCorrupt || res[0].Shard != 0 {
			t.Fatalf("verify %d of a corrupt shard: %+v", i, res[0])
		}
	}
	_, err := read(c, "k", ver(1), 0, 0, -1)
	if err == nil {
		t.Fatal("a quarantined shard was served")
	}
	// A new version replaces the quarantined shard.
	put(t, c, "k", ver(2), o, 0)
	if got, err := read(c, "k", ver(2), 0, 0, -1); err != nil || !bytes.Equal(got, o.shards[0]) {
		t.Fatalf("read of the repaired shard: %d bytes, %v", len(got), err)
	}
}

func testDropMarker(t *testing.T, c Client) {
	ctx := context.Background()
	o := encodeObj(t, confBlock, 20)
	commit(t, c, marker("m", ver(2)))
	put(t, c, "k", ver(1), o, 0)
	for _, tc := range []struct {
		key, version string
		want         bool
	}{
		{"m", ver(1), false}, // another version
		{"k", ver(1), false}, // not a marker
		{"none", ver(1), false},
		{"m", ver(2), true},
		{"m", ver(2), false}, // gone already
	} {
		got, err := c.DropMarker(ctx, confBucket, tc.key, tc.version)
		if err != nil || got != tc.want {
			t.Fatalf("DropMarker %s %s: %v, %v; want %v", tc.key, tc.version, got, err, tc.want)
		}
	}
	if ks := stat(t, c, "m"); ks.Committed != nil {
		t.Errorf("marker left: %+v", ks.Committed)
	}
	wantCommitted(t, stat(t, c, "k"), ver(1), 0)
}

func testDropShard(t *testing.T, c Client) {
	ctx := context.Background()
	o := encodeObj(t, 2*confBlock, 21)
	put(t, c, "k", ver(2), o, 1)
	commit(t, c, marker("m", ver(1)))
	for _, tc := range []struct {
		key, version string
		shard        int
		want         bool
	}{
		{"k", ver(2), 0, false}, // another index
		{"k", ver(1), 1, false}, // another version
		{"k", ver(2), 1, true},
		{"k", ver(2), 1, false},
		{"m", ver(1), -1, true}, // a marker has no shard
	} {
		got, err := c.DropShard(ctx, confBucket, tc.key, tc.version, tc.shard)
		if err != nil || got != tc.want {
			t.Fatalf("DropShard %s %s %d: %v, %v; want %v", tc.key, tc.version, tc.shard, got, err, tc.want)
		}
	}
	if ks := stat(t, c, "k"); ks.Committed != nil {
		t.Errorf("dropped record left: %+v", ks.Committed)
	}
	_, err := read(c, "k", ver(2), 1, 0, -1)
	wantKind(t, "read of a dropped shard", err, kerr.NotExist)
}

// testSwap is the rebalancer's swap on one node: the node holds shard 1,
// is given shard 0 of the same version, drops shard 1 and commits.
func testSwap(t *testing.T, c Client) {
	ctx := context.Background()
	o := encodeObj(t, 2*confBlock, 22)
	put(t, c, "k", ver(1), o, 1)
	stage(t, c, "k", ver(1), o, 0)
	if ok, err := c.DropShard(ctx, confBucket, "k", ver(1), 1); err != nil || !ok {
		t.Fatalf("DropShard: %v, %v", ok, err)
	}
	if rec := commit(t, c, o.meta("k", ver(1))); rec.Shard != 0 {
		t.Fatalf("commit installed shard %d, want the staged 0", rec.Shard)
	}
	got, err := read(c, "k", ver(1), 0, 0, -1)
	if err != nil || !bytes.Equal(got, o.shards[0]) {
		t.Fatalf("read of the installed shard: %d bytes, %v", len(got), err)
	}
	_, err = read(c, "k", ver(1), 1, 0, -1)
	if !errors.Is(err, client.ErrWrongShard) {
		t.Fatalf("read of the dropped index: %v, want ErrWrongShard", err)
	}
}

func testListStaged(t *testing.T, c Client) {
	o := encodeObj(t, confBlock, 23)
	stage(t, c, "k1", ver(1), o, 0)
	stage(t, c, "k2", ver(2), o, 1)
	put(t, c, "k3", ver(3), o, 0) // committed: not staged
	stage(t, c, "k4", ver(4), o, 0)
	put(t, c, "k4", ver(5), o, 0) // leaves the older stage of k4 to the sweep
	got, err := c.ListStaged(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Bucket+"/"+s.Key+"@"+s.Version)
		if s.Root != o.roots[s.Shard] || s.Size != int64(len(o.shards[s.Shard])) || s.Staged.IsZero() {
			t.Errorf("staged shard %+v: want root %s size %d and a stage time", s, o.roots[s.Shard], len(o.shards[s.Shard]))
		}
	}
	slices.Sort(names)
	if want := []string{"conf/k1@" + ver(1), "conf/k2@" + ver(2), "conf/k4@" + ver(4)}; !slices.Equal(names, want) {
		t.Fatalf("staged %v, want %v", names, want)
	}
	if got, err := c.ListStaged(context.Background(), 1); err != nil || len(got) != 1 {
		t.Fatalf("ListStaged limit 1: %d, %v", len(got), err)
	}
}

func testFencing(t *testing.T, c Client) {
	ctx := context.Background()
	o := encodeObj(t, confBlock, 24)
	put(t, c, "k", ver(1), o, 0)
	m := &placement.Map{Epoch: 2, DataShards: confData, ParityShards: confParity, BlockSize: confBlock}
	for i, id := range []string{"a", "b", "c"} {
		m.Nodes = append(m.Nodes, placement.Node{ID: id, Addr: "127.0.0.1:" + string(rune('1'+i)) + "000", Zone: id})
	}
	if err := c.PutMap(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := c.PutMap(ctx, m); err != nil {
		t.Fatalf("the same map again: %v", err)
	}
	old := *m
	old.Epoch = 1
	wantKind(t, "older map", c.PutMap(ctx, &old), kerr.Conflict)
	if got, err := c.GetMap(ctx); err != nil || got.Epoch != 2 {
		t.Fatalf("GetMap: %v, %v", got, err)
	}
	if h, err := c.Health(ctx); err != nil || h.Epoch != 2 {
		t.Fatalf("Health: %+v, %v", h, err)
	}

	stale := client.NewFence(1, nil)
	_, err := c.Stat(client.WithFence(ctx, stale), confBucket, "k")
	wantKind(t, "stat under an older epoch", err, kerr.Conflict)
	var se *client.StaleMapError
	if !errors.Is(err, client.ErrStaleMap) || !errors.As(err, &se) || se.Map.Epoch != 2 || se.Epoch != 1 {
		t.Fatalf("stat under an older epoch: %v, want a StaleMapError with the node's map", err)
	}
	if nm := stale.Newer(); nm == nil || nm.Epoch != 2 {
		t.Fatalf("the fence was told of map %v, want epoch 2", nm)
	}
	_, err = c.Stage(client.WithFence(ctx, stale), confBucket, "k", ver(2), 0, confBlock, bytes.NewReader(o.shards[0]))
	if !errors.Is(err, client.ErrStaleMap) {
		t.Fatalf("stage under an older epoch: %v", err)
	}
	// Shard reads name an exact version: never fenced.
	if got, err := read(&fenced{c, stale}, "k", ver(1), 0, 0, -1); err != nil || !bytes.Equal(got, o.shards[0]) {
		t.Fatalf("shard read under an older epoch: %d bytes, %v", len(got), err)
	}
	for _, f := range []*client.Fence{client.NewFence(2, nil), client.NewFence(3, nil)} {
		if _, err := c.Stat(client.WithFence(ctx, f), confBucket, "k"); err != nil {
			t.Fatalf("stat under epoch %d: %v", f.Epoch(), err)
		}
	}
	if _, err := c.Stat(ctx, confBucket, "k"); err != nil {
		t.Fatalf("stat without an epoch: %v", err)
	}
}

// fenced makes ReadShard carry a fence.
type fenced struct {
	Client
	f *client.Fence
}

func (f *fenced) ReadShard(ctx context.Context, bucket, key, version string, shard int, off, length int64) (io.ReadCloser, error) {
	return f.Client.ReadShard(client.WithFence(ctx, f.f), bucket, key, version, shard, off, length)
}

func testNotFound(t *testing.T, c Client) {
	ctx := context.Background()
	_, err := c.GetBucket(ctx, "nobucket")
	wantKind(t, "unknown bucket", err, kerr.NotExist)
	_, err = read(c, "nokey", ver(1), 0, 0, -1)
	wantKind(t, "unknown key", err, kerr.NotExist)
	o := encodeObj(t, confBlock, 25)
	_, err = c.Commit(ctx, o.meta("k", ver(1)))
	wantKind(t, "commit of nothing staged", err, kerr.NotExist)
	_, err = c.GetMap(ctx)
	wantKind(t, "map never given", err, kerr.NotExist)
	_, err = c.Stat(ctx, confBucket, "")
	wantKind(t, "empty key", err, kerr.Invalid)
}

// commitRecode stages and commits shard 2 of o as re-code r of key "k",
// whose base took the tag set a=b at ver(10) after the re-code read it,
// and checks that the node keeps those tags and serves the re-code.
func commitRecode(t *testing.T, c Client, r string, o obj) {
	t.Helper()
	stage(t, c, "k", r, o, 2)
	if rec := commit(t, c, o.meta("k", r)); rec.Version != r || rec.Shard != 2 || rec.Tagging != "a=b" || rec.TagsAt != ver(10) {
		t.Fatalf("commit of re-code %s answered %+v, want tags a=b at %s", r, rec, ver(10))
	}
	wantCommitted(t, stat(t, c, "k"), r, 2)
	if got, err := read(c, "k", r, 2, 0, -1); err != nil || !bytes.Equal(got, o.shards[2]) {
		t.Fatalf("read of re-code %s: %d bytes, %v", r, len(got), err)
	}
}

// testRecodeVersion: a re-code's name (its base version plus a
// generation) is staged, committed, read and aborted like any version; it
// supersedes its base and the generations before it, a version above the
// base is above it too, and a deletion of the base by id covers it.
func testRecodeVersion(t *testing.T, c Client) {
	ctx := context.Background()
	a, b, d := encodeObj(t, 2*confBlock+3, 30), encodeObj(t, 3*confBlock, 31), encodeObj(t, confBlock, 32)
	v := ver(10)
	r := client.RecodeVersion(v)
	stage(t, c, "k", v, a, 2)
	base := a.meta("k", v)
	base.Tagging, base.TagsAt = "a=b", ver(10) // as a tag update leaves it
	commit(t, c, base)
	// The re-code copied the record before that tag update: the node
	// keeps the newer tag set.
	commitRecode(t, c, r, b)
	// The base is older than its re-code: refused.
	stage(t, c, "k", v, a, 2)
	_, err := c.Commit(ctx, a.meta("k", v))
	wantKind(t, "commit of the base under its re-code", err, kerr.Conflict)
	if got := client.Newer(err); got != r {
		t.Errorf("conflict names %q, want %s", got, r)
	}
	if err := c.Abort(ctx, confBucket, "k", v); err != nil {
		t.Fatal(err)
	}
	// The next generation replaces the re-code, keeping its newer tag
	// set too, and every generation below it is refused.
	r2 := client.RecodeVersion(r)
	commitRecode(t, c, r2, a)
	for _, below := range []string{r, v} {
		stage(t, c, "k", below, b, 2)
		_, err := c.Commit(ctx, b.meta("k", below))
		wantKind(t, "commit of "+below+" under "+r2, err, kerr.Conflict)
		if got := client.Newer(err); got != r2 {
			t.Errorf("conflict names %q, want %s", got, r2)
		}
		if err := c.Abort(ctx, confBucket, "k", below); err != nil {
			t.Fatal(err)
		}
	}
	// The next version of the key is above the re-code.
	put(t, c, "k", ver(11), d, 2)
	wantCommitted(t, stat(t, c, "k"), ver(11), 2)
	// A re-code staged under a newer version is refused at commit and
	// can be aborted.
	r11 := client.RecodeVersion(ver(11))
	stage(t, c, "k", r11, b, 2)
	put(t, c, "k", ver(12), a, 2)
	_, err = c.Commit(ctx, b.meta("k", r11))
	wantKind(t, "commit of a re-code below a newer version", err, kerr.Conflict)
	if got := client.Newer(err); got != ver(12) {
		t.Errorf("conflict names %q, want %s", got, ver(12))
	}
	if err := c.Abort(ctx, confBucket, "k", r11); err != nil {
		t.Fatal(err)
	}
	ks := stat(t, c, "k")
	wantCommitted(t, ks, ver(12), 2)
	if len(ks.Staged) != 0 {
		t.Fatalf("staged after aborts: %+v", ks.Staged)
	}

	// A version and its re-codes are one object: once V is deleted by
	// id, a late commit of a later generation is refused. Only nodes
	// that serve versions take deletions by id.
	vs, ok := c.(client.Versioner)
	if !ok {
		return
	}
	put(t, c, "d", ver(20), a, 2)
	if _, err := vs.DeleteVersion(ctx, confBucket, "d", ver(20)); err != nil {
		t.Fatal(err)
	}
	late := client.RecodeVersion(client.RecodeVersion(ver(20)))
	stage(t, c, "d", late, b, 2)
	_, err = c.Commit(ctx, b.meta("d", late))
	wantKind(t, "commit of "+late+" after "+ver(20)+" was deleted", err, kerr.NotExist)
	if !errors.Is(err, client.ErrVersionDeleted) {
		t.Errorf("commit of %s after %s was deleted: %v, want ErrVersionDeleted", late, ver(20), err)
	}
	if ks := stat(t, c, "d"); ks.Committed != nil {
		t.Fatalf("after the refused commit: committed %+v, want none", ks.Committed)
	}
}
