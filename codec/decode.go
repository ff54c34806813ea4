package codec

import (
	"fmt"
	"io"

	"github.com/zeebo/blake3"
)

// Decode writes object bytes [off, off+length) of an object of the given
// size to w.
//
// shards has length d+p; shards[i] must yield shard i's framed bytes
// starting at c.Layout(size).Span(off, length).ShardOff; nil means missing.
// On the healthy path Decode reads only the data shards whose blocks hold
// requested bytes and never runs Reed-Solomon. A shard whose frame is
// missing, short, fails to read or fails its digest is dropped for the rest
// of the call and recorded in the Report; from that stripe on other shards
// (the remaining data shards first, then parity) fill in. A shard first used
// at a later stripe is advanced to it: with Seek(n, io.SeekCurrent) if it is
// an io.Seeker, else by discarding bytes.
//
// Only bytes that verified against their block digest, or were
// reconstructed from blocks that did, are written to w, one Write per
// stripe. If fewer than d shards are usable for a stripe Decode returns an
// error wrapping ErrTooFewShards; stripes already written stay written, so
// the caller must abort the stream it is serving. length 0 writes nothing.
// Decode never closes the readers.
func (c *Codec) Decode(w io.Writer, shards []io.Reader, size, off, length int64) (Report, error) {
	const op = "codec.Decode"
	var rep Report
	if n := c.data + c.parity; len(shards) != n {
		return rep, fmt.Errorf("%s: %d shard readers, want %d: %w", op, len(shards), n, ErrInvalid)
	}
	if size < 0 || off < 0 || length < 0 || off > size-length {
		return rep, fmt.Errorf("%s: range [%d, +%d) of a %d-byte object: %w", op, off, length, size, ErrInvalid)
	}
	if length == 0 {
		return rep, nil
	}
	l := c.Layout(size)
	sp := l.Span(off, length)
	st := c.getStripe()
	defer c.putStripe(st)
	src := newSources(l, shards, sp.FirstStripe, &rep)
	end := off + length
	for s := sp.FirstStripe; s <= sp.LastStripe; s++ {
		base := int64(s) * l.stripeBytes()
		lo := int(max(off-base, 0))
		hi := int(min(end-base, int64(l.StripeLen(s))))
		if err := c.decodeStripe(st, src, s, lo, hi); err != nil {
			return rep, fmt.Errorf("%s: %w", op, err)
		}
		if _, err := w.Write(st.buf[lo:hi]); err != nil {
			return rep, fmt.Errorf("%s: writing stripe %d: %w", op, s, err)
		}
	}
	return rep, nil
}

// decodeStripe leaves verified object bytes [lo, hi) of stripe s in
// st.buf[lo:hi], reading as few shards as it can.
func (c *Codec) decodeStripe(st *stripe, src *sources, s, lo, hi int) error {
	bl := src.l.BlockLen(s)
	clear(st.have)
	clear(st.required)
	first, last := lo/bl, (hi-1)/bl
	good := 0
	for i := first; i <= last; i++ {
		if src.read(i, s, &st.digests[i], st.block(i, bl)) {
			st.have[i] = true
			good++
		} else {
			st.required[i] = true
		}
	}
	if good == last-first+1 {
		return nil
	}
	for i := 0; i < len(st.have) && good < c.data; i++ {
		if i >= first && i <= last {
			continue // already tried
		}
		if src.read(i, s, &st.digests[i], st.block(i, bl)) {
			st.have[i] = true
			good++
		}
	}
	if good < c.data {
		return fmt.Errorf("stripe %d: %d of %d blocks usable: %w", s, good, c.data, ErrTooFewShards)
	}
	return c.reconstruct(st, s, bl)
}

// reconstruct fills the blocks marked required in st from the d blocks
// marked have. The rebuilt blocks land in st.buf, in place.
func (c *Codec) reconstruct(st *stripe, s, bl int) error {
	if c.rs == nil {
		return fmt.Errorf("stripe %d: no parity: %w", s, ErrTooFewShards)
	}
	for i := range st.shards {
		b := st.block(i, bl)
		if !st.have[i] {
			b = b[:0] // missing; Reed-Solomon rebuilds into its capacity
		}
		st.shards[i] = b
	}
	if err := c.rs.ReconstructSome(st.shards, st.required); err != nil {
		return fmt.Errorf("stripe %d: reed-solomon: %w", s, err)
	}
	return nil
}

// sources reads verified frames from shard streams that all start at the
// frame of the same stripe. Each stream is advanced lazily, only when a
// block of it is wanted; a stream that fails once is never read again.
type sources struct {
	l      Layout
	r      []io.Reader
	pos    []int // stripe whose frame r[i] is positioned at
	failed []bool
	report *Report
}

func newSources(l Layout, r []io.Reader, first int, report *Report) *sources {
	src := &sources{
		l:      l,
		r:      r,
		pos:    make([]int, len(r)),
		failed: make([]bool, len(r)),
		report: report,
	}
	for i := range src.pos {
		src.pos[i] = first
	}
	return src
}

// read reads shard i's frame of stripe s into d and block (of the stripe's
// block length) and verifies it. On failure it records the shard in the
// report, drops it and returns false.
func (src *sources) read(i, s int, d *Digest, block []byte) bool {
	if src.failed[i] {
		return false
	}
	r := src.r[i]
	if r == nil {
		return src.fail(i, s, ErrMissing)
	}
	if err := src.advance(i, s); err != nil {
		return src.fail(i, s, err)
	}
	if _, err := io.ReadFull(r, d[:]); err != nil {
		return src.fail(i, s, shortErr(err))
	}
	if _, err := io.ReadFull(r, block); err != nil {
		return src.fail(i, s, shortErr(err))
	}
	src.pos[i] = s + 1
	if Digest(blake3.Sum256(block)) != *d {
		return src.fail(i, s, ErrCorrupt)
	}
	return true
}

// advance skips r[i] forward to the frame of stripe s. Every frame before
// s is a full one.
func (src *sources) advance(i, s int) error {
	skip := int64(s-src.pos[i]) * src.l.frameBytes()
	if skip == 0 {
		return nil
	}
	r := src.r[i]
	if sk, ok := r.(io.Seeker); ok {
		if _, err := sk.Seek(skip, io.SeekCurrent); err != nil {
			return fmt.Errorf("skipping %d bytes: %w", skip, err)
		}
	} else if _, err := io.CopyN(io.Discard, r, skip); err != nil {
		return shortErr(err)
	}
	src.pos[i] = s
	return nil
}

func (src *sources) fail(i, s int, err error) bool {
	src.failed[i] = true
	src.report.Failed = append(src.report.Failed, &ShardError{Shard: i, Block: s, Err: err})
	return false
}

// shortErr maps the ends of a stream to ErrShortShard and keeps other errors.
func shortErr(err error) error {
	if errorsIsEOF(err) {
		return ErrShortShard
	}
	return err
}
