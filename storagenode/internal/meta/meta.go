// Package meta is a storage node's index: committed object records, staged
// shards, bucket records, repair hints and files awaiting removal, kept in
// one badger database. It is the only package of the project that imports
// badger.
//
// meta stores what it is given and enforces no protocol rule of its own
// beyond "newest bucket version wins"; ordering rules for objects (newest
// version wins, what is committed when) belong to the node, which holds a
// per-key lock around every read-modify-write here. meta never touches shard
// files. Every write is synced to disk before it returns; concurrent writes
// share their syncs (group commit, see DB.update). A record readers act on
// (committed record, delete marker, its drop, staged entry, bucket record)
// is seen by them only once its sync has returned: a read that meets one
// still unsynced waits for that sync (see gate). After a failed sync the
// DB refuses every read and write (DB.Err) until it is reopened.
//
// Key layout (values are JSON of the index's own durable types, which
// convert to and from the node API's types at this package's boundary:
// see durable.go; a change to the wire types never changes these bytes):
//
//	o/<bucket>/<key>                 committed record (badger user meta bit 1: delete marker)
//	s/<keyhash>/<version>/<shard>    staged shard
//	g/<path>                         superseded shard file still to be removed
//	b/<bucket>                       bucket record
//	h/<versionhash>/<shard>          repair hint
//	q/<versionhash>/<shard>          quarantined shard (failed verification)
//	x/<name>                         the node's own state (the verifier's checkpoint)
//	m/map                            the newest cluster map the node was given
//	c/objects                        the object count, as of a clean close (decimal)
//
// Bucket names contain neither '/' nor NUL, so "o/<bucket>/" prefixes never
// overlap and keys within a bucket sort in key order.
package meta

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/flush"
)

// DB is a node's index. It is safe for concurrent use.
type DB struct {
	db      *badger.DB
	dir     string
	flushes flush.Group // syncs of the write-ahead logs, shared by writers
	// rotated holds, per log kind, the name the next log file of that
	// kind will have; only sync (which never overlaps itself) uses it.
	rotated map[string]string
	objects atomic.Int64 // committed keys whose newest version is not a delete marker
	gate    gate         // hides writes from readers until durable; fails for good with a sync
	// syncHook, if set, runs before every sync and a non-nil error
	// fails it; see SetSyncHook.
	syncHook func() error
}

// SetSyncHook makes fn run before every sync of the index: an error it
// returns is that sync's error. Tests use it to make a sync fail or
// block. REQUIRES: no write is in progress.
func (db *DB) SetSyncHook(fn func() error) { db.syncHook = fn }

// Open opens (creating if needed) the index in dir. Logs of the database
// at warning level and above go to logger (nil: slog.Default()).
func Open(dir string, logger *slog.Logger) (*DB, error) {
	const op = "meta.Open"
	if logger == nil {
		logger = slog.Default()
	}
	// Sized for several nodes sharing one process and a small machine:
	// records are small, so tables and caches can be too. An idle
	// `kintsugi dev` holding 30,000 objects kept ~150 MB of badger heap
	// with 8 MiB memtables and block caches; with 2 MiB memtables and
	// uncompressed tables, read in place through badger's mmap without a
	// block cache, it keeps ~40 MB. Tables are ~30% larger.
	//
	// SyncWrites is off because badger syncs the memtable's log once per
	// transaction even when it writes a batch of them: profiles showed ~4
	// msyncs per node per PUT. update syncs instead, once per group of
	// concurrent writers.
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(false).
		WithMemTableSize(2 << 20).
		WithValueThreshold(256 << 10).
		WithNumMemtables(2).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(8).
		WithMetricsEnabled(false).
		WithLogger(badgerLogger{logger.With("component", "badger", "dir", dir)}).
		WithLoggingLevel(badger.WARNING)
	bdb, err := badger.Open(opts)
	if err != nil {
		return nil, kerr.E(op, kerr.Internal, err)
	}
	db := &DB{db: bdb, dir: dir}
	db.gate.changed = sync.NewCond(&db.gate.mu)
	if err := db.loadObjects(); err != nil {
		bdb.Close()
		return nil, kerr.E(op, err)
	}
	return db, nil
}

// Close records the object count and closes the database.
func (db *DB) Close() error {
	err := db.update(func(txn *badger.Txn) error {
		return txn.Set(countKey, strconv.AppendInt(nil, db.objects.Load(), 10))
	})
	if err := errors.Join(err, db.db.Close()); err != nil {
		return kerr.E("meta.Close", kerr.Internal, err)
	}
	return nil
}

// GC reclaims space in the value log. It is cheap when there is nothing to
// do; the node calls it from its background loop.
func (db *DB) GC() {
	for db.db.RunValueLogGC(0.5) == nil {
	}
}

// badgerLogger sends badger's warnings and errors to slog and drops the rest.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn(fmt.Sprintf(f, a...)) }
func (badgerLogger) Infof(string, ...any)          {}
func (badgerLogger) Debugf(string, ...any)         {}

// update runs fn in a read-write transaction, retrying when a concurrent
// transaction wins a conflict on a key fn read, and returns once the
// transaction is durable. Writes that readers act on use updateHeld.
func (db *DB) update(fn func(txn *badger.Txn) error) error {
	return db.updateHeld(nil, fn)
}

// Err returns nil, or, once a sync of the index has failed, an error
// saying so: from then on every read and write of db fails. The caller
// must stop serving until it is reopened.
func (db *DB) Err() error { return db.gate.err() }

// sync makes every transaction that has returned from Update durable.
//
// badger's Sync covers the current memtable's log and the current value
// log file. It does not cover the log of a memtable that was full and is
// waiting to become a table, nor (with SyncWrites off) a value log file
// badger moved on from: a transaction written just before such a switch
// would be reported durable while its pages were still dirty. So sync also
// fsyncs every older log file in the directory. Usually there is none:
// memtables switch every few MiB of index writes, value logs only fill
// with values above the value threshold (large multipart manifests). fsync
// covers the pages badger writes through mmap. A file removed meanwhile
// was flushed to a synced table first (or garbage collected), so a missing
// file is not an error.
func (db *DB) sync() error {
	if db.syncHook != nil {
		if err := db.syncHook(); err != nil {
			return err
		}
	}
	if err := db.db.Sync(); err != nil {
		return err
	}
	if db.rotated == nil {
		db.rotated = make(map[string]string)
	}
	for _, ext := range []string{".mem", ".vlog"} {
		// Listing the directory on every sync cost a tenth of a small
		// PUT's CPU; a stat of the next log's name tells whether badger
		// switched files since the last look.
		if next := db.rotated[ext]; next != "" {
			if _, err := os.Stat(next); errors.Is(err, fs.ErrNotExist) {
				continue
			}
		}
		logs, err := filepath.Glob(filepath.Join(db.dir, "*"+ext))
		if err != nil {
			return err
		}
		// Names are zero-padded file ids, so the sorted last one is the
		// current file badger's Sync has covered.
		for _, name := range logs[:max(len(logs)-1, 0)] {
			if err := syncFile(name); err != nil {
				return err
			}
		}
		if len(logs) > 0 {
			db.rotated[ext] = nextLog(logs[len(logs)-1], ext)
		}
	}
	return nil
}

// nextLog returns the name of the log file after name: the same
// zero-padded width, the id one higher. A name it cannot parse gives "",
// which never exists, so that the next sync lists the directory again.
func nextLog(name, ext string) string {
	dir, base := filepath.Split(name)
	digits := strings.TrimSuffix(base, ext)
	id, err := strconv.ParseUint(digits, 10, 32)
	if err != nil {
		return ""
	}
	return filepath.Join(dir, fmt.Sprintf("%0*d%s", len(digits), id+1, ext))
}

// syncFile fsyncs the file name; a file that is gone is not an error.
func syncFile(name string) error {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// scan calls fn for every item whose key starts with prefix, from the first
// key >= start, in key order, until fn returns false or an error.
func (db *DB) scan(prefix, start []byte, keysOnly bool, fn func(item *badger.Item) (bool, error)) error {
	return db.db.View(func(txn *badger.Txn) error {
		return scanTxn(txn, prefix, start, keysOnly, fn)
	})
}

func scanTxn(txn *badger.Txn, prefix, start []byte, keysOnly bool, fn func(item *badger.Item) (bool, error)) error {
	o := badger.DefaultIteratorOptions
	o.Prefix = prefix
	o.PrefetchValues = !keysOnly
	if !keysOnly {
		o.PrefetchSize = 64
	}
	it := txn.NewIterator(o)
	defer it.Close()
	if start == nil {
		start = prefix
	}
	for it.Seek(start); it.ValidForPrefix(prefix); it.Next() {
		more, err := fn(it.Item())
		if err != nil || !more {
			return err
		}
	}
	return nil
}
