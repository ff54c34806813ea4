package storagenode

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/zeebo/blake3"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

const (
	shardsDir  = "shards"
	stagingDir = "staging"
)

// fileBase is the name every file of shard i of a version starts with:
// hex(blake3(bucket NUL key NUL version)) "." i. Bucket names hold no NUL
// and versions have a fixed width, so distinct names never share a base.
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

// stagingFile returns a new, unique staging file name for shard i of a
// version, relative to the data directory.
func stagingFile(bucket, key, version string, shard int) string {
	base := fileBase(bucket, key, version, shard)
	var nonce [8]byte
	rand.Read(nonce[:])
	return filepath.Join(fanout(stagingDir, base), base+"."+hex.EncodeToString(nonce[:]))
}

// abs turns a path relative to the data directory into an absolute one.
func (n *Node) abs(rel string) string { return filepath.Join(n.dir, rel) }

// mkdirs creates the fan-out directories of rel (a file path relative to
// the data directory) as needed, fsyncing the parent of every directory it
// creates so that a crash cannot lose the way to a file fsynced inside it.
func (n *Node) mkdirs(rel string) error {
	var chain []string // rel's directories, innermost first
	for d := filepath.Dir(rel); d != "."; d = filepath.Dir(d) {
		chain = append(chain, d)
	}
	parent := n.dir
	for i := len(chain) - 1; i >= 0; i-- {
		d := n.abs(chain[i])
		switch err := os.Mkdir(d, 0o755); {
		case err == nil:
			if err := syncDir(parent); err != nil {
				return err
			}
		case !errors.Is(err, fs.ErrExist):
			return err
		}
		parent = d
	}
	return nil
}

// syncDir fsyncs a directory, making the entries created or renamed in it
// durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeFile removes a file relative to the data directory. A file that is
// already gone is not an error: removals are retried by Sweep and may race.
func (n *Node) removeFile(rel string) (bool, error) {
	err := os.Remove(n.abs(rel))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
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
