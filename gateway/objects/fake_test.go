package objects

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// fakeNode is an in-memory storage node for tests. It keeps the node's
// contract (newest wins, delete markers, staged vs committed, frames
// verified on stage, a commit of an older version is refused with a
// ConflictError, a staged shard may be committed under a newer version
// than it was staged under, a stage answers with the key's newest
// version) and has fault hooks. Test-only.
type fakeNode struct {
	client.Node // nil: the node calls the protocol never makes panic
	id          string

	mu      sync.Mutex
	buckets map[string]client.BucketRecord
	keys    map[string]*fakeKey // bucket + "\x00" + key
	hints   []client.Hint
	calls   map[string]int

	// Fault hooks, keyed by operation ("stage", "commit", "abort", "read",
	// "stat", "list", "bucket", "hints") or "*" for all of them.
	down  map[string]bool          // fail at once with kerr.Unavailable
	stall map[string]bool          // block until the call's ctx is done
	slow  map[string]time.Duration // answer after this long (or when ctx is done)
	// dropCommit makes commits fail without being applied.
	dropCommit bool
	// failAfter > 0 makes stage bodies and shard streams fail after that
	// many bytes; stallAfter > 0 makes them block (until ctx is done)
	// after that many.
	failAfter, stallAfter int64
	// stageErr fails Stage after the whole body was read; badRoot makes
	// Stage keep the shard but answer with a wrong root.
	stageErr error
	badRoot  bool
	// keepSuperseded models a node with a superseded-shard grace: a
	// superseded version's shard stays readable by its exact version.
	// Off, supersession removes it at once (a node with no grace).
	keepSuperseded bool
	// hideStaged > 0 makes that many Stat answers leave out staged
	// versions: answers taken before a writer's stage arrived.
	hideStaged int
	// beforeCommit, if set, runs at the start of every Commit, outside
	// the node's lock: a test may block a writer's commit there.
	beforeCommit func(meta client.ObjectMeta)
}

type fakeKey struct {
	committed *client.Record
	shard     []byte // committed shard bytes (framed)
	staged    map[string]fakeStaged
	old       map[string]fakeOld // superseded shards by version, with keepSuperseded
}

// fakeOld is a superseded version's shard and its index.
type fakeOld struct {
	shard int
	data  []byte
}

type fakeStaged struct {
	ref  client.StagedRef
	data []byte
}

var _ client.Node = (*fakeNode)(nil)

func newFakeNode(id string) *fakeNode {
	return &fakeNode{
		id:      id,
		buckets: make(map[string]client.BucketRecord),
		keys:    make(map[string]*fakeKey),
		calls:   make(map[string]int),
		down:    make(map[string]bool),
		stall:   make(map[string]bool),
		slow:    make(map[string]time.Duration),
	}
}

func (n *fakeNode) setDown(op string, v bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down[op] = v
}

func (n *fakeNode) setStall(op string, v bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stall[op] = v
}

func (n *fakeNode) set(f func(n *fakeNode)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(n)
}

func (n *fakeNode) gate(ctx context.Context, op string) error {
	n.mu.Lock()
	n.calls[op]++
	down := n.down[op] || n.down["*"]
	stall := n.stall[op] || n.stall["*"]
	slow := n.slow[op]
	n.mu.Unlock()
	if slow > 0 {
		select {
		case <-time.After(slow):
		case <-ctx.Done():
			return kerr.E("fake."+op, kerr.Transient, fmt.Errorf("node %s slow: %w", n.id, ctx.Err()))
		}
	}
	if down {
		return kerr.E("fake."+op, kerr.Unavailable, fmt.Errorf("node %s is down", n.id))
	}
	if stall {
		<-ctx.Done()
		return kerr.E("fake."+op, kerr.Transient, fmt.Errorf("node %s stalled: %w", n.id, ctx.Err()))
	}
	return nil
}

func (n *fakeNode) key(bucket, key string) *fakeKey {
	k := bucket + "\x00" + key
	fk := n.keys[k]
	if fk == nil {
		fk = &fakeKey{staged: make(map[string]fakeStaged)}
		n.keys[k] = fk
	}
	return fk
}

// faulty wraps a stream with the node's failAfter/stallAfter faults.
func (n *fakeNode) faulty(ctx context.Context, r io.Reader) io.Reader {
	n.mu.Lock()
	defer n.mu.Unlock()
	return &faultReader{ctx: ctx, r: r, failAfter: n.failAfter, stallAfter: n.stallAfter}
}

type faultReader struct {
	ctx                   context.Context
	r                     io.Reader
	n                     int64
	failAfter, stallAfter int64
}

func (f *faultReader) Read(p []byte) (int, error) {
	limit := int64(-1)
	for _, l := range []int64{f.failAfter, f.stallAfter} {
		if l > 0 && (limit < 0 || l < limit) {
			limit = l
		}
	}
	if limit >= 0 && f.n >= limit {
		if f.stallAfter > 0 && f.n >= f.stallAfter {
			<-f.ctx.Done()
			return 0, kerr.E("fake.stream", kerr.Transient, f.ctx.Err())
		}
		return 0, kerr.E("fake.stream", kerr.Transient, errors.New("injected stream failure"))
	}
	if limit >= 0 && int64(len(p)) > limit-f.n {
		p = p[:limit-f.n]
	}
	k, err := f.r.Read(p)
	f.n += int64(k)
	return k, err
}

func (n *fakeNode) Stage(ctx context.Context, bucket, key, version string, shard, blockSize int, body io.Reader) (client.StagedRef, error) {
	const op = "fake.Stage"
	if err := n.gate(ctx, "stage"); err != nil {
		return client.StagedRef{}, err
	}
	fr := codec.NewFrameReader(n.faulty(ctx, body), blockSize)
	var data []byte
	for {
		block, d, err := fr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			kind := kerr.Invalid
			if errors.Is(err, codec.ErrCorrupt) {
				kind = kerr.Corrupt
			}
			return client.StagedRef{}, kerr.E(op, kind, err)
		}
		data = append(data, d[:]...)
		data = append(data, block...)
	}
	ref := client.StagedRef{Version: version, Shard: shard, Root: fr.Root().String(), Size: int64(len(data)), Staged: time.Now()}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stageErr != nil {
		return client.StagedRef{}, kerr.E(op, n.stageErr)
	}
	if n.badRoot {
		ref.Root = codec.Digest{}.String()
	}
	fk := n.key(bucket, key)
	fk.staged[version] = fakeStaged{ref: ref, data: data}
	ref.Newest = version
	if fk.committed != nil {
		ref.Newest = max(ref.Newest, fk.committed.Version)
	}
	for v := range fk.staged {
		ref.Newest = max(ref.Newest, v)
	}
	return ref, nil
}

func (n *fakeNode) Commit(ctx context.Context, meta client.ObjectMeta) (client.Record, error) {
	const op = "fake.Commit"
	if err := n.gate(ctx, "commit"); err != nil {
		return client.Record{}, err
	}
	n.mu.Lock()
	hook := n.beforeCommit
	n.mu.Unlock()
	if hook != nil {
		hook(meta)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dropCommit {
		return client.Record{}, kerr.E(op, kerr.Unavailable, errors.New("commit dropped"))
	}
	fk := n.key(meta.Bucket, meta.Key)
	if meta.Staged == meta.Version {
		meta.Staged = ""
	}
	if c := fk.committed; c != nil && c.Version > meta.Version {
		return client.Record{}, kerr.E(op, kerr.Conflict, &client.ConflictError{Newer: c.Version})
	}
	if c := fk.committed; c != nil && c.Version == meta.Version {
		if c.Deleted != meta.Deleted || c.ETag != meta.ETag || !slices.Equal(c.Roots, meta.Roots) {
			return client.Record{}, kerr.E(op, kerr.Conflict, &client.ConflictError{Newer: c.Version})
		}
		delete(fk.staged, meta.StageVersion())
		return *c, nil
	}
	rec := client.Record{ObjectMeta: meta, Shard: -1}
	var data []byte
	if !meta.Deleted && len(meta.Parts) == 0 {
		st, ok := fk.staged[meta.StageVersion()]
		if !ok {
			st, ok = fk.staged[meta.Version]
		}
		if c := fk.committed; !ok && c != nil && meta.Staged != "" && c.Shard >= 0 && c.StageVersion() == meta.Staged &&
			c.ETag == meta.ETag && slices.Equal(c.Roots, meta.Roots) {
			// The same write committed under an older version: bind
			// its shard to the new one.
			st, ok = fakeStaged{ref: client.StagedRef{Shard: c.Shard, Root: c.Roots[c.Shard]}, data: fk.shard}, true
		}
		if !ok {
			return client.Record{}, kerr.E(op, kerr.NotExist, fmt.Errorf("version %s not staged", meta.StageVersion()))
		}
		if st.ref.Shard >= len(meta.Roots) || meta.Roots[st.ref.Shard] != st.ref.Root {
			return client.Record{}, kerr.E(op, kerr.Corrupt, errors.New("staged root differs from metadata"))
		}
		rec.Shard, data = st.ref.Shard, st.data
	}
	if c := fk.committed; n.keepSuperseded && c != nil && c.Shard >= 0 {
		if fk.old == nil {
			fk.old = make(map[string]fakeOld)
		}
		fk.old[c.Version] = fakeOld{shard: c.Shard, data: fk.shard}
	}
	fk.committed, fk.shard = &rec, data
	delete(fk.staged, meta.StageVersion())
	delete(fk.staged, meta.Version)
	return rec, nil
}

func (n *fakeNode) Abort(ctx context.Context, bucket, key, version string) error {
	if err := n.gate(ctx, "abort"); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.key(bucket, key).staged, version)
	return nil
}

func (n *fakeNode) ReadShard(ctx context.Context, bucket, key, version string, shard int, off, length int64) (io.ReadCloser, error) {
	const op = "fake.ReadShard"
	if err := n.gate(ctx, "read"); err != nil {
		return nil, err
	}
	n.mu.Lock()
	fk := n.key(bucket, key)
	c := fk.committed
	old, superseded := fk.old[version]
	if !superseded && (c == nil || c.Version != version || c.Deleted) {
		n.mu.Unlock()
		return nil, kerr.E(op, kerr.NotExist, fmt.Errorf("version %s not committed", version))
	}
	held, data := old.shard, old.data
	if !superseded {
		held, data = c.Shard, fk.shard
	}
	n.mu.Unlock()
	if held != shard {
		return nil, kerr.E(op, kerr.NotExist, fmt.Errorf("%w: shard %d of version %s, not %d", client.ErrWrongShard, held, version, shard))
	}
	if off < 0 || length < -1 {
		return nil, kerr.E(op, kerr.Invalid, errors.New("bad range"))
	}
	end := int64(len(data))
	if length >= 0 {
		end = min(end, off+length)
	}
	off = min(off, end)
	return io.NopCloser(n.faulty(ctx, bytes.NewReader(slices.Clone(data[off:end])))), nil
}

func (n *fakeNode) Stat(ctx context.Context, bucket, key string) (client.KeyState, error) {
	if err := n.gate(ctx, "stat"); err != nil {
		return client.KeyState{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var ks client.KeyState
	fk := n.keys[bucket+"\x00"+key]
	if fk == nil {
		return ks, nil
	}
	if fk.committed != nil {
		c := *fk.committed
		ks.Committed = &c
	}
	hide := n.hideStaged > 0
	if hide {
		n.hideStaged--
	}
	for v, st := range fk.staged {
		if !hide && (fk.committed == nil || v > fk.committed.Version) {
			ks.Staged = append(ks.Staged, st.ref)
		}
	}
	sort.Slice(ks.Staged, func(i, j int) bool { return ks.Staged[i].Version < ks.Staged[j].Version })
	return ks, nil
}

// StatData is Stat with the committed data shard when it fits in limit.
// A node set up to fail or stall mid-stream returns none, so that such
// faults still reach the stream path.
func (n *fakeNode) StatData(ctx context.Context, bucket, key string, limit int64, parity bool) (client.KeyState, error) {
	ks, err := n.Stat(ctx, bucket, key)
	if err != nil || ks.Committed == nil {
		return ks, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	c, fk := ks.Committed, n.keys[bucket+"\x00"+key]
	readFaults := n.failAfter > 0 || n.stallAfter > 0 || n.down["read"] || n.stall["read"]
	// The shard sent is the record's, by version and index, as a node's
	// is read by file name: a commit between the two locks sends none.
	moved := fk.committed == nil || fk.committed.Version != c.Version || fk.committed.Shard != c.Shard
	if readFaults || moved || c.Deleted || len(c.Parts) > 0 || c.Shard < 0 || c.Shard >= c.Data && !parity || int64(len(fk.shard)) > limit {
		return ks, nil
	}
	n.calls["preload"]++
	ks.Data = slices.Clone(fk.shard)
	return ks, nil
}

func (n *fakeNode) List(ctx context.Context, bucket, prefix, after string, limit int) (client.ListPage, error) {
	if err := n.gate(ctx, "list"); err != nil {
		return client.ListPage{}, err
	}
	limit = client.ListLimit(limit)
	n.mu.Lock()
	defer n.mu.Unlock()
	var keys []string
	for k, fk := range n.keys {
		b, key, _ := strings.Cut(k, "\x00")
		if b == bucket && fk.committed != nil && strings.HasPrefix(key, prefix) && key > after {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	var page client.ListPage
	for _, k := range keys {
		if len(page.Records) == limit {
			page.Truncated = true
			break
		}
		page.Records = append(page.Records, *n.keys[bucket+"\x00"+k].committed)
	}
	return page, nil
}

func (n *fakeNode) PutBucket(ctx context.Context, rec client.BucketRecord) error {
	if err := n.gate(ctx, "bucket"); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch old, ok := n.buckets[rec.Name]; {
	case !ok || rec.Version > old.Version:
		n.buckets[rec.Name] = rec
	case old.Version > rec.Version:
		return kerr.E("fake.PutBucket", kerr.Conflict, &client.ConflictError{Newer: old.Version})
	}
	return nil
}

func (n *fakeNode) GetBucket(ctx context.Context, name string) (client.BucketRecord, error) {
	if err := n.gate(ctx, "bucket"); err != nil {
		return client.BucketRecord{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	rec, ok := n.buckets[name]
	if !ok {
		return client.BucketRecord{}, kerr.E("fake.GetBucket", kerr.NotExist, fmt.Errorf("bucket %s", name))
	}
	return rec, nil
}

func (n *fakeNode) ListBuckets(ctx context.Context) ([]client.BucketRecord, error) {
	if err := n.gate(ctx, "bucket"); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []client.BucketRecord
	for _, r := range n.buckets {
		out = append(out, r)
	}
	return out, nil
}

func (n *fakeNode) AddHints(ctx context.Context, hints []client.Hint) error {
	if err := n.gate(ctx, "hints"); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hints = append(n.hints, hints...)
	return nil
}

// Inspection helpers.

func (n *fakeNode) committed(bucket, key string) *client.Record {
	n.mu.Lock()
	defer n.mu.Unlock()
	if fk := n.keys[bucket+"\x00"+key]; fk != nil && fk.committed != nil {
		c := *fk.committed
		return &c
	}
	return nil
}

func (n *fakeNode) staged(bucket, key string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	if fk := n.keys[bucket+"\x00"+key]; fk != nil {
		for v := range fk.staged {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

func (n *fakeNode) takeHints() []client.Hint {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.hints
	n.hints = nil
	return h
}

func (n *fakeNode) callCount(op string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls[op]
}

// corrupt flips one byte of the committed shard at off.
func (n *fakeNode) corrupt(t *testing.T, bucket, key string, off int64) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	fk := n.keys[bucket+"\x00"+key]
	if fk == nil || off >= int64(len(fk.shard)) {
		t.Fatalf("node %s: no committed shard byte %d for %s/%s", n.id, off, bucket, key)
	}
	fk.shard = slices.Clone(fk.shard)
	fk.shard[off] ^= 0x5a
}

// cluster is a Store over fake nodes, one per zone.
type cluster struct {
	t     testing.TB
	nodes map[string]*fakeNode
	list  []*fakeNode
	s     *Store
}

const (
	testBlock  = 4096
	testBucket = "bkt"
)

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// shortStall makes stalled streams fail fast. It must still be long enough
// for a healthy stream on a loaded machine under the race detector.
func shortStall(cfg *Config) { cfg.StallTimeout = 400 * time.Millisecond }

// noPreload makes every read stream its shards, as for large objects.
func noPreload(cfg *Config) { cfg.PreloadMax = -1 }

// newCluster starts a store over nodes fake nodes with d+p erasure and
// block size testBlock, and creates testBucket.
func newCluster(t testing.TB, nodes, d, p int, opts ...func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, nodes: make(map[string]*fakeNode)}
	m := &placement.Map{Epoch: 1, DataShards: d, ParityShards: p, Partitions: 64, BlockSize: testBlock}
	for i := range nodes {
		id := fmt.Sprintf("n%d", i)
		fn := newFakeNode(id)
		c.nodes[id] = fn
		c.list = append(c.list, fn)
		m.Nodes = append(m.Nodes, placement.Node{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", 7000+i), Zone: fmt.Sprintf("z%d", i)})
	}
	cfg := Config{
		Map:          m,
		Dial:         func(n placement.Node) client.Node { return c.nodes[n.ID] },
		CallTimeout:  time.Second,
		StallTimeout: 5 * time.Second, // stall tests shorten it

		BucketCacheTTL: time.Hour,
		Now:            func() time.Time { return testNow },
		Logger:         slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.s = s
	if err := s.CreateBucket(context.Background(), testBucket); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.bg.Wait)
	return c
}

// shardNode returns the fake node the current map places shard i of key on.
func (c *cluster) shardNode(key string, i int) *fakeNode {
	return c.nodes[c.s.Map().PlaceKey(testBucket, key)[i].ID]
}

// flush waits for background hint and abort deliveries.
func (c *cluster) flush() { c.s.bg.Wait() }

// allHints returns and clears every node's hints, by node ID.
func (c *cluster) allHints() map[string][]client.Hint {
	c.flush()
	out := make(map[string][]client.Hint)
	for _, n := range c.list {
		if h := n.takeHints(); len(h) > 0 {
			out[n.id] = h
		}
	}
	return out
}

func (c *cluster) put(key string, data []byte) ObjectInfo {
	c.t.Helper()
	info, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: key, Size: int64(len(data)), Body: bytes.NewReader(data)})
	if err != nil {
		c.t.Fatalf("put %s: %v", key, err)
	}
	return info
}

// get reads key whole.
func (c *cluster) get(key string) ([]byte, error) {
	obj, err := c.s.OpenObject(context.Background(), testBucket, key)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = obj.WriteRange(context.Background(), &buf, 0, obj.Info().Size)
	return buf.Bytes(), err
}

func (c *cluster) mustGet(key string, want []byte) {
	c.t.Helper()
	got, err := c.get(key)
	if err != nil {
		c.t.Fatalf("get %s: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		c.t.Fatalf("get %s: %d bytes differ from the %d written", key, len(got), len(want))
	}
}

// assertNothing fails unless no node has anything committed or staged for key.
func (c *cluster) assertNothing(key string) {
	c.t.Helper()
	c.flush()
	for _, n := range c.list {
		if rec := n.committed(testBucket, key); rec != nil {
			c.t.Errorf("node %s has %s committed", n.id, rec.Version)
		}
		if st := n.staged(testBucket, key); len(st) > 0 {
			c.t.Errorf("node %s has %v staged", n.id, st)
		}
	}
}

// payload returns n deterministic, non-repeating-looking bytes.
func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func wantErr(t *testing.T, err, sentinel error, kind kerr.Kind) {
	t.Helper()
	if !errors.Is(err, sentinel) || kerr.KindOf(err) != kind {
		t.Fatalf("error %v: want %v with kind %v (got kind %v)", err, sentinel, kind, kerr.KindOf(err))
	}
}
