package meta

import (
	"errors"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/segmentio/encoding/json"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

const (
	prefixQuarantine = "q/"
	prefixState      = "x/"
)

func quarantineKey(bucket, key, version string, shard int) []byte {
	return []byte(prefixQuarantine + nameHash(bucket, key, version) + "/" + strconv.Itoa(shard))
}

func stateKey(name string) []byte { return []byte(prefixState + name) }

// Quarantined is a committed shard that failed verification and was moved
// out of the way. The committed record stays: the node still owes the
// shard, and a repair of the same version replaces it.
//
// It repeats the fields of the wire type wire.QuarantinedShard on
// purpose: it is durable (see durable.go), and the API's type may change
// for the protocol's sake without changing what data directories hold.
type Quarantined struct {
	Bucket  string    `json:"bucket"`
	Key     string    `json:"key"`
	Version string    `json:"version"`
	Shard   int       `json:"shard"`
	Reason  string    `json:"reason"`
	Time    time.Time `json:"time"`
	File    string    `json:"file"` // where the bad bytes were moved, relative to the node's directory
}

// PutQuarantined records q, replacing any entry of the same shard.
func (db *DB) PutQuarantined(q Quarantined) error {
	const op = "meta.PutQuarantined"
	val, err := json.Marshal(q)
	if err != nil {
		return kerr.E(op, kerr.Internal, err)
	}
	if err := db.update(func(txn *badger.Txn) error {
		return txn.Set(quarantineKey(q.Bucket, q.Key, q.Version, q.Shard), val)
	}); err != nil {
		return kerr.E(op, kerr.Internal, err)
	}
	return nil
}

// QuarantinedShard returns the quarantine entry of one shard, or nil.
func (db *DB) QuarantinedShard(bucket, key, version string, shard int) (*Quarantined, error) {
	const op = "meta.QuarantinedShard"
	var q *Quarantined
	err := db.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(quarantineKey(bucket, key, version, shard))
		if err != nil {
			return err
		}
		q = new(Quarantined)
		return item.Value(func(v []byte) error { return json.Unmarshal(v, q) })
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return nil, nil
	case err != nil:
		return nil, kerr.E(op, kerr.Internal, err)
	}
	// Names are hashed in the index key; a collision must not pass for a hit.
	if q.Bucket != bucket || q.Key != key || q.Version != version {
		return nil, nil
	}
	return q, nil
}

// QuarantinedShards returns up to limit quarantine entries, in no
// meaningful order, and how many there are in all.
func (db *DB) QuarantinedShards(limit int) ([]Quarantined, int, error) {
	out := []Quarantined{}
	total := 0
	err := db.scan([]byte(prefixQuarantine), nil, false, func(item *badger.Item) (bool, error) {
		total++
		if len(out) >= limit {
			return true, nil
		}
		var q Quarantined
		if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &q) }); err != nil {
			return false, err
		}
		out = append(out, q)
		return true, nil
	})
	if err != nil {
		return nil, 0, kerr.E("meta.QuarantinedShards", kerr.Internal, err)
	}
	return out, total, nil
}

// DeleteQuarantined forgets the quarantine entry of q's shard.
func (db *DB) DeleteQuarantined(q Quarantined) error {
	if err := db.deleteKeys([][]byte{quarantineKey(q.Bucket, q.Key, q.Version, q.Shard)}); err != nil {
		return kerr.E("meta.DeleteQuarantined", kerr.Internal, err)
	}
	return nil
}

// Records returns up to limit committed records of all buckets, in index
// order (by bucket, then key), that come after the position after ("" is
// the start), and the position of the last one returned, to pass as after
// for the next call. An empty slice means the end.
func (db *DB) Records(after string, limit int) ([]client.Record, string, error) {
	const op = "meta.Records"
	prefix := []byte(prefixObject)
	start := prefix
	if after != "" {
		// after+"\x00" is the least key greater than after.
		start = []byte(prefixObject + after + "\x00")
	}
	recs := []client.Record{}
	pos := after
	err := db.scan(prefix, start, false, func(item *badger.Item) (bool, error) {
		var rec client.Record
		if err := item.Value(func(v []byte) error { return decodeRecord(v, &rec) }); err != nil {
			return false, err
		}
		recs = append(recs, rec)
		pos = string(item.Key()[len(prefixObject):])
		return len(recs) < limit, nil
	})
	if err != nil {
		return nil, after, kerr.E(op, kerr.Internal, err)
	}
	return recs, pos, nil
}

// DropMarker deletes the committed record of bucket/key if it is still the
// delete marker of version, in one transaction, and reports whether it
// did. REQUIRES: the caller holds the key's lock.
func (db *DB) DropMarker(bucket, key, version string) (bool, error) {
	const op = "meta.DropMarker"
	dropped := false
	k := objectKey(bucket, key)
	err := db.updateHeld([][]byte{k}, func(txn *badger.Txn) error {
		dropped = false
		item, err := txn.Get(k)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if item.UserMeta()&markerBit == 0 {
			return nil
		}
		var rec client.Record
		if err := item.Value(func(v []byte) error { return decodeRecord(v, &rec) }); err != nil {
			return err
		}
		if !rec.Deleted || rec.Version != version {
			return nil
		}
		// A marker over noncurrent versions is what keeps them
		// noncurrent.
		if has, err := hasNoncurrentTxn(txn, bucket, key); has || err != nil {
			return err
		}
		dropped = true
		return txn.Delete(k)
	})
	if err != nil {
		return false, kerr.E(op, kerr.Internal, err)
	}
	return dropped, nil
}

// LoadState decodes the JSON state saved under name into v and reports
// whether there was any.
func (db *DB) LoadState(name string, v any) (bool, error) {
	const op = "meta.LoadState"
	found := false
	err := db.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(stateKey(name))
		if err != nil {
			return err
		}
		found = true
		return item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
	})
	if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
		return false, kerr.E(op, kerr.Internal, err)
	}
	return found, nil
}

// SaveState stores v, JSON encoded, under name.
func (db *DB) SaveState(name string, v any) error {
	const op = "meta.SaveState"
	val, err := json.Marshal(v)
	if err != nil {
		return kerr.E(op, kerr.Internal, err)
	}
	if err := db.update(func(txn *badger.Txn) error { return txn.Set(stateKey(name), val) }); err != nil {
		return kerr.E(op, kerr.Internal, err)
	}
	return nil
}
