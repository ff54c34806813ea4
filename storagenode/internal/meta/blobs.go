package meta

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/segmentio/encoding/json"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/pack"
)

// An inline file is a small shard kept in the index instead of the file
// system, under the relative path its file would have had (staging or
// committed). A stage then costs one synced index write instead of a file
// create, an fsync, a directory fsync and an index write, and a commit
// moves it in the same transaction as the record: profiles of 4 KiB PUTs
// showed file creation, mkdir and fsync taking over half the node's CPU.
//
// A mid-size shard's entry holds instead where it lies in a pack file
// (storagenode/internal/pack), marked by packBit in the entry's user meta;
// renaming it then moves 20 bytes, not the shard.
//
// The node decides which shards are inline or packed; everything that
// removes, renames or reads a shard by path looks in the index first.

const prefixBlob = "f/"

const packBit byte = 2

// Blob is an inline file: its bytes, or where in a pack they are.
type Blob struct {
	Data   []byte // nil if Packed
	Packed bool
	Loc    pack.Loc
}

func (b Blob) entry(k []byte) *badger.Entry {
	if b.Packed {
		return badger.NewEntry(k, pack.AppendLoc(nil, b.Loc)).WithMeta(packBit)
	}
	return badger.NewEntry(k, b.Data)
}

func readBlob(item *badger.Item) (Blob, error) {
	v, err := item.ValueCopy(nil)
	if err != nil {
		return Blob{}, err
	}
	if item.UserMeta()&packBit == 0 {
		return Blob{Data: v}, nil
	}
	loc, err := pack.ParseLoc(v)
	if err != nil {
		return Blob{}, fmt.Errorf("inline file %s: %w", item.Key()[len(prefixBlob):], err)
	}
	return Blob{Packed: true, Loc: loc}, nil
}

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
	if err := txn.SetEntry(badger.NewEntry(blobKey(m.To), data).WithMeta(item.UserMeta())); err != nil {
		return err
	}
	return txn.Delete(blobKey(m.From))
}

var errNoBlob = errors.New("no such inline file")

// Blob returns the inline file path, or ok false if there is none.
func (db *DB) Blob(path string) (b Blob, ok bool, err error) {
	err = db.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(blobKey(path))
		if err != nil {
			return err
		}
		b, err = readBlob(item)
		return err
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return Blob{}, false, nil
	case err != nil:
		return Blob{}, false, kerr.E("meta.Blob", kerr.Internal, err)
	}
	return b, true, nil
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

// PutStagedInline records s, as PutStaged, and stores b as the inline
// file s.File in the same transaction.
func (db *DB) PutStagedInline(s Staged, b Blob) (*Staged, error) {
	s.Inline = true
	prev, err := db.putStaged(s, &b)
	if err != nil {
		return nil, kerr.E("meta.PutStagedInline", kerr.Internal, err)
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

// ScanPacked calls fn with the path and location of every packed inline
// file, in path order.
func (db *DB) ScanPacked(fn func(path string, loc pack.Loc)) error {
	err := db.scan([]byte(prefixBlob), nil, false, func(item *badger.Item) (bool, error) {
		if item.UserMeta()&packBit == 0 {
			return true, nil
		}
		b, err := readBlob(item)
		if err != nil {
			return false, err
		}
		fn(string(item.Key()[len(prefixBlob):]), b.Loc)
		return true, nil
	})
	if err != nil {
		return kerr.E("meta.ScanPacked", kerr.Internal, err)
	}
	return nil
}

// ReplaceLoc points the packed file path at to instead of from, if it
// still points at from, and reports whether it did.
func (db *DB) ReplaceLoc(path string, from, to pack.Loc) (bool, error) {
	done := false
	err := db.update(func(txn *badger.Txn) error {
		done = false
		item, err := txn.Get(blobKey(path))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		b, err := readBlob(item)
		if err != nil || !b.Packed || b.Loc != from {
			return err
		}
		done = true
		return txn.SetEntry(Blob{Packed: true, Loc: to}.entry(blobKey(path)))
	})
	if err != nil {
		return false, kerr.E("meta.ReplaceLoc", kerr.Internal, err)
	}
	return done, nil
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
