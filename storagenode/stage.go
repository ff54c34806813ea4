package storagenode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/meta"
)

// maxDrain bounds how much of a failed stage's body the node reads and
// discards so that the client gets the error answer rather than a broken
// connection. Past it the connection is simply closed.
const maxDrain = 32 << 20

// Stage writes one framed shard stream (codec frames of block size
// blockSize), read from body to its end, as a staged, invisible shard of
// version, and answers with its root digest and the newest version the
// node has committed or staged for the key (StagedRef.Newest). Every frame
// is verified as it arrives (a Local client may skip that: see
// LocalOptions.TrustFrames), and the shard is fsynced before Stage
// returns. It does not close body.
//
// Errors are those of client.Client.Stage: a digest mismatch is
// kerr.Corrupt, a stream cut inside a frame kerr.Invalid, a full disk
// kerr.TooLarge, a failing body (or a cancelled ctx) kerr.Transient
// wrapping the cause; on any error nothing is staged. The call is fenced
// (see admit).
func (n *Node) Stage(ctx context.Context, bucket, key, version string, shard, blockSize int, body io.Reader) (client.StagedRef, error) {
	return n.stageCall(ctx, bucket, key, version, shard, blockSize, body, false)
}

// stageCall is Stage; trust skips the check of each block against its
// frame's digest.
func (n *Node) stageCall(ctx context.Context, bucket, key, version string, shard, blockSize int, body io.Reader, trust bool) (client.StagedRef, error) {
	if err := n.admit(ctx, true); err != nil {
		return client.StagedRef{}, err
	}
	if body == nil {
		body = http.NoBody
	}
	if ctx.Done() != nil {
		body = ctxReader{ctx, body}
	}
	ref, err := n.stage(bucket, key, version, shard, blockSize, body, trust)
	if err == nil {
		ref.Newest, err = n.newest(ref.Version, bucket, key)
	}
	if err == nil {
		// Read after the stage: a versioning state stored before the
		// write began is in the answer (docs/versioning.md).
		ref.Bucket, err = n.bucketState(bucket)
	}
	if err != nil {
		return client.StagedRef{}, n.settle(err)
	}
	return ref, nil
}

// ctxReader fails reads once ctx is done, so that a cancelled caller's
// stage stops at the next read of its body, as a cancelled HTTP request's
// does.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
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
func (n *Node) stage(bucket, key, version string, shard, block int, body io.Reader, trust bool) (client.StagedRef, error) {
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
	s := meta.Staged{Bucket: bucket, Key: key, Version: version, Shard: shard, Staged: n.cfg.Now().UTC(), File: rel}
	if n.stageLimit() > 0 {
		staged, rest, done, err := n.stageInline(s, body, block, trust)
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
	size, root, err := n.writeStaged(rel, body, block, trust)
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
func (n *Node) writeStaged(rel string, body io.Reader, block int, trust bool) (int64, codec.Digest, error) {
	const op = "storagenode.Stage"
	f, err := os.OpenFile(n.abs(rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, codec.Digest{}, kerr.E(op, ioKind(err), err)
	}
	bw := n.bufs.Get().(*bufio.Writer)
	bw.Reset(n.wrapStage(f))
	size, root, err := copyFrames(bw, n.blocks, body, block, trust)
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
// written and the root digest. With a nil bw it only verifies. With trust
// it splits the frames without checking blocks against their digests (see
// LocalOptions.TrustFrames); the root is still that of the digests.
// Errors are classified: a digest mismatch is Corrupt, a stream cut inside
// a frame Invalid, a failing body Transient, a failing bw by ioKind.
func copyFrames(bw *bufio.Writer, blocks freeList, r io.Reader, block int, trust bool) (int64, codec.Digest, error) {
	const op = "storagenode.Stage"
	buf := blocks.get(block)
	defer blocks.put(buf)
	var fr frameSource
	if trust {
		fr = &trustedFrames{r: r, buf: buf[:block]}
	} else {
		v := codec.NewFrameReader(r, block)
		v.SetBuffer(buf)
		fr = v
	}
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

// frameSource yields a shard stream's frames: *codec.FrameReader, which
// verifies each block, or trustedFrames, which does not.
type frameSource interface {
	Next() (block []byte, d codec.Digest, err error)
	Root() codec.Digest
}

// trustedFrames splits a framed stream as codec.FrameReader does (blocks
// of len(buf) bytes but a shorter last one) without hashing the blocks:
// for a stream that was framed in this process and never left memory,
// where a second hash of every block finds nothing. The layout is still
// checked: a stream cut inside a digest, or a digest without a block, is
// codec.ErrShortShard.
type trustedFrames struct {
	r       io.Reader
	buf     []byte
	digests []codec.Digest
	done    bool
}

func (t *trustedFrames) Next() ([]byte, codec.Digest, error) {
	var d codec.Digest
	if t.done {
		return nil, d, io.EOF
	}
	switch k, err := io.ReadFull(t.r, d[:]); {
	case k == 0 && err == io.EOF:
		t.done = true
		return nil, d, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, d, fmt.Errorf("frame %d: %w", len(t.digests), codec.ErrShortShard)
	case err != nil:
		return nil, d, err
	}
	k, err := io.ReadFull(t.r, t.buf)
	switch {
	case k == 0 && (err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF)):
		return nil, d, fmt.Errorf("frame %d: %w", len(t.digests), codec.ErrShortShard)
	case errors.Is(err, io.ErrUnexpectedEOF):
		// A short block can only be the last one.
		t.done = true
	case err != nil:
		return nil, d, err
	}
	t.digests = append(t.digests, d)
	return t.buf[:k], d, nil
}

func (t *trustedFrames) Root() codec.Digest { return codec.RootOf(t.digests) }

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
