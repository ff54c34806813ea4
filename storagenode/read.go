package storagenode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// ReadShard returns framed bytes [off, off+length) of the node's shard
// index shard of version (length -1: to the end), as they lie, not
// verified: see openShard for which shard is served and
// client.Client.ReadShard for the contract, errors included. The caller
// closes the stream; read errors in it are kerr.Transient. Shard reads
// are never fenced.
func (n *Node) ReadShard(ctx context.Context, bucket, key, version string, shard int, off, length int64) (io.ReadCloser, error) {
	sr, err := n.readShard(ctx, bucket, key, version, shard, off, length)
	if err != nil {
		return nil, err
	}
	return sr, nil
}

// readShard is ReadShard, returning the open shard.
func (n *Node) readShard(ctx context.Context, bucket, key, version string, shard int, off, length int64) (*shardReader, error) {
	if err := n.admit(ctx, false); err != nil {
		return nil, err
	}
	f, start, count, err := n.openShard(bucket, key, version, shard, off, length)
	if err != nil {
		return nil, n.settle(err)
	}
	return &shardReader{f: f, start: start, count: count}, nil
}

// shardReader reads count bytes of f from start.
type shardReader struct {
	f            io.ReadSeekCloser
	start, count int64
	r            io.Reader // nil until the first Read
}

func (s *shardReader) Read(p []byte) (int, error) {
	const op = "storagenode.ReadShard"
	if s.r == nil {
		if _, err := s.f.Seek(s.start, io.SeekStart); err != nil {
			return 0, kerr.E(op, kerr.Transient, err)
		}
		s.r = io.LimitReader(s.f, s.count)
	}
	k, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = kerr.E(op, kerr.Transient, err)
	}
	return k, err
}

func (s *shardReader) Close() error { return s.f.Close() }

// openShard opens the node's shard of an exact version (see readableShard),
// on disk or inline, and clamps [off, off+length) (length -1: to the end)
// to it: it returns the shard, the start offset and the number of bytes to
// send. The shard must be index want: a node's index of a version changes
// when the rebalancer swaps shards, and another index's frames would pass
// every check a reader can make, so a mismatch is refused with
// client.ErrWrongShard.
func (n *Node) openShard(bucket, key, version string, want int, off, length int64) (io.ReadSeekCloser, int64, int64, error) {
	const op = "storagenode.ReadShard"
	if err := client.CheckObject(bucket, key, version); err != nil {
		return nil, 0, 0, kerr.E(op, err)
	}
	if err := client.CheckShard(want); err != nil {
		return nil, 0, 0, kerr.E(op, err)
	}
	if off < 0 || length < -1 {
		return nil, 0, 0, kerr.E(op, kerr.Invalid, fmt.Errorf("bad range off=%d len=%d", off, length))
	}
	shard, err := n.readableShard(bucket, key, version)
	if err != nil {
		return nil, 0, 0, err
	}
	if shard != want {
		return nil, 0, 0, kerr.E(op, kerr.NotExist, fmt.Errorf("%w: shard %d of version %s, not %d", client.ErrWrongShard, shard, version, want))
	}
	switch q, err := n.db.QuarantinedShard(bucket, key, version, shard); {
	case err != nil:
		return nil, 0, 0, kerr.E(op, err)
	case q != nil:
		return nil, 0, 0, kerr.E(op, kerr.Corrupt, fmt.Errorf("shard %d is quarantined: %s", shard, q.Reason))
	}
	// A commit (with no grace) or Sweep may remove the file between the
	// lookup and the open; then the version is no longer readable here and
	// NotExist is right.
	f, size, err := n.openData(shardFile(bucket, key, version, shard))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, 0, kerr.E(op, kerr.NotExist, fmt.Errorf("shard %d file missing", shard))
	}
	if err != nil {
		return nil, 0, 0, kerr.E(op, kerr.Internal, err)
	}
	start := min(off, size)
	end := size
	if length >= 0 && length < size-start {
		end = start + length
	}
	return f, start, end - start, nil
}

// readableShard returns the index of the node's shard of an exact version:
// the committed record's, or, if a newer commit superseded the version, the
// superseded shard's while its grace lasts (see Config.SupersededGrace).
// Only reads and Stat (KeyState.Previous) see superseded shards; List and
// the verifier know the committed record alone.
func (n *Node) readableShard(bucket, key, version string) (int, error) {
	const op = "storagenode.ReadShard"
	rec, err := n.db.Record(bucket, key)
	if err != nil {
		return 0, kerr.E(op, err)
	}
	if rec != nil && rec.Version == version {
		if rec.Shard < 0 {
			return 0, kerr.E(op, kerr.NotExist, "version is a delete marker")
		}
		return rec.Shard, nil
	}
	// The note is written in the commit's own transaction, so a version
	// is always either committed or noted until its grace ends.
	prefix := versionFilePrefix(bucket, key, version)
	g, err := n.db.SupersededFile(prefix)
	if err != nil {
		return 0, kerr.E(op, err)
	}
	if g != nil {
		if shard, err := strconv.Atoi(strings.TrimPrefix(g.File, prefix)); err == nil {
			return shard, nil
		}
	}
	switch shard, ok, err := n.noncurrentShard(bucket, key, version); {
	case err != nil:
		return 0, kerr.E(op, err)
	case ok:
		return shard, nil
	}
	if rec == nil {
		return 0, kerr.E(op, kerr.NotExist, "key has no committed version")
	}
	return 0, kerr.E(op, kerr.NotExist, fmt.Errorf("committed version is %s, not %s", rec.Version, version))
}

// Stat returns what the node knows about a key (see stat). A key the node
// has never seen gives an empty KeyState and a nil error. The call is
// fenced (see admit).
func (n *Node) Stat(ctx context.Context, bucket, key string) (client.KeyState, error) {
	return n.StatData(ctx, bucket, key, 0, false)
}

// StatData is Stat that also returns, in KeyState.Data, the node's
// committed shard of the key if it is a data shard (or, with parity, any
// shard) of at most max bytes (see smallShard); max <= 0 asks for none.
func (n *Node) StatData(ctx context.Context, bucket, key string, max int64, parity bool) (client.KeyState, error) {
	if err := n.admit(ctx, true); err != nil {
		return client.KeyState{}, err
	}
	ks, err := n.stat(bucket, key)
	if err != nil {
		return client.KeyState{}, n.settle(err)
	}
	if max > 0 && ks.Committed != nil {
		ks.Data = n.smallShard(*ks.Committed, max, parity)
	}
	return ks, nil
}

// smallShard returns the whole shard stream of rec if rec holds a data
// shard (or, with parity, any shard) of at most max bytes that the node
// can read, else nil. The record
// may be superseded meanwhile: the path names its exact version, which a
// grace keeps readable, or the shard is simply not returned.
func (n *Node) smallShard(rec client.Record, max int64, parity bool) []byte {
	if rec.Deleted || len(rec.Parts) > 0 || rec.Shard < 0 || rec.Shard >= rec.Data && !parity {
		return nil
	}
	if q, err := n.db.QuarantinedShard(rec.Bucket, rec.Key, rec.Version, rec.Shard); err != nil || q != nil {
		return nil
	}
	rel := shardFile(rec.Bucket, rec.Key, rec.Version, rec.Shard)
	switch b, ok, err := n.db.Blob(rel); {
	case err != nil:
		return nil
	case ok && !b.Packed && int64(len(b.Data)) <= max:
		return b.Data
	case ok && b.Packed && b.Loc.Len <= max:
		// Through the pack's shared descriptor: no open per read.
		r, err := n.packs.Reader(b.Loc)
		if err != nil {
			return nil
		}
		data := make([]byte, b.Loc.Len)
		if _, err := r.ReadAt(data, 0); err != nil {
			return nil
		}
		return data
	case ok:
		return nil
	}
	f, size, err := n.openData(rel)
	if err != nil {
		return nil
	}
	defer f.Close()
	if size > max {
		return nil
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil
	}
	return data
}

// stat returns the key's committed record, the staged shards of versions
// newer than it, by version then shard, and the superseded record whose
// shard the node still holds, if any.
func (n *Node) stat(bucket, key string) (client.KeyState, error) {
	const op = "storagenode.Stat"
	if err := client.CheckKey(bucket, key); err != nil {
		return client.KeyState{}, kerr.E(op, err)
	}
	// One snapshot: a commit in between cannot make a version look both
	// committed and staged, or neither.
	rec, staged, err := n.db.Key(bucket, key)
	if err != nil {
		return client.KeyState{}, kerr.E(op, err)
	}
	ks := client.KeyState{Committed: rec}
	// Read after the snapshot: a commit in between can only make the
	// record reported older than the committed one, still a version
	// whose shard this node holds.
	prev, err := n.db.Previous(bucket, key)
	if err != nil {
		return client.KeyState{}, kerr.E(op, err)
	}
	if prev != nil && rec != nil && prev.Version < rec.Version {
		ks.Previous = prev
	}
	if err := n.statVersions(&ks); err != nil {
		return client.KeyState{}, kerr.E(op, err)
	}
	for _, s := range staged {
		if rec == nil || s.Version > rec.Version {
			ks.Staged = append(ks.Staged, s.Ref())
		}
	}
	slices.SortFunc(ks.Staged, func(a, b client.StagedRef) int {
		if c := strings.Compare(a.Version, b.Version); c != 0 {
			return c
		}
		return a.Shard - b.Shard
	})
	return ks, nil
}

// List returns up to limit committed records of bucket (<= 0 means
// client.DefaultListLen, capped at client.MaxListLen), one per key, its
// newest, delete markers included, for keys having prefix and greater
// than after, in key order. The call is fenced (see admit).
func (n *Node) List(ctx context.Context, bucket, prefix, after string, limit int) (client.ListPage, error) {
	const op = "storagenode.List"
	if err := n.admit(ctx, true); err != nil {
		return client.ListPage{}, err
	}
	if err := client.CheckBucket(bucket); err != nil {
		return client.ListPage{}, kerr.E(op, err)
	}
	recs, truncated, err := n.db.List(bucket, prefix, after, client.ListLimit(limit))
	if err != nil {
		return client.ListPage{}, n.settle(kerr.E(op, err))
	}
	return client.ListPage{Records: recs, Truncated: truncated}, nil
}
