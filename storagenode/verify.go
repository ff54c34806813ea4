package storagenode

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/throttle"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/meta"
)

// quarantineDir holds shard files that failed verification, kept for
// inspection until the shard is repaired or its version superseded.
const quarantineDir = "quarantine"

// quarantineFile returns a new, unique name under quarantine/ for shard i
// of a version, relative to the data directory.
func quarantineFile(bucket, key, version string, shard int) string {
	base := fileBase(bucket, key, version, shard)
	var nonce [8]byte
	rand.Read(nonce[:])
	return filepath.Join(fanout(quarantineDir, base), base+"."+hex.EncodeToString(nonce[:]))
}

// Verify re-hashes, now, the shard the node holds of each ref (see verify)
// and returns one result per ref, in order; a shard that fails is
// quarantined and reported as client.VerifyCorrupt. At most
// client.MaxVerify refs. The call is fenced (see admit).
func (n *Node) Verify(ctx context.Context, refs []client.ShardRef) ([]client.VerifyResult, error) {
	const op = "storagenode.Verify"
	if err := n.admit(ctx, true); err != nil {
		return nil, err
	}
	if err := client.CheckShardRefs(refs); err != nil {
		return nil, kerr.E(op, err)
	}
	out := make([]client.VerifyResult, len(refs))
	for i, ref := range refs {
		res, err := n.verify(ctx, ref, nil, false)
		if err != nil {
			return nil, n.settle(err)
		}
		out[i] = res
	}
	return out, nil
}

// verify re-hashes the node's shard of ref's version, if it is shard index
// ref.Shard (else VerifyAbsent), read through th (nil: at full speed), and
// quarantines it if it fails. background says the node's own verifier is
// asking: it then also files a repair hint for what it finds, as no one
// else knows yet.
//
// The record and the file are looked up together under the key's lock, so
// a concurrent commit cannot make a superseded shard look missing; the
// hashing runs without the lock.
func (n *Node) verify(ctx context.Context, ref client.ShardRef, th *throttle.T, background bool) (client.VerifyResult, error) {
	const op = "storagenode.Verify"
	res := client.VerifyResult{ShardRef: ref, Shard: -1}
	unlock := n.lock(ref.Bucket, ref.Key)
	rec, err := n.db.Record(ref.Bucket, ref.Key)
	if err == nil && rec != nil && rec.Version != ref.Version {
		rec, err = n.noncurrentOr(rec, ref.Version)
	}
	if err != nil {
		unlock()
		return res, kerr.E(op, err)
	}
	switch {
	case rec == nil:
		unlock()
		res.Status = client.VerifyAbsent
		return res, nil
	case rec.Version != ref.Version || rec.Deleted || rec.Shard < 0:
		unlock()
		res.Status, res.Current = client.VerifyAbsent, rec.Version
		return res, nil
	case rec.Shard != ref.Shard:
		// Another shard of the version (a swap moved it here): a verdict
		// on it would vouch for a shard the caller thinks is here.
		unlock()
		res.Shard, res.Status = rec.Shard, client.VerifyAbsent
		return res, nil
	}
	res.Shard = rec.Shard
	q, err := n.db.QuarantinedShard(rec.Bucket, rec.Key, rec.Version, rec.Shard)
	if err != nil {
		unlock()
		return res, kerr.E(op, err)
	}
	if q != nil {
		unlock()
		res.Status, res.Detail = client.VerifyCorrupt, "quarantined: "+q.Reason
		return res, nil
	}
	f, _, err := n.openData(shardFile(rec.Bucket, rec.Key, rec.Version, rec.Shard))
	unlock()
	if errors.Is(err, fs.ErrNotExist) {
		n.scrub.count(func(st *client.ScrubStatus) { st.Missing++ })
		n.log.Warn("verify: shard file missing", "bucket", rec.Bucket, "key", rec.Key, "version", rec.Version, "shard", rec.Shard)
		if background {
			n.selfHint(*rec, "missing")
		}
		res.Status, res.Detail = client.VerifyMissing, "shard file missing"
		return res, nil
	}
	if err != nil {
		return res, kerr.E(op, kerr.Internal, err)
	}
	defer f.Close()

	cr := &countingReader{r: th.Reader(ctx, f)}
	err = checkShard(cr, *rec)
	res.Bytes = cr.n
	switch {
	case err == nil:
		res.Status = client.VerifyOK
		return res, nil
	case errors.Is(err, errNoRoot):
		// The record cannot vouch for any bytes; quarantining would not
		// help a repair either, which must match the same missing root.
		res.Status, res.Detail = client.VerifyCorrupt, err.Error()
		return res, nil
	case ctx.Err() != nil:
		return res, kerr.E(op, kerr.Transient, ctx.Err())
	}
	// A digest mismatch, a short file or a read error: the shard cannot be
	// trusted either way.
	reason := err.Error()
	if err := n.quarantine(*rec, f, reason); err != nil {
		return res, kerr.E(op, err)
	}
	n.scrub.count(func(st *client.ScrubStatus) { st.Corrupt++ })
	n.log.Warn("verify: shard corrupt, quarantined", "bucket", rec.Bucket, "key", rec.Key,
		"version", rec.Version, "shard", rec.Shard, "err", err)
	if background {
		n.selfHint(*rec, "corrupt")
	}
	res.Status, res.Detail = client.VerifyCorrupt, reason
	return res, nil
}

var errNoRoot = errors.New("record has no usable root digest for its shard")

// checkShard verifies a whole shard stream against rec.
func checkShard(r io.Reader, rec client.Record) error {
	l := codec.Layout{Data: rec.Data, Parity: rec.Parity, BlockSize: rec.BlockSize, Size: rec.Size}
	if rec.Shard >= len(rec.Roots) || l.Validate() != nil {
		return errNoRoot
	}
	root, err := codec.ParseDigest(rec.Roots[rec.Shard])
	if err != nil {
		return fmt.Errorf("%w: %w", errNoRoot, err)
	}
	// A buffer no larger than the shard: scrubs verify many small ones.
	return codec.VerifyShard(bufio.NewReaderSize(r, int(min(throttle.Chunk, max(l.ShardSize(), 16)))), l, rec.Shard, root)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

// quarantine moves the shard opened as f out of the way and records why,
// unless a commit replaced it meanwhile. The entry is written before the
// move of a shard file, so that after a crash in between the shard is still
// refused; an inline shard moves in the entry's own transaction.
func (n *Node) quarantine(rec client.Record, f io.ReadSeekCloser, reason string) error {
	const op = "storagenode.quarantine"
	unlock := n.lock(rec.Bucket, rec.Key)
	defer unlock()
	cur, err := n.db.Record(rec.Bucket, rec.Key)
	if err != nil {
		return kerr.E(op, err)
	}
	if cur == nil || cur.Version != rec.Version || cur.Shard != rec.Shard {
		return nil // superseded while it was being read
	}
	rel := shardFile(rec.Bucket, rec.Key, rec.Version, rec.Shard)
	q := meta.Quarantined{
		Bucket: rec.Bucket, Key: rec.Key, Version: rec.Version, Shard: rec.Shard,
		Reason: reason, Time: n.cfg.Now().UTC(), File: quarantineFile(rec.Bucket, rec.Key, rec.Version, rec.Shard),
	}
	file, ok := f.(*os.File)
	if !ok {
		// Inline. A repair only replaces a quarantined or missing
		// shard, so one that is still there is the one that was read.
		switch ok, err := n.db.HasBlob(rel); {
		case err != nil:
			return kerr.E(op, err)
		case !ok:
			return nil // gone meanwhile: the next check reports it missing
		}
		if err := n.db.PutQuarantinedInline(q, rel); err != nil {
			return kerr.E(op, err)
		}
		return nil
	}
	final := n.abs(rel)
	fi, err := os.Stat(final)
	if err != nil {
		return nil // gone meanwhile: the next check reports it missing
	}
	if ofi, err := file.Stat(); err != nil || !os.SameFile(fi, ofi) {
		return nil // a repair replaced it while it was being read
	}
	if err := n.mkdirs(q.File); err != nil {
		return kerr.E(op, ioKind(err), err)
	}
	if err := n.db.PutQuarantined(q); err != nil {
		return kerr.E(op, err)
	}
	if err := os.Rename(final, n.abs(q.File)); err != nil {
		return kerr.E(op, ioKind(err), err)
	}
	if err := n.syncDir(filepath.Dir(final)); err != nil {
		n.log.Warn("quarantine: syncing directory", "err", err)
	}
	return nil
}

// selfHint files a repair hint for the node's own shard of rec, best
// effort: the cluster scrubber finds the damage on its own walk anyway.
func (n *Node) selfHint(rec client.Record, reason string) {
	h := client.Hint{
		Bucket: rec.Bucket, Key: rec.Key, Version: rec.Version, Shard: rec.Shard,
		NodeID: n.cfg.ID, Reason: reason, Time: n.cfg.Now().UTC(),
	}
	if err := n.db.AddHints([]client.Hint{h}); err != nil {
		n.log.Warn("verify: filing repair hint", "err", err)
	}
}

// repair installs the staged shard of the key's committed version cur in
// place of the committed shard, if that one is owed: quarantined, or its
// file lost. It reports whether it did; a healthy committed shard is never
// replaced. The staged root must match the recorded one.
//
// REQUIRES: the key's lock; staged are the staged shards of cur.Version.
func (n *Node) repair(cur *client.Record, staged []meta.Staged) (bool, error) {
	const op = "storagenode.repair"
	if cur.Deleted || cur.Shard < 0 {
		return false, nil
	}
	i := slices.IndexFunc(staged, func(s meta.Staged) bool { return s.Shard == cur.Shard })
	if i < 0 {
		return false, nil
	}
	s := staged[i]
	q, err := n.db.QuarantinedShard(cur.Bucket, cur.Key, cur.Version, cur.Shard)
	if err != nil {
		return false, kerr.E(op, err)
	}
	final := shardFile(cur.Bucket, cur.Key, cur.Version, cur.Shard)
	if q == nil {
		switch ok, err := n.dataExists(final); {
		case err != nil:
			return false, kerr.E(op, ioKind(err), err)
		case ok:
			return false, nil
		}
	}
	if cur.Shard < len(cur.Roots) && !strings.EqualFold(cur.Roots[cur.Shard], s.Root) {
		return false, kerr.E(op, kerr.Corrupt, fmt.Errorf("staged shard %d has root %s, record says %s", s.Shard, s.Root, cur.Roots[cur.Shard]))
	}
	mv, err := n.install(s, cur.Version)
	if err != nil {
		return false, kerr.E(op, ioKind(err), err)
	}
	if err := n.db.Commit(*cur, staged, mv, meta.Garbage{}); err != nil {
		return false, kerr.E(op, err)
	}
	if q != nil {
		// Until the entry is gone reads refuse the repaired shard, so a
		// failure here fails the repair, and a retry installs again.
		if err := n.db.DeleteQuarantined(*q); err != nil {
			return false, kerr.E(op, err)
		}
		n.removeFile(q.File)
	}
	for _, o := range staged {
		if o.Shard != s.Shard {
			n.removeFile(o.File)
		}
	}
	n.log.Info("repaired shard", "bucket", cur.Bucket, "key", cur.Key, "version", cur.Version, "shard", cur.Shard)
	return true, nil
}

// DropMarker removes the node's committed record of bucket/key if, and
// only if, it is still the delete marker of version (compare and delete),
// and reports whether it did (see client.Client.DropMarker). The call is
// fenced (see admit).
func (n *Node) DropMarker(ctx context.Context, bucket, key, version string) (bool, error) {
	const op = "storagenode.DropMarker"
	if err := n.admit(ctx, true); err != nil {
		return false, err
	}
	if err := client.CheckObject(bucket, key, version); err != nil {
		return false, kerr.E(op, err)
	}
	unlock := n.lock(bucket, key)
	dropped, err := n.db.DropMarker(bucket, key, version)
	unlock()
	if err != nil {
		return false, n.settle(kerr.E(op, err))
	}
	if dropped {
		n.log.Info("dropped delete marker", "bucket", bucket, "key", key, "version", version)
	}
	return dropped, nil
}

// ListStaged returns up to limit of the node's staged shards (<= 0 means
// client.DefaultListLen, capped at client.MaxListLen), oldest first. The
// call is fenced (see admit).
func (n *Node) ListStaged(ctx context.Context, limit int) ([]client.StagedShard, error) {
	if err := n.admit(ctx, true); err != nil {
		return nil, err
	}
	all, err := n.db.AllStaged()
	if err != nil {
		return nil, n.settle(kerr.E("storagenode.ListStaged", err))
	}
	slices.SortFunc(all, func(a, b meta.Staged) int { return a.Staged.Compare(b.Staged) })
	all = all[:min(len(all), client.ListLimit(limit))]
	out := make([]client.StagedShard, len(all))
	for i, s := range all {
		out[i] = client.StagedShard{Bucket: s.Bucket, Key: s.Key, StagedRef: s.Ref()}
	}
	return out, nil
}

// sweepQuarantine forgets quarantined shards, and removes their files,
// whose version is no longer the node's committed one: nothing owes them
// any more.
func (n *Node) sweepQuarantine(ctx context.Context) (int, error) {
	qs, _, err := n.db.QuarantinedShards(client.MaxListLen)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, q := range qs {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		unlock := n.lock(q.Bucket, q.Key)
		rec, err := n.db.Record(q.Bucket, q.Key)
		if err == nil && (rec == nil || rec.Version != q.Version || rec.Shard != q.Shard) {
			if err = n.db.DeleteQuarantined(q); err == nil {
				n.removeFile(q.File)
				removed++
			}
		}
		unlock()
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}
