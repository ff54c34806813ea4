package meta

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// gate keeps the records of a write from its readers until the write is
// durable. badger makes a transaction visible when it commits, and the
// index is synced after that (shared by concurrent writers, see update),
// so a reader could otherwise serve, or roll forward on other nodes, a
// record that a crash a moment later loses.
//
// A writer holds the keys it writes from before its transaction commits
// until its sync returns; a reader reads, then asks whether any key it
// read (or, for a scan, any key under its prefix) is held, and if so
// waits for the release and reads again. Holding before the commit and
// checking after the read means a reader that saw a write also sees it
// held, until it is durable.
//
// INVARIANT: once a sync has failed, failed is set before any held key is
// released, and stays set: every later read and write is refused.
type gate struct {
	held atomic.Int64 // keys held now; readers skip the lock when zero
	dead atomic.Bool  // failed is set; every call checks it without the lock

	mu      sync.Mutex
	changed *sync.Cond // on mu: a key was released or the gate failed; set by Open
	keys    map[string]int
	failed  error
}

// errFailed wraps the failed sync's error for every later call.
// REQUIRES: g.mu.
func (g *gate) errFailed() error {
	return kerr.E("meta.sync", kerr.Unavailable, fmt.Errorf("index sync failed, the node needs a restart: %w", g.failed))
}

// hold marks keys as written but not yet durable.
func (g *gate) hold(keys [][]byte) {
	if len(keys) == 0 {
		return
	}
	g.mu.Lock()
	if g.keys == nil {
		g.keys = make(map[string]int)
	}
	for _, k := range keys {
		g.keys[string(k)]++
	}
	g.held.Add(int64(len(keys)))
	g.mu.Unlock()
}

// release ends hold(keys): syncErr is the sync's result. A failed sync
// fails the gate for good: the kernel may have dropped what it could not
// write, so nothing in memory can be trusted to be on disk any more.
func (g *gate) release(keys [][]byte, syncErr error) {
	if len(keys) == 0 && syncErr == nil {
		return
	}
	g.mu.Lock()
	if syncErr != nil && g.failed == nil {
		g.failed = syncErr
		g.dead.Store(true)
	}
	for _, k := range keys {
		if g.keys[string(k)]--; g.keys[string(k)] <= 0 {
			delete(g.keys, string(k))
		}
	}
	g.held.Add(-int64(len(keys)))
	g.changed.Broadcast()
	g.mu.Unlock()
}

// err returns the gate's failure, if any.
func (g *gate) err() error {
	if !g.dead.Load() {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failed != nil {
		return g.errFailed()
	}
	return nil
}

// settle is called after a read: it reports whether a key the read may
// have seen was held (it then waits for its release, and the caller reads
// again), or the gate's failure. key matches exact keys, prefix any key
// it starts; either may be nil.
func (g *gate) settle(key, prefix []byte) (again bool, err error) {
	if g.held.Load() == 0 {
		return false, g.err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		if g.failed != nil {
			return false, g.errFailed()
		}
		busy := false
		if key != nil && g.keys[string(key)] > 0 {
			busy = true
		}
		if prefix != nil && !busy {
			for k := range g.keys {
				if strings.HasPrefix(k, string(prefix)) {
					busy = true
					break
				}
			}
		}
		if !busy {
			return again, nil
		}
		again = true
		g.changed.Wait()
	}
}

// updateHeld is update for writes a reader can act on: keys, every key fn
// may write that readers look at, stay hidden from readers (see gate)
// until the transaction is durable.
func (db *DB) updateHeld(keys [][]byte, fn func(txn *badger.Txn) error) error {
	if err := db.gate.err(); err != nil {
		return err
	}
	db.gate.hold(keys)
	var syncErr error
	defer func() { db.gate.release(keys, syncErr) }()
	for {
		err := db.db.Update(fn)
		if errors.Is(err, badger.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		syncErr = db.flushes.Do(db.sync)
		return syncErr
	}
}

// view runs fn in a read-only transaction and again, after waiting, for as
// long as a write of key (or of a key under prefix) that fn may have seen
// is not yet durable. fn must reset what it collects on every run.
func (db *DB) view(key, prefix []byte, fn func(txn *badger.Txn) error) error {
	for {
		// Not finding the key is a reading too: a delete may be the
		// write not yet durable.
		err := db.db.View(fn)
		if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		again, serr := db.gate.settle(key, prefix)
		if serr != nil {
			return serr
		}
		if !again {
			return err
		}
	}
}
