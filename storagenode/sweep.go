package storagenode

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/meta"
)

// Sweep removes what no commit will ever need, as of now:
//   - staged entries older than the staging grace whose version is not
//     newer than the key's committed version here, with their files: no
//     commit can take them any more. A staged version newer than that
//     stays, however old: another node may have committed it, and then
//     it is what makes that version readable (see deadStaged);
//   - files under staging/ that no staged entry names and that have not
//     been written to for the grace period (left by failed or crashed
//     stages);
//   - superseded shard files whose Config.SupersededGrace has passed, and
//     dropped ones a drop noted but could not remove;
//   - quarantined shards of versions the node no longer holds;
//   - pack files mostly holding removed shards, once the live ones are
//     copied to the active pack (not counted in removed).
//
// It returns how many entries and files it removed. Committed data is
// never touched. Sweep is safe to run concurrently with everything else.
func (n *Node) Sweep(ctx context.Context, now time.Time) (removed int, err error) {
	const op = "storagenode.Sweep"
	if err := n.failure(); err != nil {
		return 0, kerr.E(op, err)
	}
	cutoff := now.Add(-n.cfg.StagingGrace)
	r, err := n.sweepStaged(ctx, cutoff)
	removed += r
	n.metrics.sweptStaged(r)
	if err != nil {
		return removed, kerr.E(op, err)
	}
	r, err = n.sweepStagingFiles(ctx, cutoff)
	removed += r
	if err != nil {
		return removed, kerr.E(op, err)
	}
	r, err = n.sweepGarbage(ctx, now)
	removed += r
	if err != nil {
		return removed, kerr.E(op, err)
	}
	r, err = n.sweepQuarantine(ctx)
	removed += r
	if err != nil {
		return removed, kerr.E(op, err)
	}
	if _, err := n.compactPacks(ctx); err != nil {
		return removed, kerr.E(op, ioKind(err), err)
	}
	return removed, nil
}

// sweepStaged drops staged entries older than cutoff that are dead here
// (see deadStaged).
func (n *Node) sweepStaged(ctx context.Context, cutoff time.Time) (int, error) {
	all, err := n.db.AllStaged()
	if err != nil {
		return 0, err
	}
	type name struct{ bucket, key string }
	keys := map[name]bool{}
	for _, s := range all {
		if s.Staged.Before(cutoff) {
			keys[name{s.Bucket, s.Key}] = true
		}
	}
	removed := 0
	for k := range keys {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		r, err := n.sweepKey(k.bucket, k.key, cutoff)
		removed += r
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// sweepKey drops one key's staged entries older than cutoff that are dead
// here, re-reading them under the key's lock: a commit may have taken
// them meanwhile.
func (n *Node) sweepKey(bucket, key string, cutoff time.Time) (int, error) {
	unlock := n.lock(bucket, key)
	defer unlock()
	cur, staged, err := n.db.Key(bucket, key)
	if err != nil {
		return 0, err
	}
	var old []meta.Staged
	for _, s := range staged {
		if s.Staged.Before(cutoff) && deadStaged(s, cur) {
			old = append(old, s)
		}
	}
	if err := n.dropStaged(old, cur); err != nil {
		return 0, err
	}
	return len(old), nil
}

// deadStaged reports whether staged shard s can be swept by age on this
// node alone: only if the key's committed version here (cur, may be nil)
// is s's or newer, since a commit of s's version would then be refused.
// Age alone proves nothing: a writer that died between commits leaves its
// version committed on some nodes and staged on others, and those staged
// shards are what a roll forward commits to make it readable. Whether an
// older staged version was committed anywhere only the cluster knows: the
// scrubber's staged pass rolls it forward, or aborts it when every node
// of the key answered and none committed it.
func deadStaged(s meta.Staged, cur *client.Record) bool {
	return cur != nil && cur.Version >= s.Version
}

// sweepStagingFiles removes files under staging/ that no staged entry
// names and whose last write is older than cutoff. Stages in progress
// write continuously, so their files are never that old.
func (n *Node) sweepStagingFiles(ctx context.Context, cutoff time.Time) (int, error) {
	all, err := n.db.AllStaged()
	if err != nil {
		return 0, err
	}
	live := make(map[string]bool, len(all))
	for _, s := range all {
		live[filepath.Clean(s.File)] = true
	}
	removed := 0
	root := n.abs(stagingDir)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(n.dir, path)
		if err != nil || live[rel] {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if !info.ModTime().Before(cutoff) {
			return nil
		}
		ok, err := n.removeFile(rel)
		if ok {
			removed++
		}
		return err
	})
	return removed, err
}

// sweepGarbage removes the shard files commits and drops noted, except
// superseded ones still within their grace as of now, and forgets the
// notes.
func (n *Node) sweepGarbage(ctx context.Context, now time.Time) (int, error) {
	removed := 0
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		notes, err := n.db.Garbage(after, 1000)
		if err != nil || len(notes) == 0 {
			return removed, err
		}
		after = notes[len(notes)-1].File
		var done []string
		var gone []meta.Garbage
		for _, g := range notes {
			if !g.Superseded.IsZero() && now.Before(g.Superseded.Add(n.cfg.SupersededGrace)) {
				continue
			}
			ok, err := n.removeFile(g.File)
			if err != nil {
				return removed, err
			}
			if ok {
				removed++
			}
			done = append(done, g.File)
			gone = append(gone, g)
		}
		if err := n.db.DeleteGarbage(done); err != nil {
			return removed, err
		}
		if err := n.db.ForgetPrevious(gone); err != nil {
			return removed, err
		}
	}
}
