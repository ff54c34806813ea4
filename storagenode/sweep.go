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
//   - superseded shard files a commit noted but could not remove;
//   - quarantined shards of versions the node no longer holds.
//
// It returns how many entries and files it removed. Committed data is
// never touched. Sweep is safe to run concurrently with everything else.
func (n *Node) Sweep(ctx context.Context, now time.Time) (removed int, err error) {
	const op = "storagenode.Sweep"
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
	r, err = n.sweepGarbage(ctx)
	removed += r
	if err != nil {
		return removed, kerr.E(op, err)
	}
	r, err = n.sweepQuarantine(ctx)
	removed += r
	if err != nil {
		return removed, kerr.E(op, err)
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

// sweepGarbage removes the superseded shard files commits noted, and
// forgets the notes.
func (n *Node) sweepGarbage(ctx context.Context) (int, error) {
	removed := 0
	for {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		files, err := n.db.Garbage(1000)
		if err != nil || len(files) == 0 {
			return removed, err
		}
		for _, f := range files {
			ok, err := n.removeFile(f)
			if err != nil {
				return removed, err
			}
			if ok {
				removed++
			}
		}
		if err := n.db.DeleteGarbage(files); err != nil {
			return removed, err
		}
	}
}
