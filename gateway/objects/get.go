package objects

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
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
}

func (o *object) Info() ObjectInfo { return infoOf(o.meta) }

// WriteRange streams bytes [off, off+length) to w. It reads the data shards
// of the covering stripes and falls back to parity, shard by shard, when a
// node fails, stalls or returns a block that fails its digest. Every shard
// that failed is reported as a hint to the other holders.
//
// Errors: ErrInvalidRange (kerr.Invalid) for a range outside the object;
// ErrQuorum (kerr.Unavailable) when fewer than d shards could be read.
func (o *object) WriteRange(ctx context.Context, w io.Writer, off, length int64) error {
	const op = "objects.WriteRange"
	size := o.meta.Size
	if off < 0 || length < 0 || off > size || length > size-off {
		return kerr.E(op, kerr.Invalid, fmt.Errorf("%w: %d bytes at %d of a %d-byte object", ErrInvalidRange, length, off, size))
	}
	if length == 0 {
		return nil
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
	for i, h := range o.holders {
		if h.c == nil {
			continue
		}
		sr := o.newShardReader(ctx, h, span)
		if s, ok := firstUse(l, span, off, off+length, i); i < o.meta.Data && ok {
			// The healthy path reads these data shards: ask for them all
			// at once rather than one after another, each where the
			// decoder will first want it.
			sr.start(l.FrameOffset(s))
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
		return nil
	case errors.Is(err, codec.ErrTooFewShards):
		return kerr.E(op, kerr.Unavailable, fmt.Errorf("%w: %w", ErrQuorum, err))
	case ctx.Err() != nil:
		return kerr.E(op, kerr.Transient, err)
	}
	return kerr.E(op, err)
}

// hintFailures reports every shard the decoder found missing or corrupt to
// the holders of the other shards.
func (o *object) hintFailures(ctx context.Context, rep codec.Report) {
	if len(rep.Failed) == 0 {
		return
	}
	reasons := make(map[int]string)
	for _, f := range rep.Failed {
		if f == nil || f.Shard < 0 || f.Shard >= len(o.holders) {
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
	case errors.Is(err, errStalled), kerr.Is(kerr.Unavailable, err), kerr.Is(kerr.Transient, err):
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

// shardReader reads one shard's part of a span, [pos, end), from its
// holder. It opens the node's stream only when first read, or when started
// ahead of time, so shards the decoder never needs cost nothing. Seek moves
// the position forward: before the stream is open that moves where it will
// open, which lets the decoder skip stripes without fetching them. A read
// that makes no progress for the stall timeout fails, and the decoder moves
// on to another shard.
//
// A shardReader is used by one goroutine at a time.
type shardReader struct {
	m      member
	meta   *client.ObjectMeta
	ctx    context.Context
	cancel context.CancelCauseFunc
	base   int64 // start of the span in the shard
	pos    int64 // next byte the decoder wants
	end    int64 // end of the span
	stall  time.Duration
	timer  *time.Timer

	started bool
	phys    int64         // position of the open stream
	ready   chan struct{} // closed once rc and err are set
	rc      io.ReadCloser
	err     error // sticky
}

func (o *object) newShardReader(ctx context.Context, m member, sp codec.Span) *shardReader {
	r := &shardReader{
		m: m, meta: &o.meta,
		base: sp.ShardOff, pos: sp.ShardOff, end: sp.ShardOff + sp.ShardLen,
		stall: o.s.stallTimeout, ready: make(chan struct{}),
	}
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	r.timer = time.AfterFunc(time.Duration(math.MaxInt64), func() {
		r.cancel(fmt.Errorf("%w: shard of %s/%s on node %s made no progress for %v",
			errStalled, r.meta.Bucket, r.meta.Key, r.m.node.ID, r.stall))
	})
	r.timer.Stop()
	return r
}

// start opens the node's stream at shard offset at, in the background.
func (r *shardReader) start(at int64) {
	if r.started {
		return
	}
	r.started, r.phys = true, at
	go func() {
		defer close(r.ready)
		r.timer.Reset(r.stall)
		rc, err := r.m.c.ReadShard(r.ctx, r.meta.Bucket, r.meta.Key, r.meta.Version, at, r.end-at)
		r.timer.Stop()
		if err != nil {
			r.err = r.cause(err)
			return
		}
		r.rc = rc
	}()
}

// cause prefers the stall verdict over the bare cancellation it caused.
func (r *shardReader) cause(err error) error {
	if c := context.Cause(r.ctx); c != nil && errors.Is(c, errStalled) {
		return c
	}
	return err
}

func (r *shardReader) Read(p []byte) (int, error) {
	r.start(r.pos)
	<-r.ready
	if r.err == nil && r.phys > r.pos {
		// Opened ahead for the healthy path, but the decoder wants an
		// earlier stripe to repair another shard: open again from there.
		r.rc.Close()
		r.rc, r.started, r.ready = nil, false, make(chan struct{})
		r.start(r.pos)
		<-r.ready
	}
	if r.err != nil {
		return 0, r.err
	}
	if r.pos == r.end {
		return 0, io.EOF
	}
	r.timer.Reset(r.stall)
	defer r.timer.Stop()
	if skip := r.pos - r.phys; skip > 0 {
		k, err := io.CopyN(io.Discard, r.rc, skip)
		r.phys += k
		if err != nil {
			r.err = r.cause(err)
			return 0, r.err
		}
	}
	if rem := r.end - r.pos; int64(len(p)) > rem {
		p = p[:rem]
	}
	k, err := r.rc.Read(p)
	r.pos += int64(k)
	r.phys += int64(k)
	if err != nil && err != io.EOF {
		r.err = r.cause(err)
		err = r.err
	}
	return k, err
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
	if !r.started {
		return nil
	}
	<-r.ready
	if r.rc != nil {
		return r.rc.Close()
	}
	return nil
}
