// Package codec turns one byte stream into d+p framed Reed-Solomon shard
// streams and back. It owns the durable shard format: a shard is a sequence
// of frames [blake3-256(block)][block], one frame per stripe; the shard's
// root digest is blake3 over the concatenated block digests.
//
// codec is pure: no network, no disk, no clocks, and it imports no other
// package of the project. Every byte it hands to a caller of Decode has
// passed its block digest.
package codec

import (
	"errors"
	"fmt"
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
// A zero-size object has no stripes and empty shards.
type Layout struct {
	Data      int
	Parity    int
	BlockSize int
	Size      int64
}

// Stripes, BlockLen, ShardSize, FrameOffset and Span are implemented in layout.go.

// Encoded is the result of Encode.
type Encoded struct {
	Size  int64    // bytes read from the input
	Roots []Digest // root digest per shard (valid for every shard, failed or not)
	// ShardErr[i] is non-nil if writing shard i failed; Encode stops writing
	// to that shard and carries on with the others.
	ShardErr []error
}

// Report lists the shards Decode found missing or corrupt, for repair hints.
type Report struct {
	Failed []*ShardError
}
