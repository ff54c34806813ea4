package storagenode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/kintsugi-store/kintsugi/internal/clock"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/meta"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/pack"
)

// stageBuffers is how many stage block buffers a node keeps for reuse.
const stageBuffers = 16

// Node is a storage node. Its methods are safe for concurrent use.
type Node struct {
	cfg Config
	log *slog.Logger
	dir string // absolute data directory
	db  *meta.DB
	// packs holds shards too large to be inline in db but at most
	// Config.PackMax, back to back in shared files (see stageInline).
	packs *pack.Store
	mux   http.Handler
	seed  maphash.Seed
	// locks serialise read-modify-writes of one key's entries; a key
	// always maps to the same stripe.
	locks [256]sync.Mutex

	// dirs memoises the fan-out directories (relative paths) known to
	// exist durably; see mkdirs.
	dirs sync.Map
	// syncing holds the directories being fsynced now, so that concurrent
	// stages and commits in one directory share an fsync.
	syncMu  sync.Mutex
	syncing map[string]*dirSync

	// blocks holds the block buffers of stages: at most stageBuffers of
	// them stay allocated while idle (4 MiB at the default block size).
	blocks freeList

	// bufs holds the write buffers of stages. Blocks as large as a buffer
	// bypass it, so it only needs to coalesce small frames.
	bufs sync.Pool
	// inline holds the read buffers of stages that may be inline
	// (*inlineBuf, Config.InlineMax+1 bytes).
	inline sync.Pool

	// stageWriter, if set, wraps the file a stage writes to; tests use it
	// to inject write errors such as a full disk.
	stageWriter func(io.Writer) io.Writer
	// fsyncHook, if set, replaces (*os.File).Sync for the node's shard
	// files and directories; tests use it to make an fsync fail or block.
	fsyncHook func(*os.File) error

	scrub scrubState // the background verifier

	metrics *nodeMetrics // nil: none

	// failed holds the error of the first failed fsync of a shard file or
	// directory (see fail); the index keeps its own (meta.DB.Err).
	failed atomic.Pointer[error]

	stop      context.CancelFunc
	loopDone  chan struct{}
	closeOnce sync.Once
	closeErr  error

	// epoch is the stored cluster map's epoch (0: none), which fenced
	// calls are checked against (see fence.go).
	epoch atomic.Uint64

	raft raftHook // the Raft-held map, if the process runs a member (raft.go)
}

// Open opens the node whose data lives in cfg.Dir, creating the directory
// and its meta/, shards/ and staging/ subdirectories if needed, and starts
// the background sweep if cfg.SweepInterval > 0 and the background
// verifier if cfg.ScrubRate > 0.
func Open(cfg Config) (*Node, error) {
	const op = "storagenode.Open"
	if err := cfg.Validate(); err != nil {
		return nil, kerr.E(op, err)
	}
	cfg = cfg.withDefaults()
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, kerr.E(op, kerr.Invalid, err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "meta"), filepath.Join(dir, shardsDir), filepath.Join(dir, stagingDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, kerr.E(op, ioKind(err), err)
		}
	}
	log := cfg.Logger.With("node", cfg.ID)
	db, err := meta.Open(filepath.Join(dir, "meta"), log)
	if err != nil {
		return nil, kerr.E(op, err)
	}
	packs, err := pack.Open(filepath.Join(dir, packsDir), cfg.PackFileSize)
	if err != nil {
		db.Close()
		return nil, kerr.E(op, ioKind(err), err)
	}
	n := &Node{
		packs:    packs,
		cfg:      cfg,
		log:      log,
		dir:      dir,
		db:       db,
		seed:     maphash.MakeSeed(),
		syncing:  make(map[string]*dirSync),
		blocks:   newFreeList(stageBuffers),
		loopDone: make(chan struct{}),
	}
	if err := n.loadEpoch(); err != nil {
		db.Close()
		packs.Close()
		return nil, kerr.E(op, err)
	}
	if err := n.prepareDirs(); err != nil {
		db.Close()
		packs.Close()
		return nil, kerr.E(op, ioKind(err), err)
	}
	if n.metrics, err = newNodeMetrics(cfg.Registerer, n); err != nil {
		db.Close()
		packs.Close()
		return nil, kerr.E(op, kerr.Internal, err)
	}
	packs.SetSync(n.fsync)
	n.bufs.New = func() any { return bufio.NewWriterSize(nil, 64<<10) }
	n.inline.New = func() any { return new(inlineBuf) }
	n.mux = n.routes()
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	if cfg.SweepInterval > 0 {
		go n.sweepLoop(ctx)
	} else {
		close(n.loopDone)
	}
	n.startScrub(ctx)
	return n, nil
}

// Handler returns the node's HTTP API.
func (n *Node) Handler() http.Handler { return n.mux }

// Close stops the background sweep and verifier, checkpoints the
// verifier and closes the index. Requests still in
// flight fail; callers shut their http.Server down first.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.stop()
		<-n.loopDone
		<-n.scrub.done
		if err := n.saveScrub(); err != nil {
			n.log.Warn("checkpointing the verifier", "err", err)
		}
		n.closeErr = errors.Join(n.db.Close(), n.packs.Close())
	})
	return n.closeErr
}

// fail stops the node for good after a failed fsync. The kernel may have
// dropped the dirty pages it could not write and marked them clean, so
// what the node would read back, or believes durable, can no longer be
// trusted: it refuses every call (see failure) until a restart checks the
// index and files again. It never exits or panics: other nodes and a
// gateway may share the process.
func (n *Node) fail(err error) {
	if n.failed.CompareAndSwap(nil, &err) {
		n.log.Error("fsync failed: refusing every call until restarted", "err", err)
	}
}

// failure returns nil, or, once an fsync of the node's files, directories
// or index has failed, the Unavailable error every call gets from then on.
func (n *Node) failure() error {
	cause := n.db.Err()
	if p := n.failed.Load(); p != nil {
		cause = *p
	}
	if cause == nil {
		return nil
	}
	return kerr.E("storagenode", kerr.Unavailable,
		fmt.Errorf("node %s stopped after a failed fsync and needs a restart: %w", n.cfg.ID, cause))
}

// lock locks bucket/key's stripe and returns its unlock.
func (n *Node) lock(bucket, key string) func() {
	var h maphash.Hash
	h.SetSeed(n.seed)
	h.WriteString(bucket)
	h.WriteByte(0)
	h.WriteString(key)
	mu := &n.locks[h.Sum64()%uint64(len(n.locks))]
	mu.Lock()
	return mu.Unlock
}

func (n *Node) sweepLoop(ctx context.Context) {
	defer close(n.loopDone)
	clock.Every(ctx, n.cfg.After, n.cfg.SweepInterval, func() {
		removed, err := n.Sweep(ctx, n.cfg.Now())
		if err != nil && ctx.Err() == nil {
			n.log.Error("sweep failed", "err", err)
		} else if removed > 0 {
			n.log.Info("sweep", "removed", removed)
		}
		n.db.GC()
	})
}
