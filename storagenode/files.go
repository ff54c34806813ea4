package storagenode

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/zeebo/blake3"

	"github.com/kintsugi-store/kintsugi/internal/atomicfile"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/flush"
)

const (
	shardsDir  = "shards"
	stagingDir = "staging"
	packsDir   = "packs"
)

// fileBase is the name every file of shard i of a version starts with:
// hex(blake3(bucket NUL key NUL version)) "." i. Bucket names and
// versions hold no NUL, so distinct names never share a base.
func fileBase(bucket, key, version string, shard int) string {
	h := blake3.New()
	h.WriteString(bucket)
	h.WriteString("\x00")
	h.WriteString(key)
	h.WriteString("\x00")
	h.WriteString(version)
	var sum [32]byte
	return hex.EncodeToString(h.Sum(sum[:0])) + "." + strconv.Itoa(shard)
}

// fanout returns the two fan-out directories of a file base, relative to
// root ("shards" or "staging").
func fanout(root, base string) string { return filepath.Join(root, base[:2], base[2:4]) }

// shardFile is the committed shard file of shard i of a version, relative
// to the data directory.
func shardFile(bucket, key, version string, shard int) string {
	base := fileBase(bucket, key, version, shard)
	return filepath.Join(fanout(shardsDir, base), base)
}

// versionFilePrefix is what the committed shard file of every shard index
// of a version starts with; the index follows it.
func versionFilePrefix(bucket, key, version string) string {
	f := shardFile(bucket, key, version, 0)
	return f[:len(f)-1]
}

// stagingFile returns a new, unique staging file name for shard i of a
// version, relative to the data directory. Staged files live for seconds,
// so staging/ is flat: a stage never creates a directory, and concurrent
// stages share the fsyncs of that one directory (see Node.syncDir).
// Staging directories of the earlier two-level layout are still swept.
func stagingFile(bucket, key, version string, shard int) string {
	base := fileBase(bucket, key, version, shard)
	var nonce [8]byte
	rand.Read(nonce[:])
	return filepath.Join(stagingDir, base+"."+hex.EncodeToString(nonce[:]))
}

// abs turns a path relative to the data directory into an absolute one.
func (n *Node) abs(rel string) string { return filepath.Join(n.dir, rel) }

// mkdirs creates the fan-out directories of rel (a file path relative to
// the data directory) as needed, fsyncing the parent of every directory it
// creates so that a crash cannot lose the way to a file fsynced inside it.
//
// Directories are never removed, so one that is known durable is never
// looked at again: without that memo every stage and commit paid up to four
// mkdir calls, and ext4's mkdir under a busy journal was a third of PUT CPU.
// A directory found to exist but not yet in the memo may have been created
// by a concurrent caller (or an earlier process) whose parent fsync is still
// to come, so its parent is fsynced before the memo records it.
func (n *Node) mkdirs(rel string) error {
	if _, ok := n.dirs.Load(filepath.Dir(rel)); ok {
		return nil
	}
	var chain []string // rel's directories, innermost first
	for d := filepath.Dir(rel); d != "."; d = filepath.Dir(d) {
		chain = append(chain, d)
	}
	parent := n.dir
	for i := len(chain) - 1; i >= 0; i-- {
		d := n.abs(chain[i])
		if _, ok := n.dirs.Load(chain[i]); !ok {
			if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			if err := n.syncDir(parent); err != nil {
				return err
			}
			n.dirs.Store(chain[i], struct{}{})
		}
		parent = d
	}
	return nil
}

// prepareDirs creates the first fan-out level under shards/ and makes it
// and the node's top-level directories durable, so that a young node's
// commits create at most one directory each rather than two. The second
// level (65,536 directories) is left to mkdirs: created up front, it would
// cost a quarter GiB of directory blocks on an empty node.
func (n *Node) prepareDirs() error {
	for i := range 256 {
		err := os.Mkdir(n.abs(filepath.Join(shardsDir, fmt.Sprintf("%02x", i))), 0o755)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	// Entries an earlier process created may not be durable yet, so the
	// parents are synced on every open, not only when something was created.
	if err := syncDir(n.abs(shardsDir)); err != nil {
		return err
	}
	if err := syncDir(n.dir); err != nil {
		return err
	}
	n.dirs.Store(shardsDir, struct{}{})
	n.dirs.Store(stagingDir, struct{}{})
	for i := range 256 {
		n.dirs.Store(filepath.Join(shardsDir, fmt.Sprintf("%02x", i)), struct{}{})
	}
	return nil
}

// syncDir fsyncs a directory, making the entries created or renamed in it
// durable. Concurrent calls for one directory share fsyncs: concurrent
// stages in one directory, and the renames of concurrent commits.
func (n *Node) syncDir(dir string) error {
	n.syncMu.Lock()
	g := n.syncing[dir]
	if g == nil {
		g = new(dirSync)
		n.syncing[dir] = g
	}
	g.users++ // under syncMu: an entry in use is never dropped
	n.syncMu.Unlock()

	err := g.Do(func() error { return n.syncDirNow(dir) })

	n.syncMu.Lock()
	if g.users--; g.users == 0 {
		// Idle: forget it, so that the map holds only directories being
		// synced now rather than every directory ever synced.
		delete(n.syncing, dir)
	}
	n.syncMu.Unlock()
	return err
}

// dirSync is the flush group of one directory.
type dirSync struct {
	flush.Group
	users int // callers holding it; guarded by Node.syncMu
}

// syncDir fsyncs a directory.
func syncDir(dir string) error { return atomicfile.SyncDir(dir) }

// syncDirNow fsyncs a directory through n.fsync.
func (n *Node) syncDirNow(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = n.fsync(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// fsync fsyncs f, or calls the test hook in its place. A failure stops
// the node (see fail).
func (n *Node) fsync(f *os.File) error {
	var err error
	start := time.Now()
	if n.fsyncHook != nil {
		err = n.fsyncHook(f)
	} else {
		err = f.Sync()
	}
	n.metrics.observeFsync(time.Since(start))
	if err != nil {
		err = fmt.Errorf("fsync %s: %w", f.Name(), err)
		n.fail(err)
	}
	return err
}

// ioKind classifies a local I/O error: a full disk (or quota) is TooLarge,
// anything else Internal.
func ioKind(err error) kerr.Kind {
	if diskFull(err) {
		return kerr.TooLarge
	}
	return kerr.Internal
}

func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
