package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// The content of an object is a pure function of (seed, key, size), so a
// GET can be checked byte for byte against what the PUT sent without any
// record of the PUT: regenerate and compare. Generating must cost far less
// than the store's own work (client and server share the CPU on a test box),
// so content is drawn from a 1 MiB pool of random words made once per seed:
// word w of an object is pool[(h+w) mod pool] XOR a tweak that changes every
// 4 KiB, where h hashes (seed, key, size). That runs at memory speed, two
// objects differ in every block, and no block repeats within an object, so
// neither compression nor deduplication on the server can flatter it.
const (
	poolWords  = 1 << 17 // 1 MiB of uint64
	poolMask   = poolWords - 1
	tweakShift = 9 // a new tweak every 512 words = 4 KiB
)

// verifyChunk is how much of a body Verify compares at a time.
const verifyChunk = 64 << 10

// ErrMismatch means a body differs from the content that was written.
var ErrMismatch = errors.New("bench: content mismatch")

// MismatchError says where a body first differs from its expected content.
// It unwraps to ErrMismatch.
type MismatchError struct {
	Key    string
	Offset int64 // first differing byte (for a wrong length: the first byte one body has and the other lacks)
	Size   int64 // expected size
	Got    int64 // bytes received, when the length is wrong; -1 otherwise
}

func (e *MismatchError) Error() string {
	if e.Got >= 0 {
		return fmt.Sprintf("bench: %s: body is %d bytes, want %d", e.Key, e.Got, e.Size)
	}
	return fmt.Sprintf("bench: %s: content differs at byte %d of %d", e.Key, e.Offset, e.Size)
}

func (e *MismatchError) Unwrap() error { return ErrMismatch }

// Source generates the content of every object of a run from its seed.
// A Source is immutable after NewSource and safe for concurrent use.
type Source struct {
	seed    uint64
	pool    []uint64
	scratch sync.Pool // of *[2 * verifyChunk]byte, for Verify
}

// NewSource returns the content source for seed. Runs with the same seed
// generate the same bytes for the same key and size.
func NewSource(seed uint64) *Source {
	var key [32]byte
	copy(key[:], "kintsugi-bench-content\x00")
	binary.LittleEndian.PutUint64(key[24:], seed)
	rng := rand.NewChaCha8(key)
	s := &Source{seed: seed, pool: make([]uint64, poolWords)}
	for i := range s.pool {
		s.pool[i] = rng.Uint64()
	}
	s.scratch.New = func() any { return new([2 * verifyChunk]byte) }
	return s
}

// Seed returns the seed the source was made with.
func (s *Source) Seed() uint64 { return s.seed }

// Object returns the content of the object named key with size bytes.
func (s *Source) Object(key string, size int64) Object {
	d := xxhash.New()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], s.seed)
	d.Write(b[:])
	d.WriteString(strconv.FormatInt(size, 10))
	d.WriteString("\x00")
	d.WriteString(key)
	return Object{src: s, key: key, h: d.Sum64(), size: size}
}

// Object is the content of one object: an io.ReaderAt over bytes that are
// computed, never stored. The zero Object is empty.
type Object struct {
	src  *Source
	key  string
	h    uint64
	size int64
}

var _ io.ReaderAt = Object{}

// Size returns the object's length in bytes.
func (o Object) Size() int64 { return o.size }

// Key returns the key the content was derived from.
func (o Object) Key() string { return o.key }

// ReadAt fills p with the content at off, as io.ReaderAt specifies.
func (o Object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("bench: negative offset")
	}
	if off >= o.size {
		return 0, io.EOF
	}
	n := len(p)
	if rem := o.size - off; int64(n) > rem {
		n = int(rem)
	}
	o.fill(p[:n], off)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Reader returns a fresh reader over the whole content. It seeks, as SDKs
// want for signing and for retries.
func (o Object) Reader() *io.SectionReader { return io.NewSectionReader(o, 0, o.size) }

// Verify reads r to its end and reports whether it carried exactly the
// object's content: nil if so, a *MismatchError if the bytes or the length
// differ, or r's own error. It returns the number of bytes read.
func (o Object) Verify(r io.Reader) (int64, error) {
	buf := o.src.scratch.Get().(*[2 * verifyChunk]byte)
	defer o.src.scratch.Put(buf)
	got, want := buf[:verifyChunk], buf[verifyChunk:]
	var off int64
	for {
		n, err := io.ReadFull(r, got)
		if n > 0 {
			if off+int64(n) > o.size {
				// Count the rest so the error says how long the body was.
				rest, _ := io.Copy(io.Discard, r)
				total := off + int64(n) + rest
				return total, &MismatchError{Key: o.key, Offset: o.size, Size: o.size, Got: total}
			}
			o.fill(want[:n], off)
			if !bytes.Equal(got[:n], want[:n]) {
				i := 0
				for got[i] == want[i] {
					i++
				}
				io.Copy(io.Discard, r)
				return off + int64(n), &MismatchError{Key: o.key, Offset: off + int64(i), Size: o.size, Got: -1}
			}
			off += int64(n)
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			if off != o.size {
				return off, &MismatchError{Key: o.key, Offset: off, Size: o.size, Got: off}
			}
			return off, nil
		case err != nil:
			return off, err
		}
	}
}

// fill writes the content at [off, off+len(p)) into p.
// REQUIRES: off >= 0.
func (o Object) fill(p []byte, off int64) {
	pool := o.src.pool
	var tmp [8]byte
	// Unaligned head: the bytes of one word, from the middle.
	if r := off % 8; r != 0 && len(p) > 0 {
		binary.LittleEndian.PutUint64(tmp[:], o.word(uint64(off/8)))
		n := copy(p, tmp[r:])
		p, off = p[n:], off+int64(n)
	}
	w := uint64(off / 8)
	for len(p) >= 8 {
		// One tweak per 4 KiB run of words; the inner loop is load, xor,
		// store.
		t := o.tweak(w >> tweakShift)
		end := (w>>tweakShift + 1) << tweakShift
		words := min(end-w, uint64(len(p)/8))
		for i := uint64(0); i < words; i++ {
			binary.LittleEndian.PutUint64(p[8*i:], pool[(o.h+w+i)&poolMask]^t)
		}
		p = p[8*words:]
		w += words
	}
	if len(p) > 0 {
		binary.LittleEndian.PutUint64(tmp[:], o.word(w))
		copy(p, tmp[:])
	}
}

func (o Object) word(w uint64) uint64 {
	return o.src.pool[(o.h+w)&poolMask] ^ o.tweak(w>>tweakShift)
}

// tweak is the splitmix64 finalizer of (h, block): distinct, well mixed
// words for every 4 KiB block of every object.
func (o Object) tweak(block uint64) uint64 {
	z := o.h + (block+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
