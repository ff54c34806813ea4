package meta

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/segmentio/encoding/json"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Objects returns the number of keys whose committed record is not a delete
// marker.
func (db *DB) Objects() int64 { return db.objects.Load() }

// countKey holds the object count a clean Close left. Counting means
// reading every record, and through badger's memory-mapped tables that
// left the whole index resident: a node holding 300,000 objects came up
// with 210 MiB of table pages mapped before its first request. Open takes
// the count from here and deletes it, so that after a crash, with no
// count or a stale one gone, it counts again.
var countKey = []byte("c/objects")

// loadObjects sets the object count from countKey, or by counting.
func (db *DB) loadObjects() error {
	var n int64 = -1
	err := db.update(func(txn *badger.Txn) error {
		item, err := txn.Get(countKey)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			return nil
		case err != nil:
			return err
		}
		if err := item.Value(func(v []byte) error {
			var err error
			n, err = strconv.ParseInt(string(v), 10, 64)
			return err
		}); err != nil {
			n = -1 // count instead
		}
		return txn.Delete(countKey)
	})
	switch {
	case err != nil:
		return kerr.E("meta.loadObjects", kerr.Internal, err)
	case n >= 0:
		db.objects.Store(n)
		return nil
	}
	return db.countObjects()
}

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
	k := objectKey(bucket, key)
	err := db.view(k, nil, func(txn *badger.Txn) error {
		rec = nil
		item, err := txn.Get(k)
		if err != nil {
			return err
		}
		rec = new(client.Record)
		return item.Value(func(v []byte) error { return decodeRecord(v, rec) })
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return nil, nil
	case err != nil:
		return nil, kerr.E(op, kerr.Internal, err)
	}
	return rec, nil
}

// Garbage is a note of a shard file no record names any more.
type Garbage struct {
	File string // relative to the node's directory
	// Superseded, if not zero, is when the superseded grace of the
	// file's version starts: the time of the newer commit that
	// superseded it or, when that commit's version is underwritten (it
	// names no node for some shard), that time plus the node's
	// Config.UnderwrittenHold, so that the old version stays readable
	// until a scrub pass has rolled the new one forward and rebuilt its
	// missing shards. Until the note is swept, reads of exactly that
	// version may still be served from the file: a reader that resolved
	// the version just before the commit must not find it gone. Zero
	// (a dropped shard, or a note of an earlier format): nobody may read
	// the file.
	Superseded time.Time
	// Previous is the superseded record (set with Superseded by commits;
	// nil in notes of earlier formats). While the note exists, Stat
	// reports it beside the committed record, so that a read falling
	// back to that version counts this node's shard of it.
	Previous *client.Record
}

// Commit, in one synced transaction, makes rec the committed record of its
// key, deletes the staged entries drop, renames the inline file install
// names (if any) and, if garbage.File is not empty, writes the garbage
// note; a note with a Previous record becomes the key's previous one (see
// DB.Previous). REQUIRES: the caller holds the key's lock and has checked that rec
// is newer than the key's current record (or is that record, repaired).
func (db *DB) Commit(rec client.Record, drop []Staged, install Move, garbage Garbage) error {
	return db.CommitVersions(rec, drop, install, garbage, Versions{})
}

// CommitVersions is Commit that also, in the same transaction, keeps
// vs.Keep as a noncurrent version of the key and drops the noncurrent
// versions vs.Drop (see Versions).
func (db *DB) CommitVersions(rec client.Record, drop []Staged, install Move, garbage Garbage, vs Versions) error {
	const op = "meta.Commit"
	val, err := encodeRecord(rec)
	if err != nil {
		return kerr.E(op, kerr.Internal, err)
	}
	var delta int64
	k := objectKey(rec.Bucket, rec.Key)
	held := [][]byte{k}
	if garbage.Previous != nil && !garbage.Superseded.IsZero() {
		held = append(held, previousKey(rec.Bucket, rec.Key))
	}
	if vs.Keep != nil || len(vs.Drop) > 0 {
		held = append(held, versionPrefix(rec.Bucket, rec.Key))
	}
	err = db.updateHeld(held, func(txn *badger.Txn) error {
		delta = 0
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
		if err := install.apply(txn); err != nil {
			return err
		}
		if err := vs.apply(txn); err != nil {
			return err
		}
		for _, s := range drop {
			if err := txn.Delete(stagedKey(s.Bucket, s.Key, s.Version, s.Shard)); err != nil {
				return err
			}
		}
		if garbage.File == "" {
			return nil
		}
		gv, err := garbageValue(garbage)
		if err != nil {
			return err
		}
		if err := txn.Set(garbageKey(garbage.File), gv); err != nil {
			return err
		}
		if garbage.Previous != nil && !garbage.Superseded.IsZero() {
			return txn.Set(previousKey(rec.Bucket, rec.Key), []byte(garbage.File))
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
	var recs []client.Record
	truncated := false
	err := db.view(nil, p, func(txn *badger.Txn) error {
		recs, truncated = []client.Record{}, false
		return scanTxn(txn, p, start, false, func(item *badger.Item) (bool, error) {
			if len(recs) == limit {
				truncated = true
				return false, nil
			}
			var rec client.Record
			if err := item.Value(func(v []byte) error { return decodeRecord(v, &rec) }); err != nil {
				return false, err
			}
			recs = append(recs, rec)
			return true, nil
		})
	})
	if err != nil {
		return nil, false, kerr.E(op, kerr.Internal, err)
	}
	return recs, truncated, nil
}

// Garbage returns up to limit garbage notes whose files sort after after
// ("": from the first), in file order.
func (db *DB) Garbage(after string, limit int) ([]Garbage, error) {
	var notes []Garbage
	var start []byte
	if after != "" {
		start = garbageKey(after + "\x00")
	}
	err := db.scan([]byte(prefixGarbage), start, false, func(item *badger.Item) (bool, error) {
		g, err := readGarbage(item)
		if err != nil {
			return false, err
		}
		notes = append(notes, g)
		return len(notes) < limit, nil
	})
	if err != nil {
		return nil, kerr.E("meta.Garbage", kerr.Internal, err)
	}
	return notes, nil
}

// SupersededFile returns the first garbage note of a superseded (not
// dropped) file whose name starts with prefix, or nil if there is none.
func (db *DB) SupersededFile(prefix string) (*Garbage, error) {
	var found *Garbage
	err := db.scan(garbageKey(prefix), nil, false, func(item *badger.Item) (bool, error) {
		g, err := readGarbage(item)
		if err != nil || g.Superseded.IsZero() {
			return err == nil, err
		}
		found = &g
		return false, nil
	})
	if err != nil {
		return nil, kerr.E("meta.SupersededFile", kerr.Internal, err)
	}
	return found, nil
}

// garbageValue encodes a note. A dropped file's note has an empty value,
// as every note once had; a superseded one without a record (an earlier
// format, still read) its time as decimal Unix nanoseconds; one with a
// record a JSON object.
func garbageValue(g Garbage) ([]byte, error) {
	switch {
	case g.Superseded.IsZero():
		return nil, nil
	case g.Previous == nil:
		return strconv.AppendInt(nil, g.Superseded.UnixNano(), 10), nil
	}
	prev := toDiskRecord(*g.Previous)
	return json.Marshal(noteValue{Superseded: g.Superseded.UnixNano(), Previous: &prev})
}

// noteValue is the JSON form of a superseded file's note.
type noteValue struct {
	Superseded int64       `json:"superseded"` // Unix nanoseconds
	Previous   *diskRecord `json:"previous,omitempty"`
}

func readGarbage(item *badger.Item) (Garbage, error) {
	g := Garbage{File: strings.TrimPrefix(string(item.Key()), prefixGarbage)}
	err := item.Value(func(v []byte) error {
		g.Superseded, g.Previous = time.Time{}, nil
		switch {
		case len(v) == 0:
			return nil
		case v[0] == '{':
			var nv noteValue
			if err := json.Unmarshal(v, &nv); err != nil {
				return fmt.Errorf("garbage note %s: %w", g.File, err)
			}
			g.Superseded = time.Unix(0, nv.Superseded)
			if nv.Previous != nil {
				prev := nv.Previous.wire()
				g.Previous = &prev
			}
			return nil
		}
		ns, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return fmt.Errorf("garbage note %s: %w", g.File, err)
		}
		g.Superseded = time.Unix(0, ns)
		return nil
	})
	return g, err
}

// Previous returns the superseded record of bucket/key whose shard file
// the node still holds under a garbage note, or nil: the one the key's
// latest superseding commit noted, for as long as that note exists.
func (db *DB) Previous(bucket, key string) (*client.Record, error) {
	const op = "meta.Previous"
	var prev *client.Record
	pk := previousKey(bucket, key)
	err := db.view(pk, nil, func(txn *badger.Txn) error {
		prev = nil
		item, err := txn.Get(pk)
		if err != nil {
			return err
		}
		file, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		// The note, not this entry, says whether the file is still
		// held: an entry whose note was swept is stale.
		item, err = txn.Get(garbageKey(string(file)))
		if err != nil {
			return err
		}
		g, err := readGarbage(item)
		if err != nil {
			return err
		}
		if p := g.Previous; p != nil && !g.Superseded.IsZero() && p.Bucket == bucket && p.Key == key {
			prev = p
		}
		return nil
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return nil, nil
	case err != nil:
		return nil, kerr.E(op, kerr.Internal, err)
	}
	return prev, nil
}

// ForgetPrevious deletes the previous-record entries of notes DeleteGarbage
// removed, those still naming the note's file (a later commit may have
// pointed the entry at a newer note).
func (db *DB) ForgetPrevious(notes []Garbage) error {
	for _, g := range notes {
		if g.Previous == nil {
			continue
		}
		pk := previousKey(g.Previous.Bucket, g.Previous.Key)
		err := db.update(func(txn *badger.Txn) error {
			item, err := txn.Get(pk)
			if err != nil {
				return err
			}
			file, err := item.ValueCopy(nil)
			if err != nil || string(file) != g.File {
				return err
			}
			return txn.Delete(pk)
		})
		if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return kerr.E("meta.ForgetPrevious", kerr.Internal, err)
		}
	}
	return nil
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
