// Package codec turns one byte stream into d+p framed Reed-Solomon shard
// streams and back. It owns the durable shard format.
//
// # Stripes
//
// An object of Size bytes is cut into stripes of d*B bytes (B is the shard
// block size, DefaultBlockSize unless configured). Stripe s is split into d
// data blocks, the consecutive runs of its bytes, and Reed-Solomon adds p
// parity blocks of the same length. Every stripe but the last has blocks of
// B bytes; the last stripe's blocks are ceil(rem/d) bytes, zero padded, so a
// small object yields small shards. Layout holds this arithmetic.
//
// # Frame format (FormatVersion 1)
//
// A shard stream is the concatenation of one frame per stripe, with no
// header and no trailer:
//
//	frame  = digest block
//	digest = blake3-256(block)          32 bytes
//	block  = Layout.BlockLen(s) bytes
//
// The shard's root digest is blake3-256 over the concatenation of its block
// digests (RootOf). The root is kept in object metadata, so both a rotted
// block and a block rewritten together with a matching digest are caught.
//
// The format version is not written into the shards; it lives in object
// metadata next to Size, d, p, B and the roots. A shard cannot be parsed
// without those anyway (the block lengths follow from them), and keeping the
// stream headerless makes frame offsets pure arithmetic: a range read seeks
// straight to s*(32+B) in every shard. One version field in metadata cannot
// disagree with copies of itself in d+p files. A new format gets a new
// version number; old numbers are never reused.
//
// # Reading
//
// Decode reads only the data shards whose blocks hold requested bytes, so
// the healthy path is a copy plus a digest per block, with no Reed-Solomon.
// A shard that is missing, short, unreadable or corrupt is dropped for the
// rest of the call and other shards, remaining data shards first, then
// parity, fill in, only as many as needed to get d good blocks. Every
// failure is returned in a Report so that the caller can queue a repair.
//
// # Guarantees
//
// Every byte Decode writes has passed its block digest or was reconstructed
// from blocks that did. Reed-Solomon itself verifies nothing, so a block that
// fails its digest is treated exactly like a missing one. Memory per call is
// bounded by one stripe buffer (taken from a per-Codec sync.Pool) whatever
// the object size.
//
// codec is pure: no network, no disk, no clocks, no contexts, and it imports
// no other package of the project. It must never write unverified bytes to a
// caller or decide where shards live.
package codec
