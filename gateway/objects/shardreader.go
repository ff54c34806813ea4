package objects

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

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
			errStalled, r.meta.Bucket, r.meta.Key, r.m.Node.ID, r.stall))
	})
	r.timer.Stop()
	if down := o.s.downChan(m.Node.ID); down != nil && !bypassed(m) {
		go func() {
			select {
			case <-down:
				r.cancel(fmt.Errorf("%w: %s", errNodeDown, m.Node.ID))
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
		rc, err := r.m.Client.ReadShard(r.ctx, r.meta.Bucket, r.meta.Key, r.meta.Version, r.shard, at, r.end-at)
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
		r.s.progress(r.m.Node.ID)
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
		r.s.health.ObserveWait(r.m.Node.ID, d)
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
				errHedged, r.m.Node.ID, r.delay, sp.shard, r.meta.Bucket, r.meta.Key, sp.m.Node.ID))
		}
		r.s.health.Hedged(r.m.Node.ID, won)
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
