package meta

import (
	"errors"

	"github.com/dgraph-io/badger/v4"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// clusterMapKey holds the newest cluster map the node was given, as the
// node encoded it. The "m/" prefix is used by nothing else.
var clusterMapKey = []byte("m/map")

// ClusterMap returns the stored cluster map, or nil if none was stored.
func (db *DB) ClusterMap() ([]byte, error) {
	var out []byte
	err := db.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(clusterMapKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, kerr.E("meta.ClusterMap", kerr.Internal, err)
	}
	return out, nil
}

// SwapClusterMap stores what swap returns for the stored map (nil if none)
// in one synced transaction; if another swap commits in between, swap is
// called again with the new value, so the check it makes and the write are
// atomic. If swap returns an error nothing is stored and that error is
// returned unwrapped; if it returns nil data nothing is stored.
func (db *DB) SwapClusterMap(swap func(cur []byte) ([]byte, error)) error {
	var swapErr error
	err := db.update(func(txn *badger.Txn) error {
		swapErr = nil
		var cur []byte
		item, err := txn.Get(clusterMapKey)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			if cur, err = item.ValueCopy(nil); err != nil {
				return err
			}
		}
		next, err := swap(cur)
		if err != nil {
			swapErr = err
			return err
		}
		if next == nil {
			return nil
		}
		return txn.Set(clusterMapKey, next)
	})
	if swapErr != nil {
		return swapErr
	}
	if err != nil {
		return kerr.E("meta.SwapClusterMap", kerr.Internal, err)
	}
	return nil
}
