package codec

import (
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/reedsolomon"
	"github.com/zeebo/blake3"
)

// FormatVersion is the shard format this package writes. It is stored in
// object metadata, never renumbered.
const FormatVersion = 1

// DigestSize is the size of a block digest and of a root digest.
const DigestSize = 32

// DefaultBlockSize is the default shard block size B.
const DefaultBlockSize = 256 << 10

// Limits on parameters.
const (
	MinData, MaxData     = 1, 16
	MinParity, MaxParity = 0, 8
	MinBlockSize         = 4 << 10
	MaxBlockSize         = 16 << 20
)

// Sentinel errors. Wrapped errors (ShardError) unwrap to these.
var (
	ErrCorrupt      = errors.New("codec: block digest mismatch")
	ErrTooFewShards = errors.New("codec: too few shards to decode")
	ErrInvalid      = errors.New("codec: invalid parameters")
	ErrShortShard   = errors.New("codec: shard stream ended early")
	ErrMissing      = errors.New("codec: shard missing") // a nil reader that was needed
)

// ShardError says which shard (and block, i.e. stripe index; -1 if not known)
// failed and why. It unwraps to the cause (ErrCorrupt, ErrShortShard, an I/O
// error...).
type ShardError struct {
	Shard int
	Block int
	Err   error
}

func (e *ShardError) Error() string {
	return fmt.Sprintf("codec: shard %d block %d: %v", e.Shard, e.Block, e.Err)
}

func (e *ShardError) Unwrap() error { return e.Err }

// Digest is a blake3-256 digest.
type Digest [DigestSize]byte

// Layout is the pure arithmetic of an object's stripes and shard frames.
// Stripe s covers object bytes [s*D*B, min((s+1)*D*B, Size)). Every stripe
// but the last is D*B bytes; the last holds the remainder and its shard
// blocks are ceil(rem/D) bytes (zero padded), so small objects stay small.
// A zero-size object has no stripes and empty shards. Methods other than
// Validate assume a layout that Validate accepts.
type Layout struct {
	Data      int
	Parity    int
	BlockSize int
	Size      int64
}

// Layout's methods are in layout.go.

// Encoded is the result of Encode.
type Encoded struct {
	Size  int64    // bytes read from the input
	Roots []Digest // root digest per shard (valid for every shard, failed or not)
	// ShardErr[i] is non-nil if writing shard i failed; Encode stops writing
	// to that shard and carries on with the others.
	ShardErr []error
}

// Report lists the shards Decode or Rebuild found missing, unreadable or
// corrupt, in the order they were found, for repair hints. A shard appears
// at most once per call; Block is the stripe at which it was dropped.
type Report struct {
	Failed []*ShardError
}

// Option configures a Codec.
type Option func(*options)

type options struct {
	blockSize int
}

// WithBlockSize sets the shard block size B (default DefaultBlockSize). It
// must be within [MinBlockSize, MaxBlockSize]; New reports it otherwise.
func WithBlockSize(n int) Option {
	return func(o *options) { o.blockSize = n }
}

// Codec encodes and decodes objects for one (d, p, B). A Codec is safe for
// concurrent use.
type Codec struct {
	data, parity, blockSize int
	rs                      reedsolomon.Encoder // nil when parity is 0
	pool                    sync.Pool           // of *stripe
}

// stripe is the working memory of one call: n blocks of up to B bytes laid
// out back to back, so that the data blocks of a stripe are also the
// stripe's object bytes, in order.
type stripe struct {
	buf      []byte   // n*B
	shards   [][]byte // per-stripe views of buf handed to Reed-Solomon
	digests  []Digest // per shard, for the current stripe
	have     []bool   // per shard: block of the current stripe is present
	required []bool   // per shard: block must be reconstructed
	// roots hash each shard's block digests into its root. A Hasher is
	// about 9 KiB: made per call, they were a fifth of the bytes a 4 KiB
	// PUT allocates.
	roots []*blake3.Hasher
}

// New returns a Codec for data+parity shards. The error wraps ErrInvalid.
func New(data, parity int, opts ...Option) (*Codec, error) {
	const op = "codec.New"
	o := options{blockSize: DefaultBlockSize}
	for _, opt := range opts {
		opt(&o)
	}
	l := Layout{Data: data, Parity: parity, BlockSize: o.blockSize}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	c := &Codec{data: data, parity: parity, blockSize: o.blockSize}
	if parity > 0 {
		rs, err := reedsolomon.New(data, parity, reedsolomon.WithAutoGoroutines(o.blockSize))
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %w", op, ErrInvalid, err)
		}
		c.rs = rs
	}
	n := data + parity
	c.pool.New = func() any {
		st := &stripe{
			buf:      make([]byte, n*o.blockSize),
			shards:   make([][]byte, n),
			digests:  make([]Digest, n),
			have:     make([]bool, n),
			required: make([]bool, n),
			roots:    make([]*blake3.Hasher, n),
		}
		for i := range st.roots {
			st.roots[i] = blake3.New()
		}
		return st
	}
	return c, nil
}

// Data returns d, the number of data shards.
func (c *Codec) Data() int { return c.data }

// Parity returns p, the number of parity shards.
func (c *Codec) Parity() int { return c.parity }

// BlockSize returns the shard block size B.
func (c *Codec) BlockSize() int { return c.blockSize }

// Layout returns the layout of an object of the given size under c.
func (c *Codec) Layout(size int64) Layout {
	return Layout{Data: c.data, Parity: c.parity, BlockSize: c.blockSize, Size: size}
}

// block returns shard i's block of length bl inside st.buf, with its capacity
// capped so that Reed-Solomon can reconstruct into a zero-length view.
func (st *stripe) block(i, bl int) []byte {
	return st.buf[i*bl : (i+1)*bl : (i+1)*bl]
}

func (c *Codec) getStripe() *stripe   { return c.pool.Get().(*stripe) }
func (c *Codec) putStripe(st *stripe) { c.pool.Put(st) }
