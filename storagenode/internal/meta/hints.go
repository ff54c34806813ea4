package meta

import (
	"errors"

	"github.com/dgraph-io/badger/v4"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// AddHints stores hints; a hint with the same (Bucket, Key, Version, Shard)
// as a stored one replaces it.
func (db *DB) AddHints(hints []client.Hint) error {
	const op = "meta.AddHints"
	for len(hints) > 0 {
		n := 0
		err := db.update(func(txn *badger.Txn) error {
			n = 0
			for _, h := range hints {
				val, err := encodeHint(h)
				if err != nil {
					return err
				}
				if err := txn.Set(hintKey(h.Bucket, h.Key, h.Version, h.Shard), val); errors.Is(err, badger.ErrTxnTooBig) {
					return nil // commit what fits, then go on
				} else if err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err == nil && n == 0 {
			err = badger.ErrTxnTooBig
		}
		if err != nil {
			return kerr.E(op, kerr.Internal, err)
		}
		hints = hints[n:]
	}
	return nil
}

// Hints returns up to limit stored hints, in no meaningful order.
func (db *DB) Hints(limit int) ([]client.Hint, error) {
	hs := []client.Hint{}
	err := db.scan([]byte(prefixHint), nil, false, func(item *badger.Item) (bool, error) {
		var h client.Hint
		if err := item.Value(func(v []byte) error { return decodeHint(v, &h) }); err != nil {
			return false, err
		}
		hs = append(hs, h)
		return len(hs) < limit, nil
	})
	if err != nil {
		return nil, kerr.E("meta.Hints", kerr.Internal, err)
	}
	return hs, nil
}

// DeleteHints removes the hints with the identities of hints.
func (db *DB) DeleteHints(hints []client.Hint) error {
	keys := make([][]byte, len(hints))
	for i, h := range hints {
		keys[i] = hintKey(h.Bucket, h.Key, h.Version, h.Shard)
	}
	if err := db.deleteKeys(keys); err != nil {
		return kerr.E("meta.DeleteHints", kerr.Internal, err)
	}
	return nil
}
