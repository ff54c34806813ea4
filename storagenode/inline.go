package storagenode

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/meta"
)

// Shards whose framed stream is at most Config.InlineMax bytes live in the
// index rather than in files (see meta.PutStagedInline). Every function
// here that takes a relative path looks in both places, so the code that
// names, notes, sweeps and drops shard files does not need to know which
// kind it holds.

// inlineBuf is a stage's read buffer for a body that may be inline.
type inlineBuf struct{ b []byte }

// stageInline reads body; if it ends within n.cfg.InlineMax bytes it
// verifies its frames and records it, with its data, as the inline staged
// file rel, reporting done. Otherwise it returns a reader that replays
// what it read followed by the rest of body, for the file path.
func (n *Node) stageInline(s meta.Staged, body io.Reader, block int) (staged meta.Staged, rest io.Reader, done bool, err error) {
	const op = "storagenode.Stage"
	ib := n.inline.Get().(*inlineBuf)
	if want := int(n.cfg.InlineMax) + 1; cap(ib.b) < want {
		ib.b = make([]byte, want)
	}
	buf := ib.b[:n.cfg.InlineMax+1]
	k, err := io.ReadFull(body, buf)
	switch {
	case err == nil:
		// Longer than InlineMax: a file. The buffer goes with the reader
		// and is not reused.
		return s, io.MultiReader(bytes.NewReader(buf), body), false, nil
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
	default:
		n.inline.Put(ib)
		return s, nil, false, kerr.E(op, kerr.Transient, err)
	}
	defer n.inline.Put(ib)
	data := buf[:k]
	bw := n.bufs.Get().(*bufio.Writer)
	bw.Reset(io.Discard)
	size, root, err := copyFrames(bw, n.blocks, bytes.NewReader(data), block)
	bw.Reset(nil)
	n.bufs.Put(bw)
	if err != nil {
		return s, nil, false, err
	}
	s.Size, s.Root, s.Inline = size, root.String(), true
	unlock := n.lock(s.Bucket, s.Key)
	prev, err := n.db.PutStagedInline(s, data)
	unlock()
	if err != nil {
		return s, nil, false, kerr.E(op, err)
	}
	if prev != nil && prev.File != s.File {
		// A repeated stage of the same shard replaced an earlier one.
		n.removeFile(prev.File)
	}
	return s, nil, true, nil
}

// blobFile is an inline file opened for reading.
type blobFile struct{ *bytes.Reader }

func (blobFile) Close() error { return nil }

// openData opens the shard rel, inline or on disk, and returns it with its
// size. A shard that is in neither place is fs.ErrNotExist.
func (n *Node) openData(rel string) (io.ReadSeekCloser, int64, error) {
	data, ok, err := n.db.Blob(rel)
	if err != nil {
		return nil, 0, err
	}
	if ok {
		return blobFile{bytes.NewReader(data)}, int64(len(data)), nil
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
