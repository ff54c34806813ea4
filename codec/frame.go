package codec

import (
	"encoding/hex"
	"fmt"
	"io"

	"github.com/zeebo/blake3"
)

// String returns d in lower-case hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// ParseDigest parses the hex form written by Digest.String. The error wraps
// ErrInvalid.
func ParseDigest(s string) (Digest, error) {
	const op = "codec.ParseDigest"
	var d Digest
	if len(s) != 2*DigestSize {
		return d, fmt.Errorf("%s: %d hex digits, want %d: %w", op, len(s), 2*DigestSize, ErrInvalid)
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return Digest{}, fmt.Errorf("%s: %w: %w", op, ErrInvalid, err)
	}
	return d, nil
}

// RootOf returns a shard's root digest: blake3-256 over the concatenation
// of its block digests, in stripe order.
func RootOf(digests []Digest) Digest {
	h := blake3.New()
	for _, d := range digests {
		h.Write(d[:])
	}
	var root Digest
	h.Sum(root[:0])
	return root
}

// FramedRoot returns the root digest of a whole framed shard stream held
// in memory, from the digests in its frames alone: it does not hash the
// blocks. A reader that checks every block against its frame as it decodes
// (Decode does) and the root against the object's metadata first knows the
// stream is the shard it asked for, not a valid shard of another version.
// It fails with ErrCorrupt if b is not exactly ShardSize long.
func FramedRoot(b []byte, l Layout) (Digest, error) {
	if int64(len(b)) != l.ShardSize() {
		return Digest{}, fmt.Errorf("codec.FramedRoot: %d bytes, want %d: %w", len(b), l.ShardSize(), ErrCorrupt)
	}
	// The digests side by side and one Sum256: a Hasher is about 9 KiB,
	// and a GET checks a few of these.
	ds := make([]byte, 0, l.Stripes()*DigestSize)
	for s := range l.Stripes() {
		off := l.FrameOffset(s)
		ds = append(ds, b[off:off+DigestSize]...)
	}
	return blake3.Sum256(ds), nil
}

// verifyChunk is how much of a block VerifyShard hashes at a time; it keeps
// its memory independent of the block size.
const verifyChunk = 32 << 10

// VerifyShard reads one full framed shard stream of shard index shard of an
// object with layout l, checks every block digest, that nothing follows the
// last frame and that the root equals want. It returns nil, a *ShardError
// wrapping ErrCorrupt, ErrShortShard or the reader's error (Block is the
// stripe index, -1 for a root mismatch), or an error wrapping ErrInvalid for
// a bad layout or shard index. Memory use does not depend on the block size.
func VerifyShard(r io.Reader, l Layout, shard int, want Digest) error {
	const op = "codec.VerifyShard"
	if err := l.Validate(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if shard < 0 || shard >= l.Shards() {
		return fmt.Errorf("%s: shard %d of %d: %w", op, shard, l.Shards(), ErrInvalid)
	}
	fail := func(s int, err error) error { return &ShardError{Shard: shard, Block: s, Err: err} }
	// Sized to the largest block actually present: a small object's
	// shards are far shorter than B, and scrubs verify many of them.
	buf := make([]byte, max(min(verifyChunk, l.BlockLen(0)), 1))
	h := blake3.New()
	root := blake3.New()
	var d, got Digest
	for s := range l.Stripes() {
		if _, err := io.ReadFull(r, d[:]); err != nil {
			return fail(s, shortErr(err))
		}
		h.Reset()
		for rem := l.BlockLen(s); rem > 0; {
			k := min(rem, len(buf))
			if _, err := io.ReadFull(r, buf[:k]); err != nil {
				return fail(s, shortErr(err))
			}
			h.Write(buf[:k])
			rem -= k
		}
		if h.Sum(got[:0]); got != d {
			return fail(s, ErrCorrupt)
		}
		root.Write(d[:])
	}
	switch k, err := io.ReadFull(r, buf[:1]); {
	case k > 0:
		return fail(l.Stripes(), fmt.Errorf("bytes after the last frame: %w", ErrCorrupt))
	case err != io.EOF:
		return fail(l.Stripes(), err)
	}
	if root.Sum(got[:0]); got != want {
		return fail(-1, fmt.Errorf("root %s, want %s: %w", got, want, ErrCorrupt))
	}
	return nil
}

// FrameReader parses a framed shard stream whose block lengths are known
// only as "B, except a shorter last one", as when a shard arrives before
// its object's size is known. It verifies every block as it goes.
//
// A stream that ends right after a full-length block is indistinguishable
// from one that was cut at a frame boundary; the root digest, compared with
// the one the writer computed, catches that.
type FrameReader struct {
	r     io.Reader
	b     int
	buf   []byte
	block int   // index of the next frame
	err   error // sticky: returned by every later Next
	// The root hashes the block digests. Most shards have a few blocks, so
	// their digests are kept side by side and hashed at once; a Hasher
	// (about 9 KiB, a fifth of what a small stage allocated) is made only
	// for a shard with more than fit here.
	digests [16 * DigestSize]byte
	nd      int // bytes of digests held
	root    *blake3.Hasher
}

// NewFrameReader returns a FrameReader for r with block size blockSize
// (1..MaxBlockSize; Next reports ErrInvalid otherwise). It does not close r.
func NewFrameReader(r io.Reader, blockSize int) *FrameReader {
	return &FrameReader{r: r, b: blockSize}
}

// SetBuffer makes Next read blocks into buf instead of allocating a
// block-size buffer on first use, so that a caller can reuse buffers
// across streams. A buf shorter than the block size is ignored. Call it
// before the first Next; Next's blocks alias buf.
func (f *FrameReader) SetBuffer(buf []byte) {
	if len(buf) >= f.b && f.b >= 1 {
		f.buf = buf[:f.b]
	}
}

// Next returns the next verified block and its digest. The block is valid
// until the next call. At a clean end (after a complete frame) it returns
// io.EOF. A digest mismatch returns a *ShardError wrapping ErrCorrupt; a
// frame cut inside its digest, or a digest with no block after it, returns
// one wrapping ErrShortShard; a read error is returned wrapped in a
// *ShardError. Shard is -1 in these errors: the reader does not know it.
// After an error Next keeps returning it.
func (f *FrameReader) Next() (block []byte, d Digest, err error) {
	if f.err != nil {
		return nil, d, f.err
	}
	if f.b < 1 || f.b > MaxBlockSize {
		f.err = fmt.Errorf("codec.FrameReader: block size %d: %w", f.b, ErrInvalid)
		return nil, d, f.err
	}
	fail := func(err error) ([]byte, Digest, error) {
		f.err = &ShardError{Shard: -1, Block: f.block, Err: err}
		return nil, Digest{}, f.err
	}
	n, err := fill(f.r, d[:])
	switch {
	case err != nil && err != io.EOF:
		return fail(err)
	case n == 0 && err == io.EOF:
		f.err = io.EOF
		return nil, d, io.EOF
	case n < DigestSize:
		return fail(ErrShortShard)
	}
	if f.buf == nil {
		f.buf = make([]byte, f.b)
	}
	n, err = fill(f.r, f.buf)
	switch {
	case err != nil && err != io.EOF:
		return fail(err)
	case n == 0:
		return fail(ErrShortShard)
	}
	block = f.buf[:n]
	if Digest(blake3.Sum256(block)) != d {
		return fail(ErrCorrupt)
	}
	if err == io.EOF {
		// A short block can only be the last one; do not read r past its end.
		f.err = io.EOF
	}
	f.addDigest(d)
	f.block++
	return block, d, nil
}

func (f *FrameReader) addDigest(d Digest) {
	if f.root == nil && f.nd+DigestSize <= len(f.digests) {
		f.nd += copy(f.digests[f.nd:], d[:])
		return
	}
	if f.root == nil {
		f.root = blake3.New()
		f.root.Write(f.digests[:f.nd])
	}
	f.root.Write(d[:])
}

// Root returns the root digest over the blocks Next has returned so far.
func (f *FrameReader) Root() Digest {
	if f.root == nil {
		return blake3.Sum256(f.digests[:f.nd])
	}
	var d Digest
	f.root.Sum(d[:0])
	return d
}
