package storagenode

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/meta"
)

// maxDrain bounds how much of a failed stage's body the node reads and
// discards so that the client gets the error answer rather than a broken
// connection. Past it the connection is simply closed.
const maxDrain = 32 << 20

func (n *Node) handleStage(w http.ResponseWriter, r *http.Request) {
	const op = "storagenode.Stage"
	q := r.URL.Query()
	shard, err := intParam(q, op, "shard", -1)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	block, err := intParam(q, op, "block", 0)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	ref, err := n.stage(q.Get("bucket"), q.Get("key"), q.Get("version"), int(shard), int(block), r.Body)
	if err == nil {
		ref.Newest, err = n.newest(ref.Version, q.Get("bucket"), q.Get("key"))
	}
	if err == nil {
		// Read after the stage: a versioning state stored before the
		// write began is in the answer (docs/versioning.md).
		ref.Bucket, err = n.bucketState(q.Get("bucket"))
	}
	if err != nil {
		io.Copy(io.Discard, io.LimitReader(r.Body, maxDrain))
		n.writeError(w, r, err)
		return
	}
	n.writeJSON(w, r, ref)
}

// newest returns the newest version the node has committed or staged for
// a key, at least floor. A stage answers with it, so that the gateway can
// commit the shard under a version above every one the node knows of:
// the order of versions then never depends on gateway clocks agreeing
// (see docs/ordering.md).
func (n *Node) newest(floor, bucket, key string) (string, error) {
	const op = "storagenode.Stage"
	cur, staged, err := n.db.Key(bucket, key)
	if err != nil {
		return "", kerr.E(op, err)
	}
	v := floor
	if cur != nil {
		v = max(v, cur.Version)
	}
	for _, s := range staged {
		v = max(v, s.Version)
	}
	return v, nil
}

// stage writes one framed shard stream to a new staging file, verifying
// every frame, fsyncs it, and records it as a staged entry. On any error
// the file is removed and nothing is recorded.
func (n *Node) stage(bucket, key, version string, shard, block int, body io.Reader) (client.StagedRef, error) {
	const op = "storagenode.Stage"
	if err := client.CheckObject(bucket, key, version); err != nil {
		return client.StagedRef{}, kerr.E(op, err)
	}
	if err := client.CheckShard(shard); err != nil {
		return client.StagedRef{}, kerr.E(op, err)
	}
	if block < codec.MinBlockSize || block > codec.MaxBlockSize {
		return client.StagedRef{}, kerr.E(op, kerr.Invalid, fmt.Errorf("block size %d out of range %d..%d", block, codec.MinBlockSize, codec.MaxBlockSize))
	}
	rel := stagingFile(bucket, key, version, shard)
	s := meta.Staged{Bucket: bucket, Key: key, Version: version, Shard: shard, Staged: time.Now().UTC(), File: rel}
	if n.stageLimit() > 0 {
		staged, rest, done, err := n.stageInline(s, body, block)
		switch {
		case err != nil:
			return client.StagedRef{}, err
		case done:
			return staged.Ref(), nil
		}
		body = rest
	}
	if err := n.mkdirs(rel); err != nil {
		return client.StagedRef{}, kerr.E(op, ioKind(err), err)
	}
	size, root, err := n.writeStaged(rel, body, block)
	if err != nil {
		n.removeFile(rel)
		return client.StagedRef{}, err
	}
	s.Root, s.Size = root.String(), size
	unlock := n.lock(bucket, key)
	prev, err := n.db.PutStaged(s)
	unlock()
	if err != nil {
		n.removeFile(rel)
		return client.StagedRef{}, kerr.E(op, err)
	}
	if prev != nil && prev.File != rel {
		// A repeated stage of the same shard replaced an earlier one.
		n.removeFile(prev.File)
	}
	return s.Ref(), nil
}

// writeStaged streams body's frames, each verified by codec.FrameReader,
// into the new file rel, then fsyncs the file and its directory. It
// returns the framed size and the root digest.
func (n *Node) writeStaged(rel string, body io.Reader, block int) (int64, codec.Digest, error) {
	const op = "storagenode.Stage"
	f, err := os.OpenFile(n.abs(rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, codec.Digest{}, kerr.E(op, ioKind(err), err)
	}
	bw := n.bufs.Get().(*bufio.Writer)
	bw.Reset(n.wrapStage(f))
	size, root, err := copyFrames(bw, n.blocks, body, block)
	bw.Reset(nil)
	n.bufs.Put(bw)
	if err == nil {
		err = n.syncClose(f)
	} else {
		f.Close()
	}
	if err != nil {
		return 0, codec.Digest{}, err
	}
	if err := n.syncDir(filepath.Dir(n.abs(rel))); err != nil {
		return 0, codec.Digest{}, kerr.E(op, ioKind(err), err)
	}
	return size, root, nil
}

func (n *Node) wrapStage(w io.Writer) io.Writer {
	if n.stageWriter != nil {
		return n.stageWriter(w)
	}
	return w
}

// copyFrames copies the frames of r to bw through a FrameReader, so that
// only verified blocks are written, flushes bw, and returns the bytes
// written and the root digest. With a nil bw it only verifies. Errors are classified: a digest mismatch is
// Corrupt, a stream cut inside a frame Invalid, a failing body Transient, a
// failing bw by ioKind.
func copyFrames(bw *bufio.Writer, blocks freeList, r io.Reader, block int) (int64, codec.Digest, error) {
	const op = "storagenode.Stage"
	fr := codec.NewFrameReader(r, block)
	buf := blocks.get(block)
	defer blocks.put(buf)
	fr.SetBuffer(buf)
	var n int64
	for {
		blk, d, err := fr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, codec.Digest{}, kerr.E(op, frameKind(err), err)
		}
		n += int64(len(d) + len(blk))
		if bw == nil {
			continue
		}
		if _, err := bw.Write(d[:]); err != nil {
			return n, codec.Digest{}, kerr.E(op, ioKind(err), err)
		}
		if _, err := bw.Write(blk); err != nil {
			return n, codec.Digest{}, kerr.E(op, ioKind(err), err)
		}
	}
	if bw == nil {
		return n, fr.Root(), nil
	}
	if err := bw.Flush(); err != nil {
		return n, codec.Digest{}, kerr.E(op, ioKind(err), err)
	}
	return n, fr.Root(), nil
}

func frameKind(err error) kerr.Kind {
	switch {
	case errors.Is(err, codec.ErrCorrupt):
		return kerr.Corrupt
	case errors.Is(err, codec.ErrShortShard), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, codec.ErrInvalid):
		return kerr.Invalid
	}
	return kerr.Transient
}

// syncClose fsyncs and closes f.
func (n *Node) syncClose(f *os.File) error {
	err := n.fsync(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return kerr.E("storagenode.Stage", ioKind(err), err)
	}
	return nil
}

// freeList is a bounded list of reusable buffers. Unlike a sync.Pool it
// survives garbage collections: with small heaps GCs are frequent, and
// profiles showed a pool of stage buffers missing on most stages, each miss
// a block-size (256 KiB) allocation.
type freeList struct{ ch chan []byte }

func newFreeList(n int) freeList { return freeList{ch: make(chan []byte, n)} }

// get returns a buffer of at least n bytes.
func (l freeList) get(n int) []byte {
	select {
	case b := <-l.ch:
		if cap(b) >= n {
			return b[:n]
		}
	default:
	}
	return make([]byte, n)
}

// put returns b to the list, or drops it if the list is full.
func (l freeList) put(b []byte) {
	select {
	case l.ch <- b:
	default:
	}
}
