package codec

import (
	"errors"
	"fmt"
	"io"

	"github.com/zeebo/blake3"
)

// Encode reads r to EOF and writes, for each stripe, one frame
// [blake3-256(block)][block] to every shard writer. shards has length d+p;
// a nil writer means "compute but do not write that shard".
//
// Writers are written one at a time, in shard order, from the calling
// goroutine; callers that want slow writers to overlap wrap them (io.Pipe,
// bufio). A writer that fails is recorded in Encoded.ShardErr as a
// *ShardError and not written again; Encode carries on with the others so
// that the caller can decide whether enough shards were stored. Roots are
// computed for every shard, written or not.
//
// Encode returns an error only if reading r fails (the reader's error is
// wrapped, so errors.Is still matches it) or shards has the wrong length
// (ErrInvalid); the Encoded is then zero. Encode never closes the writers.
func (c *Codec) Encode(r io.Reader, shards []io.Writer) (Encoded, error) {
	const op = "codec.Encode"
	n := c.data + c.parity
	if len(shards) != n {
		return Encoded{}, fmt.Errorf("%s: %d shard writers, want %d: %w", op, len(shards), n, ErrInvalid)
	}
	enc := Encoded{Roots: make([]Digest, n), ShardErr: make([]error, n)}
	st := c.getStripe()
	defer c.putStripe(st)
	roots := st.roots
	for _, h := range roots {
		h.Reset()
	}
	full := c.data * c.blockSize
	for s := 0; ; s++ {
		m, err := fill(r, st.buf[:full])
		if err != nil && err != io.EOF {
			return Encoded{}, fmt.Errorf("%s: reading input at byte %d: %w", op, enc.Size+int64(m), err)
		}
		enc.Size += int64(m)
		if m > 0 {
			if err := c.encodeStripe(st, s, m, shards, roots, enc.ShardErr); err != nil {
				return Encoded{}, fmt.Errorf("%s: %w", op, err)
			}
		}
		if err == io.EOF {
			break
		}
	}
	for i, h := range roots {
		h.Sum(enc.Roots[i][:0])
	}
	return enc, nil
}

// encodeStripe frames stripe s, whose m object bytes are at the start of
// st.buf, and writes it to the shards that have not failed yet.
func (c *Codec) encodeStripe(st *stripe, s, m int, shards []io.Writer, roots []*blake3.Hasher, shardErr []error) error {
	bl := (m + c.data - 1) / c.data
	clear(st.buf[m : c.data*bl]) // zero padding of a short last stripe
	for i := range st.shards {
		st.shards[i] = st.block(i, bl)
	}
	if c.rs != nil {
		if err := c.rs.Encode(st.shards); err != nil {
			return fmt.Errorf("stripe %d: reed-solomon: %w", s, err)
		}
	}
	for i, b := range st.shards {
		d := &st.digests[i] // in st, not on the stack: Write would make it escape
		*d = blake3.Sum256(b)
		roots[i].Write(d[:])
		w := shards[i]
		if w == nil || shardErr[i] != nil {
			continue
		}
		if err := writeFrame(w, d, b); err != nil {
			shardErr[i] = &ShardError{Shard: i, Block: s, Err: err}
		}
	}
	return nil
}

// maxEmptyReads bounds how many (0, nil) reads fill tolerates in a row, as
// bufio does, so that a broken reader cannot spin forever.
const maxEmptyReads = 100

// fill reads into buf until it is full or r ends. It returns the number of
// bytes read and io.EOF if r ended (possibly after some bytes), nil if buf
// was filled, or r's error. Unlike io.ReadFull it never turns an error into
// io.ErrUnexpectedEOF, so a reader's own ErrUnexpectedEOF stays an error.
func fill(r io.Reader, buf []byte) (int, error) {
	n, empty := 0, 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		switch {
		case err == io.EOF:
			return n, io.EOF
		case err != nil:
			return n, err
		case m == 0:
			if empty++; empty >= maxEmptyReads {
				return n, io.ErrNoProgress
			}
		default:
			empty = 0
		}
	}
	return n, nil
}

// errorsIsEOF reports whether err means a stream ended early.
func errorsIsEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
