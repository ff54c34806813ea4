// Package atomicfile replaces small files whole: a reader sees the old
// content or the new, and after a crash one of them is on disk complete,
// the directory entry included.
//
// It owns only that write discipline (temporary file, fsync, rename, fsync
// of the directory). It must never decide what is written or take locks:
// callers that race serialise themselves.
//
// Hand-written rather than google/renameio/v2, which does not fsync the
// parent directory (so the rename itself can be lost in a crash) and does
// not build on Windows.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data. The new file keeps the mode of the
// file it replaces, or takes perm if there is none. The temporary file is
// created beside path, so the rename never crosses file systems, and is
// removed if anything fails.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	const op = "atomicfile.WriteFile"
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: writing %s: %w", op, tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// SyncDir fsyncs the directory dir, making the creation, removal or
// renaming of its entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
