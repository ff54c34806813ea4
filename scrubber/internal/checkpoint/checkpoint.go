// Package checkpoint is the scrubber's own durable state: named JSON
// values (the pass in progress and its counters), a priority queue of
// objects waiting for repair, and sets of names, all in one badger
// database. It is the only package of the scrubber that imports badger.
//
// checkpoint knows nothing of objects, nodes or passes; it stores what it
// is given. Every write is synced before it returns, so that a scrubber
// killed at any point resumes from its last write. Badger's directory lock
// keeps two scrubbers from sharing one state directory.
//
// Key layout:
//
//	v/<name>                  named value
//	q/<prio:%05d>/<id>        queue entry (lowest prio first, then id order)
//	s/<set>/<id>              set member
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

const (
	prefixValue = "v/"
	prefixQueue = "q/"
	prefixSet   = "s/"
)

// MaxPrio bounds queue priorities: 0..MaxPrio.
const MaxPrio = 99999

// Store is the scrubber's state. It is safe for concurrent use.
type Store struct {
	db *badger.DB
}

// Open opens (creating it if needed) the state in dir; dir "" keeps it in
// memory only, for passes that must not resume (dry runs, tests).
func Open(dir string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Small: the state is a few records plus the repair queue, and the
	// scrubber often shares its process with a gateway and several nodes.
	// Each memtable costs its size in heap (1 MiB keeps the largest value,
	// ValueThreshold, within badger's batch limit of 15% of it).
	// Uncompressed tables are read in place from their mapping, so no
	// block cache is needed; the index cache serves encrypted tables only.
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(dir != "").
		WithInMemory(dir == "").
		WithMemTableSize(1 << 20).
		WithValueThreshold(64 << 10).
		WithNumMemtables(2).
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithIndexCacheSize(0).
		WithValueLogFileSize(16 << 20).
		WithNumCompactors(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(4).
		WithMetricsEnabled(false).
		WithLogger(badgerLogger{logger.With("component", "badger", "dir", dir)}).
		WithLoggingLevel(badger.WARNING)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("checkpoint.Open %s: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Close flushes and closes the state.
func (s *Store) Close() error { return s.db.Close() }

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error(fmt.Sprintf(f, a...)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn(fmt.Sprintf(f, a...)) }
func (badgerLogger) Infof(string, ...any)          {}
func (badgerLogger) Debugf(string, ...any)         {}

// Get decodes the value saved under name into v and reports whether there
// was one.
func (s *Store) Get(name string, v any) (bool, error) {
	found := false
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(prefixValue + name))
		if err != nil {
			return err
		}
		found = true
		return item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
	})
	if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
		return false, fmt.Errorf("checkpoint.Get %s: %w", name, err)
	}
	return found, nil
}

// Put saves v, JSON encoded, under name.
func (s *Store) Put(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("checkpoint.Put %s: %w", name, err)
	}
	if err := s.update(func(txn *badger.Txn) error { return txn.Set([]byte(prefixValue+name), b) }); err != nil {
		return fmt.Errorf("checkpoint.Put %s: %w", name, err)
	}
	return nil
}

// Delete removes the value saved under name.
func (s *Store) Delete(name string) error {
	if err := s.update(func(txn *badger.Txn) error { return txn.Delete([]byte(prefixValue + name)) }); err != nil {
		return fmt.Errorf("checkpoint.Delete %s: %w", name, err)
	}
	return nil
}

// Entry is a queue entry.
type Entry struct {
	Prio  int
	ID    string
	Value []byte // JSON
}

func queueKey(prio int, id string) []byte {
	return []byte(fmt.Sprintf("%s%05d/%s", prefixQueue, prio, id))
}

// Push adds v under (prio, id), replacing an entry with the same pair.
// prio is clamped to 0..MaxPrio.
func (s *Store) Push(prio int, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("checkpoint.Push: %w", err)
	}
	prio = min(max(prio, 0), MaxPrio)
	if err := s.update(func(txn *badger.Txn) error { return txn.Set(queueKey(prio, id), b) }); err != nil {
		return fmt.Errorf("checkpoint.Push: %w", err)
	}
	return nil
}

// Peek returns up to limit entries, lowest priority first.
func (s *Store) Peek(limit int) ([]Entry, error) {
	var out []Entry
	err := s.scan(prefixQueue, func(k string, v []byte) bool {
		rest := strings.TrimPrefix(k, prefixQueue)
		if len(rest) < 6 || rest[5] != '/' {
			return true // not a key Push wrote
		}
		prio, err := strconv.Atoi(rest[:5])
		if err != nil {
			return true
		}
		out = append(out, Entry{Prio: prio, ID: rest[6:], Value: v})
		return len(out) < limit
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint.Peek: %w", err)
	}
	return out, nil
}

// Remove deletes the entry (prio, id).
func (s *Store) Remove(prio int, id string) error {
	if err := s.update(func(txn *badger.Txn) error { return txn.Delete(queueKey(prio, id)) }); err != nil {
		return fmt.Errorf("checkpoint.Remove: %w", err)
	}
	return nil
}

// PutRemoving saves v under name and removes the queue entries done, in
// one transaction: a crash leaves both or neither.
func (s *Store) PutRemoving(name string, v any, done []Entry) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("checkpoint.PutRemoving %s: %w", name, err)
	}
	err = s.update(func(txn *badger.Txn) error {
		for _, e := range done {
			if err := txn.Delete(queueKey(e.Prio, e.ID)); err != nil {
				return err
			}
		}
		return txn.Set([]byte(prefixValue+name), b)
	})
	if err != nil {
		return fmt.Errorf("checkpoint.PutRemoving %s: %w", name, err)
	}
	return nil
}

// Len returns the number of queue entries.
func (s *Store) Len() (int, error) {
	n := 0
	err := s.scan(prefixQueue, func(string, []byte) bool { n++; return true })
	if err != nil {
		return 0, fmt.Errorf("checkpoint.Len: %w", err)
	}
	return n, nil
}

// Mark adds id to set.
func (s *Store) Mark(set, id string) error {
	if err := s.update(func(txn *badger.Txn) error { return txn.Set([]byte(prefixSet+set+"/"+id), nil) }); err != nil {
		return fmt.Errorf("checkpoint.Mark: %w", err)
	}
	return nil
}

// Marked reports whether id is in set.
func (s *Store) Marked(set, id string) (bool, error) {
	err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get([]byte(prefixSet + set + "/" + id))
		return err
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("checkpoint.Marked: %w", err)
}

// Reset empties the queue and every set, keeping named values.
func (s *Store) Reset() error {
	for _, p := range []string{prefixQueue, prefixSet} {
		if err := s.db.DropPrefix([]byte(p)); err != nil {
			return fmt.Errorf("checkpoint.Reset: %w", err)
		}
	}
	return nil
}

// update runs fn in a read-write transaction, retrying on conflicts.
func (s *Store) update(fn func(txn *badger.Txn) error) error {
	for {
		err := s.db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
}

// scan calls fn with every key under prefix and its value, in key order,
// until fn returns false.
func (s *Store) scan(prefix string, fn func(k string, v []byte) bool) error {
	return s.db.View(func(txn *badger.Txn) error {
		o := badger.DefaultIteratorOptions
		o.Prefix = []byte(prefix)
		it := txn.NewIterator(o)
		defer it.Close()
		for it.Seek(o.Prefix); it.ValidForPrefix(o.Prefix); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if !fn(string(it.Item().Key()), v) {
				return nil
			}
		}
		return nil
	})
}
