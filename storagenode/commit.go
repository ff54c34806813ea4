package storagenode

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/meta"
)

// Commit makes m's version the key's committed version and returns the
// key's committed record; see commit for what it does and
// client.Client.Commit for its contract, errors included. The call is
// fenced (see admit).
func (n *Node) Commit(ctx context.Context, m client.ObjectMeta) (client.Record, error) {
	if err := n.admit(ctx, true); err != nil {
		return client.Record{}, err
	}
	rec, err := n.commit(m)
	return rec, n.settle(err)
}

// commit makes m's version the key's committed version and returns the
// key's committed record. A node that already holds a newer version
// refuses with a ConflictError naming it and changes nothing: its staged
// shard stays, so that the writer may commit it again under a version
// above the newer one. Committing the committed version again succeeds.
//
// The staged shard committed is the one staged under m.StageVersion()
// (or, for a rebuilt shard, under m.Version itself): it is installed under
// the name of m.Version, so reads never learn the stage version. The
// record keeps m.Staged, so that a roll-forward of the record binds the
// same staged shard. With no staged shard, a commit of the write the node
// already holds (same stage version and shards) under a newer version
// binds the committed shard to it (rebind): its writer found another
// write's newer version on other nodes and had to go above it.
//
// Order (see the package doc): rename the staged file into place, fsync
// its directory, write record + staged-entry removal + garbage note in one
// synced transaction, then remove the superseded file, or, with a
// Config.SupersededGrace (or a Config.UnderwrittenHold, when m is
// underwritten), leave it to Sweep. A failure before
// the transaction leaves the old record in force; the renamed file is then
// found again by a retried commit, or removed when its staged entry is
// swept.
func (n *Node) commit(m client.ObjectMeta) (client.Record, error) {
	const op = "storagenode.Commit"
	if err := client.CheckObject(m.Bucket, m.Key, m.Version); err != nil {
		return client.Record{}, kerr.E(op, err)
	}
	if m.Size < 0 {
		return client.Record{}, kerr.E(op, kerr.Invalid, fmt.Errorf("negative size %d", m.Size))
	}
	unlock := n.lock(m.Bucket, m.Key)
	defer unlock()

	cur, err := n.db.Record(m.Bucket, m.Key)
	if err != nil {
		return client.Record{}, kerr.E(op, err)
	}
	if m.Staged == m.Version {
		m.Staged = ""
	}
	if m.Staged != "" {
		if err := client.CheckVersion(m.Staged); err != nil {
			return client.Record{}, kerr.E(op, err)
		}
	}
	if err := n.refusePurged(op, m); err != nil {
		return client.Record{}, err
	}
	if cur != nil && cur.Version > m.Version {
		// Never let an older version replace a newer one, and never
		// answer as if it had: the writer must not count this node.
		return client.Record{}, kerr.E(op, kerr.Conflict, &client.ConflictError{Newer: cur.Version})
	}
	staged, err := n.stagedVersion(m.Bucket, m.Key, m.Version, m.Staged)
	if err != nil {
		return client.Record{}, kerr.E(op, err)
	}
	if cur != nil && cur.Version == m.Version && !sameWrite(cur, m) {
		// Two writes that drew the same version: the second must not
		// be told it is committed.
		return client.Record{}, kerr.E(op, kerr.Conflict, &client.ConflictError{Newer: cur.Version})
	}
	if cur != nil && cur.Version == m.Version {
		// A shard rebuilt for a version the node already holds
		// replaces a quarantined or lost one.
		switch ok, err := n.repair(cur, staged); {
		case err != nil:
			return client.Record{}, kerr.E(op, err)
		case ok:
			return *cur, nil
		}
		// Already committed: nothing to make visible.
		if err := n.dropStaged(staged, cur); err != nil {
			return client.Record{}, kerr.E(op, err)
		}
		return *cur, nil
	}

	m = client.RecodeTags(cur, m)
	rec := client.Record{ObjectMeta: m, Shard: -1}
	var install meta.Move
	rebound := false
	// Delete markers and multipart manifests have no shard of their own.
	if !m.Deleted && len(m.Parts) == 0 {
		switch s, ok := pickStaged(staged, m, n.cfg.ID); {
		case ok:
			if s.Shard < len(m.Roots) && m.Roots[s.Shard] != "" && !strings.EqualFold(m.Roots[s.Shard], s.Root) {
				return client.Record{}, kerr.E(op, kerr.Corrupt, fmt.Errorf("staged shard %d has root %s, commit says %s", s.Shard, s.Root, m.Roots[s.Shard]))
			}
			mv, err := n.install(s, m.Version)
			if err != nil {
				return client.Record{}, kerr.E(op, ioKind(err), err)
			}
			install, rec.Shard = mv, s.Shard
		case cur != nil && rebinds(cur, m):
			// The same write, committed here under an older version
			// before its writer had to go above a newer one elsewhere.
			mv, err := n.rebind(cur, m.Version)
			if err != nil {
				return client.Record{}, kerr.E(op, ioKind(err), err)
			}
			install, rec.Shard, rebound = mv, cur.Shard, true
		default:
			return client.Record{}, kerr.E(op, kerr.NotExist, fmt.Errorf("no staged shard of %s/%s version %s", m.Bucket, m.Key, m.StageVersion()))
		}
	}
	var vs meta.Versions
	if !rebound {
		// A rebound write is the same version renamed, never a
		// version of its own to keep.
		if vs, err = n.versionsFor(cur, m); err != nil {
			return client.Record{}, kerr.E(op, err)
		}
	}
	var garbage meta.Garbage
	if cur != nil && cur.Shard >= 0 && vs.Keep == nil {
		garbage.File = shardFile(cur.Bucket, cur.Key, cur.Version, cur.Shard)
		hold := time.Duration(0)
		if underwritten(m) {
			hold = n.cfg.UnderwrittenHold
		}
		if n.cfg.SupersededGrace > 0 || hold > 0 {
			// The grace starts once the hold ends; meanwhile Stat
			// reports cur as the key's previous record.
			garbage.Superseded, garbage.Previous = time.Now().Add(hold), cur
		}
	}
	if err := n.db.CommitVersions(rec, staged, install, garbage, vs); err != nil {
		return client.Record{}, kerr.E(op, err)
	}
	// Committed. What follows is cleanup: a failure only strands files
	// that Sweep removes later.
	for _, s := range staged {
		if s.Shard != rec.Shard {
			n.removeFile(s.File)
			n.removeFile(shardFile(s.Bucket, s.Key, s.Version, s.Shard))
		}
	}
	for _, f := range vs.DropFiles {
		n.removeFile(f)
	}
	// A superseded shard with a grace stays for reads that resolved its
	// version before this commit; Sweep removes it after the grace.
	if garbage.File != "" && garbage.Superseded.IsZero() {
		if _, err := n.removeFile(garbage.File); err != nil {
			n.log.Warn("removing superseded shard", "file", garbage.File, "err", err)
		}
	}
	return rec, nil
}

// underwritten reports whether m is a version with shards whose metadata
// names no node for some shard: its write staged fewer than Data+Parity
// shards without raising its parity (see Config.UnderwrittenHold). A
// version with no Nodes at all (metadata of an earlier format) is not
// judged.
func underwritten(m client.ObjectMeta) bool {
	if m.Deleted || len(m.Parts) > 0 || len(m.Nodes) == 0 {
		return false
	}
	return len(m.Nodes) < m.Data+m.Parity || slices.Contains(m.Nodes, "")
}

// sameWrite reports whether m describes the write rec records: a commit of
// the committed version again (a retry, a roll-forward, a rebuilt shard)
// carries the record's own metadata.
func sameWrite(rec *client.Record, m client.ObjectMeta) bool {
	return rec.Deleted == m.Deleted && rec.Size == m.Size && rec.ETag == m.ETag &&
		slices.EqualFunc(rec.Roots, m.Roots, strings.EqualFold)
}

// rebinds reports whether m commits again, under a newer version, the
// write cur holds: same stage version, same shards.
func rebinds(cur *client.Record, m client.ObjectMeta) bool {
	return m.Staged != "" && cur.Shard >= 0 && cur.StageVersion() == m.StageVersion() && sameWrite(cur, m)
}

// rebind gives the committed shard of cur the name of version as well, for
// a commit that moves the same write to that version: a hard link, made
// durable, so that the old name stays readable for the superseded grace
// like any superseded shard's and a crash before the record leaves cur
// whole. An inline or packed shard is instead renamed by the commit's own
// transaction: rebind returns that move. A retried commit finds the link
// in place.
func (n *Node) rebind(cur *client.Record, version string) (meta.Move, error) {
	from := shardFile(cur.Bucket, cur.Key, cur.Version, cur.Shard)
	to := shardFile(cur.Bucket, cur.Key, version, cur.Shard)
	switch ok, err := n.db.HasBlob(from); {
	case err != nil:
		return meta.Move{}, err
	case ok:
		return meta.Move{From: from, To: to}, nil
	}
	if err := n.mkdirs(to); err != nil {
		return meta.Move{}, err
	}
	if err := os.Link(n.abs(from), n.abs(to)); err != nil && !errors.Is(err, fs.ErrExist) {
		return meta.Move{}, err
	}
	return meta.Move{}, n.syncDir(filepath.Dir(n.abs(to)))
}

// install moves staged shard s to its committed file as shard of version
// (the version it is committed under, which may be newer than the one it
// was staged under) and makes the rename durable. An inline shard is
// instead renamed by the commit's own transaction: install returns that
// move.
//
// A retried commit of the same version finds the file already in place.
// A crash after the rename of a shard committed under a newer version
// than it was staged under, and before the record, strands the renamed
// file: no record names it, so it is never read, but Sweep does not find
// it either (it looks for files named by the staged version). Such a
// commit happens only when a concurrent write won the version race.
func (n *Node) install(s meta.Staged, version string) (meta.Move, error) {
	final := shardFile(s.Bucket, s.Key, version, s.Shard)
	if s.Inline {
		return meta.Move{From: s.File, To: final}, nil
	}
	if err := n.mkdirs(final); err != nil {
		return meta.Move{}, err
	}
	err := os.Rename(n.abs(s.File), n.abs(final))
	if errors.Is(err, fs.ErrNotExist) {
		// A commit that crashed (or failed) after its rename: the file
		// is already in place.
		if _, serr := os.Stat(n.abs(final)); serr == nil {
			err = nil
		}
	}
	if err != nil {
		return meta.Move{}, err
	}
	return meta.Move{}, n.syncDir(filepath.Dir(n.abs(final)))
}

// pickStaged chooses which staged shard of a version this node commits. A
// node holds one shard of a version; should it have several, the one the
// metadata places on this node wins, else the lowest index.
func pickStaged(staged []meta.Staged, m client.ObjectMeta, id string) (meta.Staged, bool) {
	if len(staged) == 0 {
		return meta.Staged{}, false
	}
	for _, s := range staged {
		if s.Shard < len(m.Nodes) && m.Nodes[s.Shard] == id {
			return s, true
		}
	}
	return slices.MinFunc(staged, func(a, b meta.Staged) int { return a.Shard - b.Shard }), true
}

// stagedVersion returns the staged shards of a key staged under version
// or (if not empty) under alias, the version a commit names as its stage
// version. REQUIRES: the key's lock.
func (n *Node) stagedVersion(bucket, key, version, alias string) ([]meta.Staged, error) {
	all, err := n.db.StagedOf(bucket, key)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(s meta.Staged) bool {
		return s.Version != version && (alias == "" || s.Version != alias)
	}), nil
}

// dropStaged deletes staged entries and their files. A staged shard's
// committed file name is removed too unless cur (the key's committed
// record, may be nil) is that very shard: a commit that failed after its
// rename leaves the shard there. REQUIRES: the key's lock.
func (n *Node) dropStaged(staged []meta.Staged, cur *client.Record) error {
	if len(staged) == 0 {
		return nil
	}
	if err := n.db.DeleteStaged(staged); err != nil {
		return err
	}
	for _, s := range staged {
		n.removeFile(s.File)
		if cur == nil || cur.Version != s.Version || cur.Shard != s.Shard {
			n.removeFile(shardFile(s.Bucket, s.Key, s.Version, s.Shard))
		}
	}
	return nil
}

// Abort drops every staged shard of a version. Aborting what is not
// staged (or already committed) succeeds and changes nothing. The call is
// fenced (see admit).
func (n *Node) Abort(ctx context.Context, bucket, key, version string) error {
	if err := n.admit(ctx, true); err != nil {
		return err
	}
	return n.settle(n.abort(bucket, key, version))
}

// abort drops every staged shard of a version.
func (n *Node) abort(bucket, key, version string) error {
	const op = "storagenode.Abort"
	if err := client.CheckObject(bucket, key, version); err != nil {
		return kerr.E(op, err)
	}
	unlock := n.lock(bucket, key)
	defer unlock()
	staged, err := n.stagedVersion(bucket, key, version, "")
	if err != nil {
		return kerr.E(op, err)
	}
	cur, err := n.db.Record(bucket, key)
	if err != nil {
		return kerr.E(op, err)
	}
	if err := n.dropStaged(staged, cur); err != nil {
		return kerr.E(op, err)
	}
	return nil
}
