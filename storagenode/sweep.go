package storagenode

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/meta"
)

// Sweep removes what no commit will ever need, as of now:
//   - staged entries older than the staging grace, with their files;
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

// sweepStaged drops staged entries older than cutoff.
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

// sweepKey drops one key's staged entries older than cutoff, re-reading
// them under the key's lock: a commit may have taken them meanwhile.
func (n *Node) sweepKey(bucket, key string, cutoff time.Time) (int, error) {
	unlock := n.lock(bucket, key)
	defer unlock()
	cur, staged, err := n.db.Key(bucket, key)
	if err != nil {
		return 0, err
	}
	var old []meta.Staged
	for _, s := range staged {
		if s.Staged.Before(cutoff) {
			old = append(old, s)
		}
	}
	if err := n.dropStaged(old, cur); err != nil {
		return 0, err
	}
	return len(old), nil
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
		}
		if err := n.db.DeleteGarbage(done); err != nil {
			return removed, err
		}
	}
}
