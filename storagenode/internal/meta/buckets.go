package meta

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// PutBucket stores b unless the stored record of that bucket has a version
// >= b.Version; it reports whether b was stored.
func (db *DB) PutBucket(b client.BucketRecord) (bool, error) {
	const op = "meta.PutBucket"
	val, err := encodeBucket(b)
	if err != nil {
		return false, kerr.E(op, kerr.Internal, err)
	}
	stored := false
	k := bucketKey(b.Name)
	err = db.updateHeld([][]byte{k}, func(txn *badger.Txn) error {
		stored = false
		switch item, err := txn.Get(k); {
		case err == nil:
			var cur client.BucketRecord
			if err := item.Value(func(v []byte) error { return decodeBucket(v, &cur) }); err != nil {
				return err
			}
			if cur.Version >= b.Version {
				return nil
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		stored = true
		return txn.Set(k, val)
	})
	if err != nil {
		return false, kerr.E(op, kerr.Internal, err)
	}
	return stored, nil
}

// Bucket returns the record of bucket name; kerr.NotExist if there is none.
func (db *DB) Bucket(name string) (client.BucketRecord, error) {
	const op = "meta.Bucket"
	var b client.BucketRecord
	k := bucketKey(name)
	err := db.view(k, nil, func(txn *badger.Txn) error {
		b = client.BucketRecord{}
		item, err := txn.Get(k)
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error { return decodeBucket(v, &b) })
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return b, kerr.E(op, kerr.NotExist, fmt.Errorf("bucket %q", name))
	case err != nil:
		return b, kerr.E(op, kerr.Internal, err)
	}
	return b, nil
}

// Buckets returns every bucket record, tombstones included, by name.
func (db *DB) Buckets() ([]client.BucketRecord, error) {
	var bs []client.BucketRecord
	err := db.view(nil, []byte(prefixBucket), func(txn *badger.Txn) error {
		bs = []client.BucketRecord{}
		return scanTxn(txn, []byte(prefixBucket), nil, false, func(item *badger.Item) (bool, error) {
			var b client.BucketRecord
			if err := item.Value(func(v []byte) error { return decodeBucket(v, &b) }); err != nil {
				return false, err
			}
			bs = append(bs, b)
			return true, nil
		})
	})
	if err != nil {
		return nil, kerr.E("meta.Buckets", kerr.Internal, err)
	}
	return bs, nil
}
