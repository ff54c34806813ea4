package meta

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// An inline file is a small shard kept in the index instead of the file
// system, under the relative path its file would have had (staging or
// committed). A stage then costs one synced index write instead of a file
// create, an fsync, a directory fsync and an index write, and a commit
// moves it in the same transaction as the record: profiles of 4 KiB PUTs
// showed file creation, mkdir and fsync taking over half the node's CPU.
//
// The node decides which shards are inline; everything that removes,
// renames or reads a shard by path looks at both places.

const prefixBlob = "f/"

func blobKey(path string) []byte { return []byte(prefixBlob + path) }

// Move names an inline file to be renamed within a transaction. The zero
// Move renames nothing.
type Move struct{ From, To string }

func (m Move) apply(txn *badger.Txn) error {
	if m.From == "" {
		return nil
	}
	item, err := txn.Get(blobKey(m.From))
	if errors.Is(err, badger.ErrKeyNotFound) {
		// Renamed by an earlier transaction whose caller failed later.
		if _, err := txn.Get(blobKey(m.To)); err == nil {
			return nil
		}
		return fmt.Errorf("inline file %s: %w", m.From, errNoBlob)
	}
	if err != nil {
		return err
	}
	data, err := item.ValueCopy(nil)
	if err != nil {
		return err
	}
	if err := txn.Set(blobKey(m.To), data); err != nil {
		return err
	}
	return txn.Delete(blobKey(m.From))
}

var errNoBlob = errors.New("no such inline file")

// Blob returns the contents of the inline file path, or ok false if there
// is none.
func (db *DB) Blob(path string) (data []byte, ok bool, err error) {
	err = db.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(blobKey(path))
		if err != nil {
			return err
		}
		data, err = item.ValueCopy(nil)
		return err
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, kerr.E("meta.Blob", kerr.Internal, err)
	}
	return data, true, nil
}

// HasBlob reports whether the inline file path exists.
func (db *DB) HasBlob(path string) (bool, error) {
	err := db.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(blobKey(path))
		return err
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	case err != nil:
		return false, kerr.E("meta.HasBlob", kerr.Internal, err)
	}
	return true, nil
}

// DeleteBlob removes the inline file path and reports whether there was
// one. A missing file costs no write.
func (db *DB) DeleteBlob(path string) (bool, error) {
	const op = "meta.DeleteBlob"
	switch ok, err := db.HasBlob(path); {
	case err != nil:
		return false, kerr.E(op, err)
	case !ok:
		return false, nil
	}
	if err := db.update(func(txn *badger.Txn) error { return txn.Delete(blobKey(path)) }); err != nil {
		return false, kerr.E(op, kerr.Internal, err)
	}
	return true, nil
}

// PutStagedInline records s, as PutStaged, and stores data as the inline
// file s.File in the same transaction.
func (db *DB) PutStagedInline(s Staged, data []byte) (*Staged, error) {
	const op = "meta.PutStagedInline"
	s.Inline = true
	val, err := json.Marshal(s)
	if err != nil {
		return nil, kerr.E(op, kerr.Internal, err)
	}
	var prev *Staged
	err = db.update(func(txn *badger.Txn) error {
		prev = nil
		k := stagedKey(s.Bucket, s.Key, s.Version, s.Shard)
		switch item, err := txn.Get(k); {
		case err == nil:
			prev = new(Staged)
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, prev) }); err != nil {
				return err
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		if err := txn.Set(blobKey(s.File), data); err != nil {
			return err
		}
		return txn.Set(k, val)
	})
	if err != nil {
		return nil, kerr.E(op, kerr.Internal, err)
	}
	return prev, nil
}

// PutQuarantinedInline records q, as PutQuarantined, and moves the inline
// file from to q.File in the same transaction.
func (db *DB) PutQuarantinedInline(q Quarantined, from string) error {
	const op = "meta.PutQuarantinedInline"
	val, err := json.Marshal(q)
	if err != nil {
		return kerr.E(op, kerr.Internal, err)
	}
	err = db.update(func(txn *badger.Txn) error {
		if err := (Move{From: from, To: q.File}).apply(txn); err != nil {
			return err
		}
		return txn.Set(quarantineKey(q.Bucket, q.Key, q.Version, q.Shard), val)
	})
	if err != nil {
		return kerr.E(op, kerr.Internal, err)
	}
	return nil
}

// WriteBlob replaces the bytes of the inline file path. The node never
// rewrites a shard in place; tests use it to damage one.
func (db *DB) WriteBlob(path string, data []byte) error {
	if err := db.update(func(txn *badger.Txn) error { return txn.Set(blobKey(path), data) }); err != nil {
		return kerr.E("meta.WriteBlob", kerr.Internal, err)
	}
	return nil
}

// ScanBlobs calls fn with the path of every inline file, in path order.
func (db *DB) ScanBlobs(fn func(path string)) error {
	err := db.scan([]byte(prefixBlob), nil, true, func(item *badger.Item) (bool, error) {
		fn(string(item.Key()[len(prefixBlob):]))
		return true, nil
	})
	if err != nil {
		return kerr.E("meta.ScanBlobs", kerr.Internal, err)
	}
	return nil
}
