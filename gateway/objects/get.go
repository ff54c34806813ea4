package objects

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// object is a resolved version and the nodes holding its shards.
type object struct {
	s       *Store
	meta    client.ObjectMeta
	holders []member // by shard index; c == nil: no holder
	preload [][]byte // by shard index: whole shard streams already fetched, or nil
}

func (o *object) Info() ObjectInfo { return infoOf(o.meta) }

// WriteRange streams bytes [off, off+length) to w. It reads the data shards
// of the covering stripes and falls back to parity, shard by shard, when a
// node fails, stalls or returns a block that fails its digest. Every shard
// that failed is reported as a hint to the other holders.
//
// Errors: ErrInvalidRange (kerr.Invalid) for a range outside the object;
// ErrNoSuchKey (kerr.NotExist) when, before any byte was written, holders
// no longer had the version's shards because a delete superseded it;
// ErrQuorum (kerr.Unavailable) when fewer than d shards could be read.
func (o *object) WriteRange(ctx context.Context, w io.Writer, off, length int64) error {
	const op = "objects.WriteRange"
	cw := &countingWriter{w: w}
	err := o.writeRange(ctx, cw, off, length)
	if err == nil || cw.n > 0 || !errors.Is(err, errShardsGone) {
		return err
	}
	// Nodes keep a superseded version's shards for a grace, so this is a
	// read that outlasted it, or nodes without one: if the key was deleted
	// meanwhile, the answer the client would get from a fresh GET is the
	// right one. A newer version is not served in its place: the caller
	// may have described this one already.
	if _, rerr := fenced(ctx, o.s, func(ctx context.Context) (*resolved, error) {
		return o.s.resolve(ctx, o.meta.Bucket, o.meta.Key)
	}); errors.Is(rerr, ErrNoSuchKey) {
		return kerr.E(op, rerr)
	}
	return err
}

// errShardsGone marks a read that failed because holders answered that
// they no longer have the version's shards.
var errShardsGone = errors.New("holders no longer have the version")

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	c.n += int64(k)
	return k, err
}

// writeRange is WriteRange without the second look after a failure.
func (o *object) writeRange(ctx context.Context, w io.Writer, off, length int64) error {
	const op = "objects.WriteRange"
	size := o.meta.Size
	if off < 0 || length < 0 || off > size || length > size-off {
		return kerr.E(op, kerr.Invalid, fmt.Errorf("%w: %d bytes at %d of a %d-byte object", ErrInvalidRange, length, off, size))
	}
	if length == 0 {
		return nil
	}
	if len(o.meta.Parts) > 0 {
		return o.writeParts(ctx, w, off, length)
	}
	cd, err := o.s.codec(o.meta.Data, o.meta.Parity, o.meta.BlockSize)
	if err != nil {
		return kerr.E(op, kerr.Corrupt, fmt.Errorf("version %s has unusable erasure parameters: %w", o.meta.Version, err))
	}
	l := cd.Layout(size)
	span := l.Span(off, length)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readers := make([]io.Reader, len(o.holders))
	srs := make([]*shardReader, len(o.holders))
	var hg *hedger
	if o.s.health != nil {
		hg = &hedger{s: o.s, frame: int64(codec.DigestSize + o.meta.BlockSize)}
	}
	// Data shards without a holder are known missing before the first
	// read: ask for as many parity shards right away, from the first
	// stripe that needs them, rather than after the decoder finds out.
	// Measured on 1 MiB GETs with two nodes down, in-process, c8.
	missing, need := 0, -1
	for i := 0; i < o.meta.Data && i < len(o.holders); i++ {
		if o.holders[i].c != nil {
			continue
		}
		if s, ok := firstUse(l, span, off, off+length, i); ok {
			missing++
			if need < 0 || s < need {
				need = s
			}
		}
	}
	for i, h := range o.holders {
		if h.c == nil {
			continue
		}
		if pre := o.preloaded(i, l); pre != nil {
			// Fetched with the key's state. Decode verifies its blocks like
			// any other stream and falls back to parity if they fail.
			readers[i] = bytes.NewReader(pre[span.ShardOff : span.ShardOff+span.ShardLen])
			if hg != nil {
				hg.readers++ // a shard that has not failed, for hedging decisions
			}
			continue
		}
		sr := o.newShardReader(ctx, h, i, span)
		if hg != nil {
			sr.group = hg
			hg.readers++
			if i < o.meta.Data {
				sr.hedge, sr.delay = hg, o.s.hedgeDelay(h.node.ID)
			} else {
				hg.spares = append(hg.spares, sr)
			}
		}
		if s, ok := firstUse(l, span, off, off+length, i); i < o.meta.Data && ok {
			// The healthy path reads these data shards: ask for them all
			// at once rather than one after another, each where the
			// decoder will first want it.
			sr.start(l.FrameOffset(s))
		}
		if i >= o.meta.Data && missing > 0 {
			sr.start(l.FrameOffset(need))
			missing--
		}
		readers[i], srs[i] = sr, sr
	}
	rep, err := cd.Decode(w, readers, size, off, length)
	for _, sr := range srs {
		if sr != nil {
			sr.Close()
		}
	}
	o.hintFailures(ctx, rep)
	switch {
	case err == nil:
		if len(rep.Failed) > 0 {
			o.s.metrics.degradedRead()
		}
		return nil
	case errors.Is(err, codec.ErrTooFewShards) && shardsGone(rep):
		return kerr.E(op, kerr.Unavailable, fmt.Errorf("%w: %w: %w", ErrQuorum, errShardsGone, err))
	case errors.Is(err, codec.ErrTooFewShards):
		return kerr.E(op, kerr.Unavailable, fmt.Errorf("%w: %w", ErrQuorum, err))
	case ctx.Err() != nil:
		return kerr.E(op, kerr.Transient, err)
	}
	return kerr.E(op, err)
}

// preloaded returns shard i's stream fetched with the key's state if it is
// this version's shard, else nil (read it from its holder). Its frames are
// checked as Decode reads them; its root is checked here, because a valid
// shard of another version passes every frame check: a state answer taken
// before a roll-forward carries the shard the node held then.
func (o *object) preloaded(i int, l codec.Layout) []byte {
	if i >= len(o.preload) || o.preload[i] == nil || i >= len(o.meta.Roots) {
		return nil
	}
	want, err := codec.ParseDigest(o.meta.Roots[i])
	if err != nil {
		return nil
	}
	if got, err := codec.FramedRoot(o.preload[i], l); err != nil || got != want {
		o.s.log.Debug("objects: preloaded shard is not the version's", "bucket", o.meta.Bucket, "key", o.meta.Key,
			"version", o.meta.Version, "shard", i, "err", err)
		return nil
	}
	return o.preload[i]
}

// shardsGone reports whether a holder answered that it does not have its
// shard of the version: a newer commit may have superseded it.
func shardsGone(rep codec.Report) bool {
	for _, f := range rep.Failed {
		if f != nil && kerr.Is(kerr.NotExist, f.Err) {
			return true
		}
	}
	return false
}

// hintFailures reports every shard the decoder found missing or corrupt to
// the holders of the other shards.
func (o *object) hintFailures(ctx context.Context, rep codec.Report) {
	if len(rep.Failed) == 0 {
		return
	}
	reasons := make(map[int]string)
	for _, f := range rep.Failed {
		if f == nil || f.Shard < 0 || f.Shard >= len(o.holders) || errors.Is(f.Err, errHedged) {
			// A shard dropped because another arrived first is not damaged.
			continue
		}
		if r := hintReason(f.Err); reasons[f.Shard] == "" || r == "corrupt" {
			reasons[f.Shard] = r
		}
	}
	now := o.s.now().UTC()
	var hints []client.Hint
	var to []member
	for i, h := range o.holders {
		reason, failed := reasons[i]
		if h.c == nil {
			continue // no holder: reported when the version was resolved
		}
		if !failed {
			to = append(to, h)
			continue
		}
		hints = append(hints, client.Hint{
			Bucket: o.meta.Bucket, Key: o.meta.Key, Version: o.meta.Version,
			Shard: i, NodeID: h.node.ID, Reason: reason, Time: now,
		})
	}
	o.s.sendHints(ctx, to, hints)
}

func hintReason(err error) string {
	switch {
	case errors.Is(err, codec.ErrCorrupt):
		return "corrupt"
	case errors.Is(err, errStalled), errors.Is(err, errNodeDown), kerr.Is(kerr.Unavailable, err), kerr.Is(kerr.Transient, err):
		return "unreachable"
	}
	return "missing"
}

// firstUse returns the first stripe of span in which the range [off, end)
// needs data block i, if any. Only the first and last stripes of a span can
// leave data blocks out, so the loop runs at most twice.
func firstUse(l codec.Layout, sp codec.Span, off, end int64, i int) (int, bool) {
	stripe := int64(l.Data) * int64(l.BlockSize)
	for s := sp.FirstStripe; s <= sp.LastStripe; s++ {
		base := int64(s) * stripe
		lo := max(off-base, 0)
		hi := min(end-base, int64(l.StripeLen(s)))
		bl := int64(l.BlockLen(s))
		if lo/bl <= int64(i) && int64(i) <= (hi-1)/bl {
			return s, true
		}
	}
	return 0, false
}

// errHedged cuts off a data shard's stream once a parity shard asked for
// in its place has answered first.
var errHedged = errors.New("hedged: another shard answered first")

// shardReader reads one shard's part of a span, [pos, end), from its
// holder. It opens the node's stream only when first read, or when started
// ahead of time, so shards the decoder never needs cost nothing. Seek moves
// the position forward: before the stream is open that moves where it will
// open, which lets the decoder skip stripes without fetching them. A read
// that makes no progress for the stall timeout fails, and the decoder moves
// on to another shard.
//
// A data shard's reader may be hedged: when a wait for its node (the open,
// or a read) lasts longer than the node's hedge delay, it starts the next
// idle parity reader at the current stripe, and if that one opens first it
// cuts its own stream off (errHedged), so the decoder moves to the parity
// shard, already on its way. The first d shards to arrive win, and a node
// that stalls costs a GET about one hedge delay.
//
// A shardReader is read by one goroutine at a time; a hedge may start an
// idle one from another goroutine.
type shardReader struct {
	m      member
	shard  int // the index read: a node holding another refuses (client.ErrWrongShard)
	s      *Store
	meta   *client.ObjectMeta
	ctx    context.Context
	cancel context.CancelCauseFunc
	base   int64 // start of the span in the shard
	pos    int64 // next byte the decoder wants
	end    int64 // end of the span
	stall  time.Duration
	timer  *time.Timer

	group      *hedger       // the readers of this WriteRange; nil without health tracking
	hedge      *hedger       // nil: never hedged
	delay      time.Duration // the node's hedge delay when the read began
	hedgeTimer *time.Timer   // runs hedgeNow; created by the first wait
	waitSeq    atomic.Uint64 // odd while a wait on the node is in progress
	hedgeAt    atomic.Int64  // stripe offset to start a hedge at
	waitStart  time.Time     // when the current wait began

	mu      sync.Mutex // guards started, phys, ready and openAt
	started bool
	openAt  time.Time
	phys    int64         // position of the open stream
	ready   chan struct{} // closed once rc and err are set
	rc      io.ReadCloser
	err     error // sticky
}

func (o *object) newShardReader(ctx context.Context, m member, shard int, sp codec.Span) *shardReader {
	r := &shardReader{
		m: m, shard: shard, s: o.s, meta: &o.meta,
		base: sp.ShardOff, pos: sp.ShardOff, end: sp.ShardOff + sp.ShardLen,
		stall: o.s.stallTimeout, ready: make(chan struct{}),
	}
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	r.timer = time.AfterFunc(time.Duration(math.MaxInt64), func() {
		r.cancel(fmt.Errorf("%w: shard of %s/%s on node %s made no progress for %v",
			errStalled, r.meta.Bucket, r.meta.Key, r.m.node.ID, r.stall))
	})
	r.timer.Stop()
	if down := o.s.downChan(m.node.ID); down != nil && !bypassed(m) {
		go func() {
			select {
			case <-down:
				r.cancel(fmt.Errorf("%w: %s", errNodeDown, m.node.ID))
			case <-r.ctx.Done():
			}
		}()
	}
	return r
}

// start opens the node's stream at shard offset at, in the background,
// unless it is open already. It returns the channel closed once the open
// is done, and when the open began.
func (r *shardReader) start(at int64) (<-chan struct{}, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.startLocked(at)
	return r.ready, r.openAt
}

// startIdle starts the stream at at if it was not started, and reports
// whether it did.
func (r *shardReader) startIdle(at int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return false
	}
	r.startLocked(at)
	return true
}

func (r *shardReader) startLocked(at int64) {
	if r.started {
		return
	}
	r.started, r.phys, r.openAt = true, at, time.Now()
	ready := r.ready
	go func() {
		defer close(ready)
		r.timer.Reset(r.stall)
		rc, err := r.m.c.ReadShard(r.ctx, r.meta.Bucket, r.meta.Key, r.meta.Version, r.shard, at, r.end-at)
		r.timer.Stop()
		if err != nil {
			r.fail(err)
			return
		}
		r.rc = rc
	}()
}

// cause prefers the verdict that cut the stream off (stalled, node down,
// hedged) over the bare cancellation it caused.
func (r *shardReader) cause(err error) error {
	if c := context.Cause(r.ctx); c != nil && (errors.Is(c, errStalled) || errors.Is(c, errNodeDown) || errors.Is(c, errHedged)) {
		return c
	}
	return err
}

// awaitOpen waits for the open in flight, hedging it if it is slow.
func (r *shardReader) awaitOpen(ready <-chan struct{}, since time.Time) {
	r.beginWait(since)
	<-ready
	r.endWait()
}

func (r *shardReader) Read(p []byte) (int, error) {
	r.awaitOpen(r.start(r.pos))
	if r.err == nil && r.phys > r.pos {
		// Opened ahead for the healthy path, but the decoder wants an
		// earlier stripe to repair another shard: open again from there.
		r.rc.Close()
		r.mu.Lock()
		r.rc, r.started, r.ready = nil, false, make(chan struct{})
		r.mu.Unlock()
		r.awaitOpen(r.start(r.pos))
	}
	if r.err != nil {
		return 0, r.err
	}
	if r.pos == r.end {
		return 0, io.EOF
	}
	r.timer.Reset(r.stall)
	defer r.timer.Stop()
	r.beginWait(time.Time{})
	defer r.endWait()
	if skip := r.pos - r.phys; skip > 0 {
		k, err := io.CopyN(io.Discard, r.rc, skip)
		r.phys += k
		if err != nil {
			return 0, r.fail(err)
		}
	}
	if rem := r.end - r.pos; int64(len(p)) > rem {
		p = p[:rem]
	}
	k, err := r.rc.Read(p)
	r.pos += int64(k)
	r.phys += int64(k)
	if k > 0 {
		r.s.progress(r.m.node.ID)
	}
	if err != nil && err != io.EOF {
		err = r.fail(err)
	}
	return k, err
}

// fail makes err (or the verdict that caused it) the reader's sticky
// error and counts the reader out of its group.
func (r *shardReader) fail(err error) error {
	if r.err == nil && r.group != nil {
		r.group.failed.Add(1)
	}
	r.err = r.cause(err)
	return r.err
}

// beginWait marks the start of a wait on the node that began at since
// (an open may have been started earlier; zero: now) and, for a hedged
// reader, arms the hedge. endWait ends the wait. Both run for every read,
// so they allocate nothing and take no lock.
func (r *shardReader) beginWait(since time.Time) {
	if r.hedge == nil {
		return
	}
	r.hedgeAt.Store(r.pos - r.pos%r.hedge.frame)
	r.waitSeq.Add(1) // odd: waiting
	d := r.delay
	if since.IsZero() {
		since = time.Now()
	} else {
		d = max(d-time.Since(since), 0)
	}
	r.waitStart = since
	if r.hedgeTimer == nil {
		r.hedgeTimer = time.AfterFunc(d, r.hedgeNow)
	} else {
		r.hedgeTimer.Reset(d)
	}
}

func (r *shardReader) endWait() {
	if r.hedge == nil {
		return
	}
	r.hedgeTimer.Stop()
	r.waitSeq.Add(1) // even: not waiting
	// Reads served from buffers are not waits on the node.
	if d := time.Since(r.waitStart); d >= minWait && r.ctx.Err() == nil {
		r.s.health.ObserveWait(r.m.node.ID, d)
	}
}

// minWait is the shortest wait on a shard stream worth recording.
const minWait = 100 * time.Microsecond

// hedgeNow runs when a wait outlasted the hedge delay: it starts a spare
// parity reader and, if that opens before the wait ends, cuts this reader
// off so the decoder takes the spare instead.
func (r *shardReader) hedgeNow() {
	seq := r.waitSeq.Load()
	if seq%2 == 0 {
		return // the wait ended meanwhile
	}
	sp := r.hedge.launch(r.hedgeAt.Load())
	if sp == nil {
		return
	}
	sp.mu.Lock()
	ready := sp.ready
	sp.mu.Unlock()
	go func() {
		select {
		case <-ready:
		case <-r.ctx.Done():
			return
		}
		// Dropping this shard for the spare must leave d shards that have
		// not failed, or a slow but working shard would be lost to a read
		// that another failure then makes impossible.
		alive := int(r.hedge.readers - r.hedge.failed.Load())
		won := sp.err == nil && r.waitSeq.Load() == seq && alive-1 >= r.meta.Data
		if won {
			r.cancel(fmt.Errorf("%w: node %s slower than %v, shard %d of %s/%s read from node %s",
				errHedged, r.m.node.ID, r.delay, sp.shard, r.meta.Bucket, r.meta.Key, sp.m.node.ID))
		}
		r.s.health.Hedged(r.m.node.ID, won)
	}()
}

// Seek moves the position forward by offset; only io.SeekCurrent with a
// non-negative offset within the span is supported. It returns the new
// position relative to the start of the span.
func (r *shardReader) Seek(offset int64, whence int) (int64, error) {
	if whence != io.SeekCurrent || offset < 0 || offset > r.end-r.pos {
		return 0, fmt.Errorf("objects: shard reader cannot seek %d (whence %d) at %d of [%d, %d)", offset, whence, r.pos, r.base, r.end)
	}
	r.pos += offset
	return r.pos - r.base, nil
}

// Close stops the stream and waits for an open in flight.
func (r *shardReader) Close() error {
	r.cancel(nil)
	r.timer.Stop()
	if r.hedgeTimer != nil {
		r.hedgeTimer.Stop()
	}
	r.mu.Lock()
	started, ready := r.started, r.ready
	r.mu.Unlock()
	if !started {
		return nil
	}
	<-ready
	if r.rc != nil {
		return r.rc.Close()
	}
	return nil
}

// hedger hands out the parity readers of one WriteRange that nothing has
// started yet, lowest shard first: the order in which the decoder falls
// back to them.
type hedger struct {
	s       *Store
	frame   int64 // a full frame: stripe offsets in a shard are multiples of it
	readers int32 // shards with a holder; set before reading starts
	failed  atomic.Int32

	mu     sync.Mutex
	spares []*shardReader
}

// launch starts the next idle spare at shard offset at and returns it, or
// nil if none is left.
func (h *hedger) launch(at int64) *shardReader {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.spares) > 0 {
		sp := h.spares[0]
		h.spares = h.spares[1:]
		if sp.startIdle(at) {
			return sp
		}
	}
	return nil
}
