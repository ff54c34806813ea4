package codec

import (
	"fmt"
	"io"

	"github.com/zeebo/blake3"
)

// Rebuild regenerates the shards whose dst[i] is non-nil, framed exactly as
// Encode wrote them, from the available src shards (full shard streams from
// offset 0; nil = missing) of an object of the given size. It reads d
// verified blocks per stripe, taking sources in shard order; a source that
// is missing, short or corrupt is dropped and recorded in the Report, as in
// Decode.
//
// It returns the rebuilt shards' roots, indexed by shard (zero for shards
// not rebuilt). With fewer than d usable sources for a stripe the error
// wraps ErrTooFewShards. A failing dst writer stops the call with a
// *ShardError naming it. Frames already written stay written; the caller
// discards partial shards. Rebuild never closes readers or writers.
func (c *Codec) Rebuild(dst []io.Writer, src []io.Reader, size int64) ([]Digest, Report, error) {
	const op = "codec.Rebuild"
	var rep Report
	n := c.data + c.parity
	if len(dst) != n || len(src) != n {
		return nil, rep, fmt.Errorf("%s: %d writers and %d readers, want %d: %w", op, len(dst), len(src), n, ErrInvalid)
	}
	if size < 0 {
		return nil, rep, fmt.Errorf("%s: size %d: %w", op, size, ErrInvalid)
	}
	l := c.Layout(size)
	st := c.getStripe()
	defer c.putStripe(st)
	roots := make([]*blake3.Hasher, n)
	for i, w := range dst {
		if w != nil {
			roots[i] = st.roots[i]
			roots[i].Reset()
		}
	}
	srcs := newSources(l, src, 0, &rep)
	for s := range l.Stripes() {
		bl := l.BlockLen(s)
		clear(st.have)
		clear(st.required)
		good := 0
		for i := 0; i < n && good < c.data; i++ {
			if srcs.read(i, s, &st.digests[i], st.block(i, bl)) {
				st.have[i] = true
				good++
			}
		}
		if good < c.data {
			return nil, rep, fmt.Errorf("%s: stripe %d: %d of %d blocks usable: %w", op, s, good, c.data, ErrTooFewShards)
		}
		missing := false
		for i, w := range dst {
			if w != nil && !st.have[i] {
				st.required[i] = true
				missing = true
			}
		}
		if missing {
			if err := c.reconstruct(st, s, bl); err != nil {
				return nil, rep, fmt.Errorf("%s: %w", op, err)
			}
		}
		for i, w := range dst {
			if w == nil {
				continue
			}
			b := st.block(i, bl)
			d := &st.digests[i]
			if !st.have[i] {
				*d = blake3.Sum256(b)
			}
			roots[i].Write(d[:])
			if err := writeFrame(w, d, b); err != nil {
				return nil, rep, fmt.Errorf("%s: %w", op, &ShardError{Shard: i, Block: s, Err: err})
			}
		}
	}
	out := make([]Digest, n)
	for i, h := range roots {
		if h != nil {
			h.Sum(out[i][:0])
		}
	}
	return out, rep, nil
}

func writeFrame(w io.Writer, d *Digest, block []byte) error {
	if _, err := w.Write(d[:]); err != nil {
		return err
	}
	_, err := w.Write(block)
	return err
}
