package meta

import (
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/segmentio/encoding/json"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Staged is a staged shard: a verified, durable file that is not yet part
// of any committed version. Inline says the file lives in the index (see
// PutStagedInline) rather than on disk.
type Staged struct {
	Bucket  string    `json:"bucket"`
	Key     string    `json:"key"`
	Version string    `json:"version"`
	Shard   int       `json:"shard"`
	Root    string    `json:"root"` // hex root digest
	Size    int64     `json:"size"` // framed bytes
	Staged  time.Time `json:"staged"`
	File    string    `json:"file"` // path relative to the node's directory
	Inline  bool      `json:"inline,omitempty"`
}

// Ref returns the wire form of s.
func (s Staged) Ref() client.StagedRef {
	return client.StagedRef{Version: s.Version, Shard: s.Shard, Root: s.Root, Size: s.Size, Staged: s.Staged}
}

// PutStaged records s, replacing any entry for the same version and shard
// of the key, which it returns (nil if none) so that the caller can remove
// its file. REQUIRES: the caller holds the key's lock.
func (db *DB) PutStaged(s Staged) (*Staged, error) {
	prev, err := db.putStaged(s, nil)
	if err != nil {
		return nil, kerr.E("meta.PutStaged", kerr.Internal, err)
	}
	return prev, nil
}

// putStaged is PutStaged, also writing b (if not nil) as the inline file
// s.File in the same transaction.
func (db *DB) putStaged(s Staged, b *Blob) (*Staged, error) {
	val, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var prev *Staged
	k := stagedKey(s.Bucket, s.Key, s.Version, s.Shard)
	err = db.updateHeld([][]byte{k}, func(txn *badger.Txn) error {
		prev = nil
		switch item, err := txn.Get(k); {
		case err == nil:
			prev = new(Staged)
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, prev) }); err != nil {
				return err
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		if b != nil {
			if err := txn.SetEntry(b.entry(blobKey(s.File))); err != nil {
				return err
			}
		}
		return txn.Set(k, val)
	})
	return prev, err
}

// StagedOf returns the staged shards of bucket/key, by version then shard
// (shards in decimal string order).
func (db *DB) StagedOf(bucket, key string) ([]Staged, error) {
	var out []Staged
	err := db.scanStaged(stagedKeyPrefix(bucket, key), func(s Staged) {
		if s.Bucket == bucket && s.Key == key {
			out = append(out, s)
		}
	})
	if err != nil {
		return nil, kerr.E("meta.StagedOf", kerr.Internal, err)
	}
	return out, nil
}

// Key returns the committed record of bucket/key (nil if none) and its
// staged shards, as StagedOf, from one consistent snapshot.
func (db *DB) Key(bucket, key string) (*client.Record, []Staged, error) {
	const op = "meta.Key"
	var rec *client.Record
	var staged []Staged
	k := objectKey(bucket, key)
	err := db.view(k, stagedKeyPrefix(bucket, key), func(txn *badger.Txn) error {
		rec, staged = nil, nil
		switch item, err := txn.Get(k); {
		case err == nil:
			rec = new(client.Record)
			if err := item.Value(func(v []byte) error { return decodeRecord(v, rec) }); err != nil {
				return err
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		}
		return scanTxn(txn, stagedKeyPrefix(bucket, key), nil, false, func(item *badger.Item) (bool, error) {
			var s Staged
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &s) }); err != nil {
				return false, err
			}
			if s.Bucket == bucket && s.Key == key {
				staged = append(staged, s)
			}
			return true, nil
		})
	})
	if err != nil {
		return nil, nil, kerr.E(op, kerr.Internal, err)
	}
	return rec, staged, nil
}

// AllStaged returns every staged shard on the node. Staged entries live
// for seconds (or until swept), so there are few of them.
func (db *DB) AllStaged() ([]Staged, error) {
	var out []Staged
	if err := db.scanStaged([]byte(prefixStaged), func(s Staged) { out = append(out, s) }); err != nil {
		return nil, kerr.E("meta.AllStaged", kerr.Internal, err)
	}
	return out, nil
}

func (db *DB) scanStaged(prefix []byte, fn func(Staged)) error {
	return db.scan(prefix, nil, false, func(item *badger.Item) (bool, error) {
		var s Staged
		if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &s) }); err != nil {
			return false, err
		}
		fn(s)
		return true, nil
	})
}

// DeleteStaged removes the entries of ss. REQUIRES: the caller holds the
// keys' locks.
func (db *DB) DeleteStaged(ss []Staged) error {
	keys := make([][]byte, len(ss))
	for i, s := range ss {
		keys[i] = stagedKey(s.Bucket, s.Key, s.Version, s.Shard)
	}
	if err := db.deleteKeys(keys); err != nil {
		return kerr.E("meta.DeleteStaged", kerr.Internal, err)
	}
	return nil
}
