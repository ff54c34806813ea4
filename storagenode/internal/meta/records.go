package meta

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Objects returns the number of keys whose committed record is not a delete
// marker.
func (db *DB) Objects() int64 { return db.objects.Load() }

func (db *DB) countObjects() error {
	var n int64
	err := db.scan([]byte(prefixObject), nil, true, func(item *badger.Item) (bool, error) {
		if item.UserMeta()&markerBit == 0 {
			n++
		}
		return true, nil
	})
	if err != nil {
		return kerr.E("meta.countObjects", kerr.Internal, err)
	}
	db.objects.Store(n)
	return nil
}

// Record returns the committed record of bucket/key, or nil if there is none.
func (db *DB) Record(bucket, key string) (*client.Record, error) {
	const op = "meta.Record"
	var rec *client.Record
	err := db.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(objectKey(bucket, key))
		if err != nil {
			return err
		}
		rec = new(client.Record)
		return item.Value(func(v []byte) error { return json.Unmarshal(v, rec) })
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return nil, nil
	case err != nil:
		return nil, kerr.E(op, kerr.Internal, err)
	}
	return rec, nil
}

// Commit, in one synced transaction, makes rec the committed record of its
// key, deletes the staged entries drop and, if garbage is not empty,
// remembers that file (a path relative to the node's directory) as one to
// remove. REQUIRES: the caller holds the key's lock and has checked that rec
// is newer than the key's current record.
func (db *DB) Commit(rec client.Record, drop []Staged, garbage string) error {
	const op = "meta.Commit"
	val, err := json.Marshal(rec)
	if err != nil {
		return kerr.E(op, kerr.Internal, err)
	}
	var delta int64
	err = db.update(func(txn *badger.Txn) error {
		delta = 0
		k := objectKey(rec.Bucket, rec.Key)
		switch item, err := txn.Get(k); {
		case err == nil:
			if item.UserMeta()&markerBit == 0 {
				delta--
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		e := badger.NewEntry(k, val)
		if rec.Deleted {
			e = e.WithMeta(markerBit)
		} else {
			delta++
		}
		if err := txn.SetEntry(e); err != nil {
			return err
		}
		for _, s := range drop {
			if err := txn.Delete(stagedKey(s.Bucket, s.Key, s.Version, s.Shard)); err != nil {
				return err
			}
		}
		if garbage != "" {
			return txn.Set(garbageKey(garbage), nil)
		}
		return nil
	})
	if err != nil {
		return kerr.E(op, kerr.Internal, err)
	}
	db.objects.Add(delta)
	return nil
}

// List returns up to limit committed records of bucket whose keys have
// prefix and are greater than after, in key order, and whether more follow.
func (db *DB) List(bucket, prefix, after string, limit int) ([]client.Record, bool, error) {
	const op = "meta.List"
	p := objectKey(bucket, prefix)
	start := p
	// after+"\x00" is the least key greater than after.
	if a := objectKey(bucket, after+"\x00"); after != "" && strings.Compare(string(a), string(p)) > 0 {
		start = a
	}
	recs := []client.Record{}
	truncated := false
	err := db.scan(p, start, false, func(item *badger.Item) (bool, error) {
		if len(recs) == limit {
			truncated = true
			return false, nil
		}
		var rec client.Record
		if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &rec) }); err != nil {
			return false, err
		}
		recs = append(recs, rec)
		return true, nil
	})
	if err != nil {
		return nil, false, kerr.E(op, kerr.Internal, err)
	}
	return recs, truncated, nil
}

// Garbage returns up to limit files recorded by Commit as superseded.
func (db *DB) Garbage(limit int) ([]string, error) {
	var files []string
	err := db.scan([]byte(prefixGarbage), nil, true, func(item *badger.Item) (bool, error) {
		files = append(files, strings.TrimPrefix(string(item.Key()), prefixGarbage))
		return len(files) < limit, nil
	})
	if err != nil {
		return nil, kerr.E("meta.Garbage", kerr.Internal, err)
	}
	return files, nil
}

// DeleteGarbage forgets files returned by Garbage once they are removed.
func (db *DB) DeleteGarbage(files []string) error {
	keys := make([][]byte, len(files))
	for i, f := range files {
		keys[i] = garbageKey(f)
	}
	if err := db.deleteKeys(keys); err != nil {
		return kerr.E("meta.DeleteGarbage", kerr.Internal, err)
	}
	return nil
}

// deleteKeys deletes keys in as few transactions as fit.
func (db *DB) deleteKeys(keys [][]byte) error {
	for len(keys) > 0 {
		n := 0
		err := db.update(func(txn *badger.Txn) error {
			n = 0
			for _, k := range keys {
				if err := txn.Delete(k); errors.Is(err, badger.ErrTxnTooBig) {
					return nil // commit what fits, then go on
				} else if err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return err
		}
		if n == 0 {
			return badger.ErrTxnTooBig
		}
		keys = keys[n:]
	}
	return nil
}
