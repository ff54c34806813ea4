package nodetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Node is an in-memory storage node. It keeps the node's contract, as
// RunConformance checks: newest wins, delete markers, staged vs
// committed, frames verified on stage, a commit of an older version is
// refused with a ConflictError, a staged shard may be committed under a
// newer version than it was staged under, a stage answers with the key's
// newest version, a read naming another shard index than the one held is
// refused with client.ErrWrongShard, calls under an older map epoch than
// the node's are refused with a *client.StaleMapError. It has fault knobs
// (see Faults) and is safe for concurrent use. Test-only.
type Node struct {
	id string

	mu sync.Mutex
	st State
}

// State is everything a Node holds, for tests that set it up or inspect
// it directly (see Node.Edit).
type State struct {
	Faults
	Keys    map[string]*Key // by KeyID(bucket, key)
	Buckets map[string]client.BucketRecord
	Hints   []client.Hint
	Calls   map[string]int // by operation, see Faults
	Map     *placement.Map // nil until PutMap
}

// Faults are a Node's injected faults. Operations are named "stage",
// "commit", "abort", "read", "stat", "list", "bucket", "hints", "health",
// "verify", "drop", "staged" and "map"; "*" names all of them.
type Faults struct {
	Down  map[string]bool          // fail at once with kerr.Unavailable
	Stall map[string]bool          // block until the call's ctx is done
	Slow  map[string]time.Duration // answer after this long (or when ctx is done)
	// DropCommit makes commits fail without being applied.
	DropCommit bool
	// FailAfter > 0 makes stage bodies and shard streams fail after that
	// many bytes; StallAfter > 0 makes them block (until ctx is done)
	// after that many.
	FailAfter, StallAfter int64
	// StageErr fails Stage after the whole body was read; BadRoot makes
	// Stage keep the shard but answer with a wrong root.
	StageErr error
	BadRoot  bool
	// KeepSuperseded models a node with a superseded-shard grace: a
	// superseded version's shard stays readable by its exact version.
	// Off, supersession removes it at once (a node with no grace).
	KeepSuperseded bool
	// HideStaged > 0 makes that many Stat answers leave out staged
	// versions: answers taken before a writer's stage arrived.
	HideStaged int
	// BeforeCommit, if set, runs at the start of every Commit, outside
	// the node's lock: a test may block a writer's commit there.
	BeforeCommit func(meta client.ObjectMeta)
}

// Key is what a Node holds of one key.
type Key struct {
	Committed *client.Record
	Shard     []byte // committed shard stream (framed)
	// Corrupt says the committed shard failed a Verify and is
	// quarantined: it is never served again.
	Corrupt bool
	Staged  []Staged
	Old     map[string]Old // superseded shards by version, with KeepSuperseded
	// Previous names the last version of Old superseded: Stat reports
	// its record as KeyState.Previous, as a node in its grace does.
	Previous string
}

// Old is a superseded version's record and shard.
type Old struct {
	Record client.Record
	Shard  int
	Data   []byte
}

// Staged is a staged shard.
type Staged struct {
	Ref  client.StagedRef
	Data []byte
}

// KeyID is the index of a key in State.Keys.
func KeyID(bucket, key string) string { return bucket + "\x00" + key }

// New returns an empty Node named id.
func New(id string) *Node {
	n := &Node{id: id}
	n.st = State{
		Keys:    make(map[string]*Key),
		Buckets: make(map[string]client.BucketRecord),
		Calls:   make(map[string]int),
	}
	n.st.Down = make(map[string]bool)
	n.st.Stall = make(map[string]bool)
	n.st.Slow = make(map[string]time.Duration)
	return n
}

// ID returns the node's ID.
func (n *Node) ID() string { return n.id }

// Edit runs f with the node's state, under its lock: f must not call the
// node.
func (n *Node) Edit(f func(st *State)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(&n.st)
}

// SetDown makes op fail at once (v true) or not.
func (n *Node) SetDown(op string, v bool) { n.Edit(func(st *State) { st.Down[op] = v }) }

// SetStall makes op block until its ctx is done (v true) or not.
func (n *Node) SetStall(op string, v bool) { n.Edit(func(st *State) { st.Stall[op] = v }) }

// Wipe forgets everything the node holds, as a node whose disk was
// replaced; its faults stay.
func (n *Node) Wipe() {
	n.Edit(func(st *State) {
		st.Keys = make(map[string]*Key)
		st.Buckets = make(map[string]client.BucketRecord)
		st.Hints = nil
		st.Map = nil
	})
}

func (n *Node) gate(ctx context.Context, op string) error {
	n.mu.Lock()
	n.st.Calls[op]++
	down := n.st.Down[op] || n.st.Down["*"]
	stall := n.st.Stall[op] || n.st.Stall["*"]
	slow := n.st.Slow[op]
	if slow == 0 {
		slow = n.st.Slow["*"]
	}
	n.mu.Unlock()
	if slow > 0 {
		t := time.NewTimer(slow)
		defer t.Stop()
		select {
		case <-t.C:
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

// fence refuses a call made under an older map epoch than the node's, as
// the node does for every call but health, the map and shard reads.
func (n *Node) fence(ctx context.Context, op string) error {
	f := client.FenceOf(ctx)
	if f == nil || f.Epoch() == 0 {
		return nil
	}
	n.mu.Lock()
	m := n.st.Map
	n.mu.Unlock()
	if m == nil || f.Epoch() >= m.Epoch {
		return nil
	}
	m = clone(m)
	f.Refused(m)
	return kerr.E("fake."+op, kerr.Conflict, &client.StaleMapError{Epoch: f.Epoch(), Map: m})
}

// enter is gate then fence.
func (n *Node) enter(ctx context.Context, op string) error {
	if err := n.gate(ctx, op); err != nil {
		return err
	}
	return n.fence(ctx, op)
}

func clone(m *placement.Map) *placement.Map {
	c := *m
	c.Nodes = slices.Clone(m.Nodes)
	return &c
}

// key returns the state of bucket/key, creating it. REQUIRES: n.mu.
func (n *Node) key(bucket, key string) *Key {
	id := KeyID(bucket, key)
	k := n.st.Keys[id]
	if k == nil {
		k = &Key{}
		n.st.Keys[id] = k
	}
	return k
}

// faulty wraps a stream with the node's FailAfter/StallAfter faults.
func (n *Node) faulty(ctx context.Context, r io.Reader) io.Reader {
	n.mu.Lock()
	defer n.mu.Unlock()
	return &faultReader{ctx: ctx, r: r, failAfter: n.st.FailAfter, stallAfter: n.st.StallAfter}
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

// Stage is client.Client.Stage.
func (n *Node) Stage(ctx context.Context, bucket, key, version string, shard, blockSize int, body io.Reader) (client.StagedRef, error) {
	const op = "fake.Stage"
	if err := client.CheckObject(bucket, key, version); err != nil {
		return client.StagedRef{}, kerr.E(op, err)
	}
	if err := client.CheckShard(shard); err != nil {
		return client.StagedRef{}, kerr.E(op, err)
	}
	if err := n.enter(ctx, "stage"); err != nil {
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
	ref := client.StagedRef{Version: version, Shard: shard, Root: fr.Root().String(), Size: int64(len(data)), Staged: time.Now().UTC()}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.st.StageErr != nil {
		return client.StagedRef{}, kerr.E(op, n.st.StageErr)
	}
	if n.st.BadRoot {
		ref.Root = codec.Digest{}.String()
	}
	k := n.key(bucket, key)
	k.Staged = slices.DeleteFunc(k.Staged, func(s Staged) bool { return s.Ref.Version == version && s.Ref.Shard == shard })
	k.Staged = append(k.Staged, Staged{Ref: ref, Data: data})
	ref.Newest = version
	if k.Committed != nil {
		ref.Newest = max(ref.Newest, k.Committed.Version)
	}
	for _, s := range k.Staged {
		ref.Newest = max(ref.Newest, s.Ref.Version)
	}
	return ref, nil
}

// stagedOf returns the staged shards of k under version or alias.
func (k *Key) stagedOf(version, alias string) []Staged {
	var out []Staged
	for _, s := range k.Staged {
		if s.Ref.Version == version || alias != "" && s.Ref.Version == alias {
			out = append(out, s)
		}
	}
	return out
}

// pick chooses the staged shard a commit of m installs on node id: the
// one m places on it, else the lowest index, as the node does.
func pick(staged []Staged, m client.ObjectMeta, id string) (Staged, bool) {
	if len(staged) == 0 {
		return Staged{}, false
	}
	for _, s := range staged {
		if s.Ref.Shard < len(m.Nodes) && m.Nodes[s.Ref.Shard] == id {
			return s, true
		}
	}
	return slices.MinFunc(staged, func(a, b Staged) int { return a.Ref.Shard - b.Ref.Shard }), true
}

// dropStaged removes k's staged shards of version and alias.
func (k *Key) dropStaged(version, alias string) {
	k.Staged = slices.DeleteFunc(k.Staged, func(s Staged) bool {
		return s.Ref.Version == version || alias != "" && s.Ref.Version == alias
	})
}

// Commit is client.Client.Commit.
func (n *Node) Commit(ctx context.Context, meta client.ObjectMeta) (client.Record, error) {
	const op = "fake.Commit"
	if err := client.CheckObject(meta.Bucket, meta.Key, meta.Version); err != nil {
		return client.Record{}, kerr.E(op, err)
	}
	if err := n.enter(ctx, "commit"); err != nil {
		return client.Record{}, err
	}
	n.mu.Lock()
	hook := n.st.BeforeCommit
	n.mu.Unlock()
	if hook != nil {
		hook(meta)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.st.DropCommit {
		return client.Record{}, kerr.E(op, kerr.Unavailable, errors.New("commit dropped"))
	}
	k := n.key(meta.Bucket, meta.Key)
	if meta.Staged == meta.Version {
		meta.Staged = ""
	}
	if c := k.Committed; c != nil && c.Version > meta.Version {
		return client.Record{}, kerr.E(op, kerr.Conflict, &client.ConflictError{Newer: c.Version})
	}
	if c := k.Committed; c != nil && c.Version == meta.Version {
		if c.Deleted != meta.Deleted || c.ETag != meta.ETag || !slices.Equal(c.Roots, meta.Roots) {
			return client.Record{}, kerr.E(op, kerr.Conflict, &client.ConflictError{Newer: c.Version})
		}
		k.dropStaged(meta.StageVersion(), "")
		return *c, nil
	}
	meta = client.RecodeTags(k.Committed, meta)
	rec := client.Record{ObjectMeta: meta, Shard: -1}
	var data []byte
	if !meta.Deleted && len(meta.Parts) == 0 {
		st, ok := pick(k.stagedOf(meta.Version, meta.Staged), meta, n.id)
		if c := k.Committed; !ok && c != nil && meta.Staged != "" && c.Shard >= 0 && c.StageVersion() == meta.Staged &&
			c.ETag == meta.ETag && slices.Equal(c.Roots, meta.Roots) {
			// The same write committed under an older version: bind
			// its shard to the new one.
			st, ok = Staged{Ref: client.StagedRef{Shard: c.Shard, Root: c.Roots[c.Shard]}, Data: k.Shard}, true
		}
		if !ok {
			return client.Record{}, kerr.E(op, kerr.NotExist, fmt.Errorf("version %s not staged", meta.StageVersion()))
		}
		if st.Ref.Shard >= len(meta.Roots) || meta.Roots[st.Ref.Shard] != st.Ref.Root {
			return client.Record{}, kerr.E(op, kerr.Corrupt, errors.New("staged root differs from metadata"))
		}
		rec.Shard, data = st.Ref.Shard, st.Data
	}
	if c := k.Committed; n.st.KeepSuperseded && c != nil && c.Shard >= 0 && !k.Corrupt {
		if k.Old == nil {
			k.Old = make(map[string]Old)
		}
		k.Old[c.Version] = Old{Record: *c, Shard: c.Shard, Data: k.Shard}
		k.Previous = c.Version
	}
	k.Committed, k.Shard, k.Corrupt = &rec, data, false
	// Older staged versions stay, as on the node: Stat no longer shows
	// them, and the staged sweep removes them.
	k.dropStaged(meta.Version, meta.Staged)
	return rec, nil
}

// Abort is client.Client.Abort.
func (n *Node) Abort(ctx context.Context, bucket, key, version string) error {
	const op = "fake.Abort"
	if err := client.CheckObject(bucket, key, version); err != nil {
		return kerr.E(op, err)
	}
	if err := n.enter(ctx, "abort"); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.key(bucket, key).dropStaged(version, "")
	return nil
}

// ReadShard is client.Client.ReadShard. Like the node's, it is not
// fenced: it names an exact version.
func (n *Node) ReadShard(ctx context.Context, bucket, key, version string, shard int, off, length int64) (io.ReadCloser, error) {
	const op = "fake.ReadShard"
	if err := client.CheckObject(bucket, key, version); err != nil {
		return nil, kerr.E(op, err)
	}
	if err := client.CheckShard(shard); err != nil {
		return nil, kerr.E(op, err)
	}
	if off < 0 || length < -1 {
		return nil, kerr.E(op, kerr.Invalid, errors.New("bad range"))
	}
	if err := n.gate(ctx, "read"); err != nil {
		return nil, err
	}
	n.mu.Lock()
	k := n.key(bucket, key)
	c := k.Committed
	old, superseded := k.Old[version]
	if !superseded && (c == nil || c.Version != version || c.Deleted || c.Shard < 0) {
		n.mu.Unlock()
		return nil, kerr.E(op, kerr.NotExist, fmt.Errorf("version %s not committed", version))
	}
	held, data := old.Shard, old.Data
	if !superseded {
		held, data = c.Shard, k.Shard
		if k.Corrupt {
			n.mu.Unlock()
			return nil, kerr.E(op, kerr.Corrupt, fmt.Errorf("shard %d of version %s is quarantined", held, version))
		}
	}
	n.mu.Unlock()
	if held != shard {
		return nil, kerr.E(op, kerr.NotExist, fmt.Errorf("%w: shard %d of version %s, not %d", client.ErrWrongShard, held, version, shard))
	}
	end := int64(len(data))
	if length >= 0 {
		end = min(end, off+length)
	}
	off = min(off, end)
	return io.NopCloser(n.faulty(ctx, bytes.NewReader(slices.Clone(data[off:end])))), nil
}

// Stat is client.Client.Stat.
func (n *Node) Stat(ctx context.Context, bucket, key string) (client.KeyState, error) {
	const op = "fake.Stat"
	if err := client.CheckKey(bucket, key); err != nil {
		return client.KeyState{}, kerr.E(op, err)
	}
	if err := n.enter(ctx, "stat"); err != nil {
		return client.KeyState{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stat(bucket, key), nil
}

// stat is Stat under n.mu.
func (n *Node) stat(bucket, key string) client.KeyState {
	var ks client.KeyState
	k := n.st.Keys[KeyID(bucket, key)]
	if k == nil {
		return ks
	}
	if k.Committed != nil {
		c := *k.Committed
		ks.Committed = &c
		if old, ok := k.Old[k.Previous]; ok && old.Record.Version < c.Version {
			ks.Previous = &old.Record
		}
	}
	hide := n.st.HideStaged > 0
	if hide {
		n.st.HideStaged--
	}
	for _, s := range k.Staged {
		if !hide && (k.Committed == nil || s.Ref.Version > k.Committed.Version) {
			ks.Staged = append(ks.Staged, s.Ref)
		}
	}
	sort.SliceStable(ks.Staged, func(i, j int) bool { return ks.Staged[i].Version < ks.Staged[j].Version })
	return ks
}

// StatData is Stat with the committed data shard when it fits in limit.
// A node set up to fail or stall mid-stream returns none, so that such
// faults still reach the stream path.
func (n *Node) StatData(ctx context.Context, bucket, key string, limit int64, parity bool) (client.KeyState, error) {
	ks, err := n.Stat(ctx, bucket, key)
	if err != nil || ks.Committed == nil {
		return ks, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	c, k := ks.Committed, n.st.Keys[KeyID(bucket, key)]
	readFaults := n.st.FailAfter > 0 || n.st.StallAfter > 0 || n.st.Down["read"] || n.st.Stall["read"]
	// The shard sent is the record's, by version and index, as a node's
	// is read by file name: a commit between the two locks sends none.
	moved := k.Committed == nil || k.Committed.Version != c.Version || k.Committed.Shard != c.Shard
	if readFaults || moved || k.Corrupt || c.Deleted || len(c.Parts) > 0 || c.Shard < 0 || c.Shard >= c.Data && !parity || int64(len(k.Shard)) > limit {
		return ks, nil
	}
	n.st.Calls["preload"]++
	ks.Data = slices.Clone(k.Shard)
	return ks, nil
}

// List is client.Client.List.
func (n *Node) List(ctx context.Context, bucket, prefix, after string, limit int) (client.ListPage, error) {
	const op = "fake.List"
	if err := client.CheckBucket(bucket); err != nil {
		return client.ListPage{}, kerr.E(op, err)
	}
	if err := n.enter(ctx, "list"); err != nil {
		return client.ListPage{}, err
	}
	limit = client.ListLimit(limit)
	n.mu.Lock()
	defer n.mu.Unlock()
	var keys []string
	for id, k := range n.st.Keys {
		b, key, _ := strings.Cut(id, "\x00")
		if b == bucket && k.Committed != nil && strings.HasPrefix(key, prefix) && key > after {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	page := client.ListPage{Records: []client.Record{}}
	for _, key := range keys {
		if len(page.Records) == limit {
			page.Truncated = true
			break
		}
		page.Records = append(page.Records, *n.st.Keys[KeyID(bucket, key)].Committed)
	}
	return page, nil
}

// PutBucket is client.Client.PutBucket.
func (n *Node) PutBucket(ctx context.Context, rec client.BucketRecord) error {
	const op = "fake.PutBucket"
	if err := client.CheckBucket(rec.Name); err != nil {
		return kerr.E(op, err)
	}
	if err := n.enter(ctx, "bucket"); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch old, ok := n.st.Buckets[rec.Name]; {
	case !ok || rec.Version > old.Version:
		n.st.Buckets[rec.Name] = rec
	case old.Version > rec.Version:
		return kerr.E(op, kerr.Conflict, &client.ConflictError{Newer: old.Version})
	}
	return nil
}

// GetBucket is client.Client.GetBucket.
func (n *Node) GetBucket(ctx context.Context, name string) (client.BucketRecord, error) {
	const op = "fake.GetBucket"
	if err := client.CheckBucket(name); err != nil {
		return client.BucketRecord{}, kerr.E(op, err)
	}
	if err := n.enter(ctx, "bucket"); err != nil {
		return client.BucketRecord{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	rec, ok := n.st.Buckets[name]
	if !ok {
		return client.BucketRecord{}, kerr.E(op, kerr.NotExist, fmt.Errorf("bucket %s", name))
	}
	return rec, nil
}

// ListBuckets is client.Client.ListBuckets.
func (n *Node) ListBuckets(ctx context.Context) ([]client.BucketRecord, error) {
	if err := n.enter(ctx, "bucket"); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out := []client.BucketRecord{}
	for _, r := range n.st.Buckets {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// sameHint says whether a and b have the same identity.
func sameHint(a, b client.Hint) bool {
	return a.Bucket == b.Bucket && a.Key == b.Key && a.Version == b.Version && a.Shard == b.Shard
}

// AddHints is client.Client.AddHints.
func (n *Node) AddHints(ctx context.Context, hints []client.Hint) error {
	return n.editHints(ctx, "fake.AddHints", hints, func() {
		for _, h := range hints {
			n.st.Hints = slices.DeleteFunc(n.st.Hints, func(o client.Hint) bool { return sameHint(o, h) })
			n.st.Hints = append(n.st.Hints, h)
		}
	})
}

// editHints checks hints as the node does and, unless there are none, runs
// f under n.mu.
func (n *Node) editHints(ctx context.Context, op string, hints []client.Hint, f func()) error {
	if err := client.CheckHints(hints); err != nil {
		return kerr.E(op, err)
	}
	if len(hints) == 0 {
		return nil
	}
	if err := n.enter(ctx, "hints"); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	f()
	return nil
}

// ListHints is client.Client.ListHints.
func (n *Node) ListHints(ctx context.Context, limit int) ([]client.Hint, error) {
	if err := n.enter(ctx, "hints"); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	hs := slices.Clone(n.st.Hints)
	sort.Slice(hs, func(i, j int) bool {
		a, b := hs[i], hs[j]
		if a.Bucket != b.Bucket {
			return a.Bucket < b.Bucket
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Shard < b.Shard
	})
	return hs[:min(len(hs), client.ListLimit(limit))], nil
}

// DeleteHints is client.Client.DeleteHints.
func (n *Node) DeleteHints(ctx context.Context, hints []client.Hint) error {
	return n.editHints(ctx, "fake.DeleteHints", hints, func() {
		n.st.Hints = slices.DeleteFunc(n.st.Hints, func(o client.Hint) bool {
			return slices.ContainsFunc(hints, func(h client.Hint) bool { return sameHint(o, h) })
		})
	})
}

// Health is client.Client.Health. Never fenced.
func (n *Node) Health(ctx context.Context) (client.Health, error) {
	if err := n.gate(ctx, "health"); err != nil {
		return client.Health{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	h := client.Health{ID: n.id}
	if n.st.Map != nil {
		h.Epoch = n.st.Map.Epoch
	}
	for _, k := range n.st.Keys {
		if k.Committed != nil {
			h.Objects++
		}
	}
	return h, nil
}

// Verify is client.Client.Verify. The fake re-checks the committed
// shard's frames against the record's root; a shard that fails is
// quarantined (Key.Corrupt) and never served again.
func (n *Node) Verify(ctx context.Context, refs []client.ShardRef) ([]client.VerifyResult, error) {
	const op = "fake.Verify"
	if err := client.CheckShardRefs(refs); err != nil {
		return nil, kerr.E(op, err)
	}
	if len(refs) == 0 {
		return []client.VerifyResult{}, nil
	}
	if err := n.enter(ctx, "verify"); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]client.VerifyResult, len(refs))
	for i, ref := range refs {
		res := client.VerifyResult{ShardRef: ref, Shard: -1}
		k := n.st.Keys[KeyID(ref.Bucket, ref.Key)]
		switch {
		case k == nil || k.Committed == nil:
			res.Status = client.VerifyAbsent
		case k.Committed.Version != ref.Version || k.Committed.Deleted || k.Committed.Shard < 0:
			res.Status, res.Current = client.VerifyAbsent, k.Committed.Version
		case k.Committed.Shard != ref.Shard:
			res.Shard, res.Status = k.Committed.Shard, client.VerifyAbsent
		case k.Corrupt:
			res.Shard, res.Status, res.Detail = k.Committed.Shard, client.VerifyCorrupt, "quarantined"
		default:
			res.Shard = k.Committed.Shard
			res.Bytes = int64(len(k.Shard))
			if err := checkShard(k.Shard, *k.Committed); err != nil {
				k.Corrupt = true
				res.Status, res.Detail = client.VerifyCorrupt, err.Error()
			} else {
				res.Status = client.VerifyOK
			}
		}
		out[i] = res
	}
	return out, nil
}

// checkShard verifies a whole shard stream against rec's root and length.
func checkShard(data []byte, rec client.Record) error {
	l := codec.Layout{Data: rec.Data, Parity: rec.Parity, BlockSize: rec.BlockSize, Size: rec.Size}
	if rec.Shard >= len(rec.Roots) || l.Validate() != nil {
		return errors.New("record has no usable root digest for its shard")
	}
	fr := codec.NewFrameReader(bytes.NewReader(data), rec.BlockSize)
	for {
		_, _, err := fr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if got := fr.Root().String(); got != rec.Roots[rec.Shard] {
		return fmt.Errorf("%w: root %s, record says %s", codec.ErrCorrupt, got, rec.Roots[rec.Shard])
	}
	return nil
}

// DropMarker is client.Client.DropMarker.
func (n *Node) DropMarker(ctx context.Context, bucket, key, version string) (bool, error) {
	return n.drop(ctx, "fake.DropMarker", bucket, key, version, -1, func(c *client.Record) bool { return c.Deleted })
}

// DropShard is client.Client.DropShard.
func (n *Node) DropShard(ctx context.Context, bucket, key, version string, shard int) (bool, error) {
	if shard != -1 {
		if err := client.CheckShard(shard); err != nil {
			return false, kerr.E("fake.DropShard", err)
		}
	}
	return n.drop(ctx, "fake.DropShard", bucket, key, version, shard, func(c *client.Record) bool { return c.Shard == shard })
}

// drop removes the committed record of bucket/key if it is version and
// match says so (compare and delete), with the staged copies of its shard.
func (n *Node) drop(ctx context.Context, op, bucket, key, version string, shard int, match func(*client.Record) bool) (bool, error) {
	if err := client.CheckObject(bucket, key, version); err != nil {
		return false, kerr.E(op, err)
	}
	if err := n.enter(ctx, "drop"); err != nil {
		return false, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	k := n.st.Keys[KeyID(bucket, key)]
	if k == nil || k.Committed == nil || k.Committed.Version != version || !match(k.Committed) {
		return false, nil
	}
	k.Committed, k.Shard, k.Corrupt = nil, nil, false
	if shard >= 0 {
		k.Staged = slices.DeleteFunc(k.Staged, func(s Staged) bool { return s.Ref.Version == version && s.Ref.Shard == shard })
	}
	return true, nil
}

// ListStaged is client.Client.ListStaged: staged shards, oldest first.
func (n *Node) ListStaged(ctx context.Context, limit int) ([]client.StagedShard, error) {
	if err := n.enter(ctx, "staged"); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out := []client.StagedShard{}
	for id, k := range n.st.Keys {
		b, key, _ := strings.Cut(id, "\x00")
		for _, s := range k.Staged {
			out = append(out, client.StagedShard{Bucket: b, Key: key, StagedRef: s.Ref})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Staged.Before(out[j].Staged) })
	return out[:min(len(out), client.ListLimit(limit))], nil
}

// GetMap is client.Client.GetMap.
func (n *Node) GetMap(ctx context.Context) (*placement.Map, error) {
	if err := n.gate(ctx, "map"); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.st.Map == nil {
		return nil, kerr.E("fake.GetMap", kerr.NotExist, errors.New("no cluster map"))
	}
	return clone(n.st.Map), nil
}

// PutMap is client.Client.PutMap.
func (n *Node) PutMap(ctx context.Context, m *placement.Map) error {
	const op = "fake.PutMap"
	if err := n.gate(ctx, "map"); err != nil {
		return err
	}
	if err := m.Validate(); err != nil {
		return kerr.E(op, kerr.Invalid, err)
	}
	m = clone(m.WithDefaults())
	n.mu.Lock()
	defer n.mu.Unlock()
	switch old := n.st.Map; {
	case old == nil || m.Epoch > old.Epoch:
		n.st.Map = m
	case m.Epoch < old.Epoch:
		return kerr.E(op, kerr.Conflict, fmt.Errorf("node holds map epoch %d, newer than %d", old.Epoch, m.Epoch))
	case !sameMap(old, m):
		return kerr.E(op, kerr.Conflict, fmt.Errorf("node holds another map of epoch %d", m.Epoch))
	}
	return nil
}

func sameMap(a, b *placement.Map) bool {
	x, err1 := a.Marshal()
	y, err2 := b.Marshal()
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// Inspection helpers.

// Committed returns the node's committed record of bucket/key, nil if none.
func (n *Node) Committed(bucket, key string) *client.Record {
	n.mu.Lock()
	defer n.mu.Unlock()
	if k := n.st.Keys[KeyID(bucket, key)]; k != nil && k.Committed != nil {
		c := *k.Committed
		return &c
	}
	return nil
}

// StagedVersions returns the versions staged for bucket/key, sorted.
func (n *Node) StagedVersions(bucket, key string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	if k := n.st.Keys[KeyID(bucket, key)]; k != nil {
		for _, s := range k.Staged {
			out = append(out, s.Ref.Version)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// TakeHints returns and forgets the node's hints.
func (n *Node) TakeHints() []client.Hint {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.st.Hints
	n.st.Hints = nil
	return h
}

// Calls returns how many calls of op the node was made (see Faults).
func (n *Node) Calls(op string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st.Calls[op]
}

// Corrupt flips one byte of the committed shard of bucket/key at off.
func (n *Node) Corrupt(bucket, key string, off int64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := n.st.Keys[KeyID(bucket, key)]
	if k == nil || off >= int64(len(k.Shard)) {
		return fmt.Errorf("node %s: no committed shard byte %d for %s/%s", n.id, off, bucket, key)
	}
	k.Shard = slices.Clone(k.Shard)
	k.Shard[off] ^= 0x5a
	return nil
}
