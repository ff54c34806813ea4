package storagenode

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/meta"
)

// Shards whose framed stream is at most Config.InlineMax bytes live in the
// index rather than in files (see meta.PutStagedInline); those up to
// Config.PackMax live in pack files, the index holding where. Every
// function here that takes a relative path looks in the index first, then
// on disk, so the code that names, notes, sweeps and drops shard files
// does not need to know which kind it holds.

// inlineBuf is a stage's read buffer for a body that may be inline or
// packed.
type inlineBuf struct{ b []byte }

// stageLimit is the longest body a stage keeps in memory.
func (n *Node) stageLimit() int64 { return max(n.cfg.InlineMax, n.cfg.PackMax) }

// stageInline reads body; if it ends within stageLimit bytes it verifies
// its frames and records it as the staged file s.File: inline if it is at
// most InlineMax bytes, else appended to a pack. It then reports done.
// Otherwise it returns a reader that replays what it read followed by the
// rest of body, for a file of its own.
func (n *Node) stageInline(s meta.Staged, body io.Reader, block int, trust bool) (staged meta.Staged, rest io.Reader, done bool, err error) {
	const op = "storagenode.Stage"
	limit := n.stageLimit()
	ib := n.inline.Get().(*inlineBuf)
	if want := int(limit) + 1; cap(ib.b) < want {
		ib.b = make([]byte, want)
	}
	buf := ib.b[:limit+1]
	k, err := io.ReadFull(body, buf)
	switch {
	case err == nil:
		// Longer than the limit: a file. The buffer goes with the reader
		// and is not reused.
		return s, io.MultiReader(bytes.NewReader(buf), body), false, nil
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
	default:
		n.inline.Put(ib)
		return s, nil, false, kerr.E(op, kerr.Transient, err)
	}
	defer n.inline.Put(ib)
	data := buf[:k]
	size, root, err := copyFrames(nil, n.blocks, bytes.NewReader(data), block, trust)
	if err != nil {
		return s, nil, false, err
	}
	s.Size, s.Root = size, root.String()
	b := meta.Blob{Data: data}
	if size > n.cfg.InlineMax {
		loc, release, err := n.packs.Append(data)
		if err != nil {
			return s, nil, false, kerr.E(op, ioKind(err), err)
		}
		defer release()
		b = meta.Blob{Packed: true, Loc: loc}
	}
	unlock := n.lock(s.Bucket, s.Key)
	prev, err := n.db.PutStagedInline(s, b)
	unlock()
	if err != nil {
		return s, nil, false, kerr.E(op, err)
	}
	s.Inline = true
	if prev != nil && prev.File != s.File {
		// A repeated stage of the same shard replaced an earlier one.
		n.removeFile(prev.File)
	}
	return s, nil, true, nil
}

// blobFile is an inline file opened for reading.
type blobFile struct{ io.ReadSeeker }

func (blobFile) Close() error { return nil }

// openData opens the shard rel, inline, packed or on disk, and returns it
// with its size. A shard that is in none of them is fs.ErrNotExist.
func (n *Node) openData(rel string) (io.ReadSeekCloser, int64, error) {
	b, ok, err := n.db.Blob(rel)
	if err != nil {
		return nil, 0, err
	}
	if ok && b.Packed {
		r, err := n.packs.Open(b.Loc)
		if errors.Is(err, fs.ErrNotExist) {
			// Compaction moved the shard and removed its pack between
			// the lookup and the open: the index knows where it is now.
			if b, ok, err = n.db.Blob(rel); err == nil && ok && b.Packed {
				r, err = n.packs.Open(b.Loc)
			} else if err == nil {
				err = fs.ErrNotExist
			}
		}
		if err != nil {
			return nil, 0, err
		}
		return r, b.Loc.Len, nil
	}
	if ok {
		return blobFile{bytes.NewReader(b.Data)}, int64(len(b.Data)), nil
	}
	f, err := os.Open(n.abs(rel))
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// dataExists reports whether the shard rel exists, inline or on disk.
func (n *Node) dataExists(rel string) (bool, error) {
	if ok, err := n.db.HasBlob(rel); err != nil || ok {
		return ok, err
	}
	_, err := os.Stat(n.abs(rel))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// removeFile removes a shard or staging file relative to the data
// directory, on disk or inline. A file that is already gone is not an
// error: removals are retried by Sweep and may race.
func (n *Node) removeFile(rel string) (bool, error) {
	err := os.Remove(n.abs(rel))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return n.db.DeleteBlob(rel)
	}
	return false, err
}
