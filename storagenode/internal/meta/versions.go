package meta

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// A key of a versioned bucket has, besides its committed (current) record
// under prefixObject, the versions it superseded under prefixVersion, and
// the versions deleted by version under prefixPurged. A key has noncurrent
// versions only while it has a current record: deleting the current
// version makes the newest noncurrent one current.
const (
	prefixVersion = "n/" // n/<nameHash(bucket,key)>/<version> -> Record (JSON)
	prefixPurged  = "d/" // d/<nameHash(bucket,key)>/<version> -> Unix nanoseconds
)

func versionPrefix(bucket, key string) []byte {
	return []byte(prefixVersion + nameHash(bucket, key) + "/")
}

func versionKey(bucket, key, version string) []byte {
	return append(versionPrefix(bucket, key), version...)
}

func purgedPrefix(bucket, key string) []byte {
	return []byte(prefixPurged + nameHash(bucket, key) + "/")
}

func purgedKey(bucket, key, version string) []byte {
	return append(purgedPrefix(bucket, key), version...)
}

// Versions is what a commit does to a key's noncurrent versions.
type Versions struct {
	// Keep, if not nil, is the superseded record, kept as a noncurrent
	// version instead of noted as garbage.
	Keep *client.Record
	// Drop are noncurrent versions the commit replaces (a key's former
	// null version); DropFiles their shard files, noted as garbage.
	Drop      []client.Record
	DropFiles []string
}

func (vs Versions) apply(txn *badger.Txn) error {
	if vs.Keep != nil {
		val, err := encodeRecord(*vs.Keep)
		if err != nil {
			return err
		}
		if err := txn.Set(versionKey(vs.Keep.Bucket, vs.Keep.Key, vs.Keep.Version), val); err != nil {
			return err
		}
	}
	for _, r := range vs.Drop {
		if err := txn.Delete(versionKey(r.Bucket, r.Key, r.Version)); err != nil {
			return err
		}
	}
	for _, f := range vs.DropFiles {
		if err := txn.Set(garbageKey(f), nil); err != nil {
			return err
		}
	}
	return nil
}

// Noncurrent returns the noncurrent versions of bucket/key, newest first.
func (db *DB) Noncurrent(bucket, key string) ([]client.Record, error) {
	var recs []client.Record
	p := versionPrefix(bucket, key)
	err := db.view(nil, p, func(txn *badger.Txn) error {
		var err error
		recs, err = noncurrentTxn(txn, bucket, key)
		return err
	})
	if err != nil {
		return nil, kerr.E("meta.Noncurrent", kerr.Internal, err)
	}
	return recs, nil
}

func noncurrentTxn(txn *badger.Txn, bucket, key string) ([]client.Record, error) {
	var recs []client.Record
	err := scanTxn(txn, versionPrefix(bucket, key), nil, false, func(item *badger.Item) (bool, error) {
		var rec client.Record
		if err := item.Value(func(v []byte) error { return decodeRecord(v, &rec) }); err != nil {
			return false, err
		}
		// Entries carry their names: a hash collision is skipped.
		if rec.Bucket == bucket && rec.Key == key {
			recs = append(recs, rec)
		}
		return true, nil
	})
	slices.Reverse(recs)
	return recs, err
}

// Purged returns the versions of bucket/key deleted by version, oldest
// first.
func (db *DB) Purged(bucket, key string) ([]string, error) {
	var vs []string
	p := purgedPrefix(bucket, key)
	err := db.view(nil, p, func(txn *badger.Txn) error {
		vs = nil
		return scanTxn(txn, p, nil, true, func(item *badger.Item) (bool, error) {
			vs = append(vs, strings.TrimPrefix(string(item.Key()), string(p)))
			return true, nil
		})
	})
	if err != nil {
		return nil, kerr.E("meta.Purged", kerr.Internal, err)
	}
	return vs, nil
}

// PurgedAs returns the name under which the object version names was
// deleted by version, or "" if it was not: a version and all its re-codes
// (client.RecodeVersion) are one object, so a deletion of any of those
// names counts. Their names all start with the base version's, and
// versions are checked names, so one prefix scan finds them.
func (db *DB) PurgedAs(bucket, key, version string) (string, error) {
	base := client.BaseVersion(version)
	p := purgedKey(bucket, key, base)
	strip := len(purgedPrefix(bucket, key))
	found := ""
	err := db.view(nil, p, func(txn *badger.Txn) error {
		found = ""
		return scanTxn(txn, p, nil, true, func(item *badger.Item) (bool, error) {
			if v := string(item.Key()[strip:]); client.BaseVersion(v) == base {
				found = v
				return false, nil
			}
			return true, nil
		})
	})
	if err != nil {
		return "", kerr.E("meta.PurgedAs", kerr.Internal, err)
	}
	return found, nil
}

// Purge deletes version of bucket/key for good, in one synced transaction:
// it records the deletion (so that IsPurged holds from then on), removes
// the version's record, current or noncurrent, and notes file(record) (if
// not "") as garbage. When the version was current, the newest noncurrent
// version becomes current. It returns the key's current record afterwards
// (nil if none) and the record removed (nil if the node held none).
// REQUIRES: the key's lock.
func (db *DB) Purge(bucket, key, version string, file func(client.Record) string) (cur, removed *client.Record, err error) {
	const op = "meta.Purge"
	ok := objectKey(bucket, key)
	var delta int64
	err = db.updateHeld([][]byte{ok, versionPrefix(bucket, key), purgedKey(bucket, key, version), purgedPrefix(bucket, key)}, func(txn *badger.Txn) error {
		cur, removed, delta = nil, nil, 0
		now := strconv.AppendInt(nil, time.Now().UnixNano(), 10)
		if err := txn.Set(purgedKey(bucket, key, version), now); err != nil {
			return err
		}
		c, marker, err := recordTxn(txn, ok)
		if err != nil {
			return err
		}
		cur = c
		if c != nil && c.Version == version {
			removed, cur = c, nil
			if err := txn.Delete(ok); err != nil {
				return err
			}
			if !marker {
				delta--
			}
			older, err := noncurrentTxn(txn, bucket, key)
			if err != nil {
				return err
			}
			if len(older) > 0 {
				next := older[0]
				if err := txn.Delete(versionKey(bucket, key, next.Version)); err != nil {
					return err
				}
				val, err := encodeRecord(next)
				if err != nil {
					return err
				}
				e := badger.NewEntry(ok, val)
				if next.Deleted {
					e = e.WithMeta(markerBit)
				} else {
					delta++
				}
				if err := txn.SetEntry(e); err != nil {
					return err
				}
				cur = &next
			}
		} else {
			vk := versionKey(bucket, key, version)
			item, err := txn.Get(vk)
			switch {
			case errors.Is(err, badger.ErrKeyNotFound):
				return nil
			case err != nil:
				return err
			}
			removed = new(client.Record)
			if err := item.Value(func(v []byte) error { return decodeRecord(v, removed) }); err != nil {
				return err
			}
			if err := txn.Delete(vk); err != nil {
				return err
			}
		}
		if f := file(*removed); f != "" {
			return txn.Set(garbageKey(f), nil)
		}
		return nil
	})
	if err != nil {
		return nil, nil, kerr.E(op, kerr.Internal, err)
	}
	db.objects.Add(delta)
	return cur, removed, nil
}

// recordTxn reads the record under k and whether it is a delete marker.
func recordTxn(txn *badger.Txn, k []byte) (*client.Record, bool, error) {
	item, err := txn.Get(k)
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	rec := new(client.Record)
	if err := item.Value(func(v []byte) error { return decodeRecord(v, rec) }); err != nil {
		return nil, false, err
	}
	return rec, item.UserMeta()&markerBit != 0, nil
}

func hasNoncurrentTxn(txn *badger.Txn, bucket, key string) (bool, error) {
	found := false
	err := scanTxn(txn, versionPrefix(bucket, key), nil, true, func(*badger.Item) (bool, error) {
		found = true
		return false, nil
	})
	return found, err
}

// PutNoncurrent, in one synced transaction, stores rec as a noncurrent
// version of its key, deletes the staged entries drop, applies the inline
// rename install and notes the file garbage (if not "") as garbage.
// REQUIRES: the key's lock, and a current record newer than rec.
func (db *DB) PutNoncurrent(rec client.Record, drop []Staged, install Move, garbage string) error {
	err := db.updateHeld([][]byte{versionPrefix(rec.Bucket, rec.Key)}, func(txn *badger.Txn) error {
		if err := install.apply(txn); err != nil {
			return err
		}
		for _, s := range drop {
			if err := txn.Delete(stagedKey(s.Bucket, s.Key, s.Version, s.Shard)); err != nil {
				return err
			}
		}
		vs := Versions{Keep: &rec}
		if garbage != "" {
			vs.DropFiles = []string{garbage}
		}
		return vs.apply(txn)
	})
	if err != nil {
		return kerr.E("meta.PutNoncurrent", kerr.Internal, err)
	}
	return nil
}

// ListVersions returns up to limit versions of bucket's keys having
// prefix, in key order and, within a key, newest first (the current
// record, then the noncurrent ones), starting after version afterVersion
// of key afterKey ("": after all of afterKey's versions; afterKey "":
// from the first key). It reports whether more follow.
func (db *DB) ListVersions(bucket, prefix, afterKey, afterVersion string, limit int) ([]client.Record, bool, error) {
	const op = "meta.ListVersions"
	p := objectKey(bucket, prefix)
	start := p
	if afterKey != "" {
		// The marker key itself is listed again when a version marker
		// says where in it to go on.
		a := objectKey(bucket, afterKey+"\x00")
		if afterVersion != "" {
			a = objectKey(bucket, afterKey)
		}
		if string(a) > string(p) {
			start = a
		}
	}
	var recs []client.Record
	truncated := false
	err := db.view(nil, p, func(txn *badger.Txn) error {
		recs, truncated = []client.Record{}, false
		return scanTxn(txn, p, start, false, func(item *badger.Item) (bool, error) {
			var rec client.Record
			if err := item.Value(func(v []byte) error { return decodeRecord(v, &rec) }); err != nil {
				return false, err
			}
			older, err := noncurrentTxn(txn, rec.Bucket, rec.Key)
			if err != nil {
				return false, err
			}
			for _, r := range append([]client.Record{rec}, older...) {
				if r.Key == afterKey && afterVersion != "" && r.Version >= afterVersion {
					continue
				}
				if len(recs) == limit {
					truncated = true
					return false, nil
				}
				recs = append(recs, r)
			}
			return true, nil
		})
	})
	if err != nil {
		return nil, false, kerr.E(op, kerr.Internal, err)
	}
	return recs, truncated, nil
}

// SetTags replaces the tag set of version of bucket/key, current or
// noncurrent, with tagging stamped at, unless the record's tags carry a
// stamp as new or newer or the version is a delete marker (then it
// changes nothing), in one synced
// transaction. It returns the record afterwards, or found false if the
// node holds no such version. REQUIRES: the key's lock.
func (db *DB) SetTags(bucket, key, version, tagging, at string) (rec client.Record, found bool, err error) {
	ok := objectKey(bucket, key)
	vk := versionKey(bucket, key, version)
	err = db.updateHeld([][]byte{ok, vk, versionPrefix(bucket, key)}, func(txn *badger.Txn) error {
		found = false
		k := ok
		r, marker, err := recordTxn(txn, ok)
		if err != nil {
			return err
		}
		if r == nil || r.Version != version {
			k, marker = vk, false
			if r, _, err = recordTxn(txn, vk); err != nil || r == nil {
				return err
			}
		}
		rec, found = *r, true
		if r.Deleted || r.TagsAt >= at {
			return nil
		}
		rec.Tagging, rec.TagsAt = tagging, at
		val, err := encodeRecord(rec)
		if err != nil {
			return err
		}
		e := badger.NewEntry(k, val)
		if marker {
			e = e.WithMeta(markerBit)
		}
		return txn.SetEntry(e)
	})
	if err != nil {
		return client.Record{}, false, kerr.E("meta.SetTags", kerr.Internal, err)
	}
	return rec, found, nil
}
