package codec

import "fmt"

// Validate reports whether l describes a layout this package can encode: d
// in [MinData, MaxData], p in [MinParity, MaxParity], a block size in
// [MinBlockSize, MaxBlockSize] and a non-negative size. The error wraps
// ErrInvalid and names the offending field.
func (l Layout) Validate() error {
	const op = "codec.Layout.Validate"
	switch {
	case l.Data < MinData || l.Data > MaxData:
		return fmt.Errorf("%s: Data %d not in [%d, %d]: %w", op, l.Data, MinData, MaxData, ErrInvalid)
	case l.Parity < MinParity || l.Parity > MaxParity:
		return fmt.Errorf("%s: Parity %d not in [%d, %d]: %w", op, l.Parity, MinParity, MaxParity, ErrInvalid)
	case l.BlockSize < MinBlockSize || l.BlockSize > MaxBlockSize:
		return fmt.Errorf("%s: BlockSize %d not in [%d, %d]: %w", op, l.BlockSize, MinBlockSize, MaxBlockSize, ErrInvalid)
	case l.Size < 0:
		return fmt.Errorf("%s: Size %d is negative: %w", op, l.Size, ErrInvalid)
	}
	return nil
}

// Shards returns d+p, the number of shard streams of the object.
func (l Layout) Shards() int { return l.Data + l.Parity }

// stripeBytes is the number of object bytes in a full stripe.
func (l Layout) stripeBytes() int64 { return int64(l.Data) * int64(l.BlockSize) }

// frameBytes is the length of a full frame: digest and block.
func (l Layout) frameBytes() int64 { return DigestSize + int64(l.BlockSize) }

// Stripes returns the number of stripes, ceil(Size / (d*B)); 0 for an empty
// object.
func (l Layout) Stripes() int {
	sb := l.stripeBytes()
	return int((l.Size + sb - 1) / sb)
}

// StripeLen returns the number of object bytes in stripe s: d*B for every
// stripe but the last, the remainder for the last, 0 for s out of range.
func (l Layout) StripeLen(s int) int {
	n := l.Stripes()
	switch {
	case s < 0 || s >= n:
		return 0
	case s < n-1:
		return int(l.stripeBytes())
	}
	return int(l.Size - int64(s)*l.stripeBytes())
}

// BlockLen returns the length of every shard's block in stripe s: B for a
// full stripe, ceil(rem/d) for a shorter last one, 0 for s out of range.
func (l Layout) BlockLen(s int) int {
	return (l.StripeLen(s) + l.Data - 1) / l.Data
}

// FrameOffset returns the byte offset of stripe s's frame inside any of the
// object's shard streams. Every frame before the last is full, so this is
// s*(DigestSize+B); FrameOffset(Stripes()) is ShardSize().
func (l Layout) FrameOffset(s int) int64 {
	if n := l.Stripes(); s >= n {
		return l.ShardSize()
	}
	return int64(s) * l.frameBytes()
}

// ShardSize returns the total length of one framed shard stream.
func (l Layout) ShardSize() int64 {
	n := l.Stripes()
	if n == 0 {
		return 0
	}
	return int64(n-1)*l.frameBytes() + DigestSize + int64(l.BlockLen(n-1))
}

// Span is the part of an object's shards that a range read needs: the
// stripes covering the range and the byte range [ShardOff, ShardOff+ShardLen)
// of their frames, the same in every shard stream.
type Span struct {
	FirstStripe, LastStripe int
	ShardOff, ShardLen      int64
}

// Span returns the stripes covering object bytes [off, off+length) and the
// matching byte range of every shard stream. Whole frames are included
// because a block can only be verified whole.
//
// REQUIRES: 0 <= off, length > 0, off+length <= l.Size.
func (l Layout) Span(off, length int64) Span {
	sb := l.stripeBytes()
	first := int(off / sb)
	last := int((off + length - 1) / sb)
	start := l.FrameOffset(first)
	return Span{
		FirstStripe: first,
		LastStripe:  last,
		ShardOff:    start,
		ShardLen:    l.FrameOffset(last+1) - start,
	}
}
