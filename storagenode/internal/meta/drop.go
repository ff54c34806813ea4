package meta

import (
	"errors"

	"github.com/dgraph-io/badger/v4"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// DropRecord deletes the committed record of bucket/key if it is still
// version with shard index shard (-1: a version without a shard of its
// own), and reports whether it did. In the same synced transaction it
// deletes the staged entries drop and, if garbage is not empty, remembers
// that file as one to remove. If the record is anything else, nothing
// changes. REQUIRES: the caller holds the key's lock.
func (db *DB) DropRecord(bucket, key, version string, shard int, drop []Staged, garbage string) (bool, error) {
	const op = "meta.DropRecord"
	dropped := false
	var delta int64
	k := objectKey(bucket, key)
	err := db.updateHeld([][]byte{k}, func(txn *badger.Txn) error {
		dropped, delta = false, 0
		item, err := txn.Get(k)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var rec client.Record
		if err := item.Value(func(v []byte) error { return decodeRecord(v, &rec) }); err != nil {
			return err
		}
		// Names are exact in the record key, but the record must be the
		// very version and shard the caller means.
		if rec.Bucket != bucket || rec.Key != key || rec.Version != version || rec.Shard != shard {
			return nil
		}
		// Dropping the current record would make a noncurrent version
		// current: the key's versions stay until they move together.
		if has, err := hasNoncurrentTxn(txn, bucket, key); has || err != nil {
			return err
		}
		if err := txn.Delete(k); err != nil {
			return err
		}
		if item.UserMeta()&markerBit == 0 {
			delta = -1
		}
		for _, s := range drop {
			if err := txn.Delete(stagedKey(s.Bucket, s.Key, s.Version, s.Shard)); err != nil {
				return err
			}
		}
		if garbage != "" {
			if err := txn.Set(garbageKey(garbage), nil); err != nil {
				return err
			}
		}
		dropped = true
		return nil
	})
	if err != nil {
		return false, kerr.E(op, kerr.Internal, err)
	}
	db.objects.Add(delta)
	return dropped, nil
}
