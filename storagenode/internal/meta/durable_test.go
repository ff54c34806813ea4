package meta

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// The golden values: testdata holds them as this package wrote them
// before it had durable types of its own, when the index stored the
// client's JSON types. Never regenerate those files: they are what data
// directories hold.

func goldenRecord() client.Record {
	return client.Record{
		ObjectMeta: client.ObjectMeta{
			Bucket: "photos", Key: "2025/cat.jpg", Version: "01JGQ4M6Q8XW2Z3C5V7B9N1M3K",
			Size: 1234567, ETag: "9e107d9d372bb6826bd81d3542a419d6", ContentType: "image/jpeg",
			UserMeta: map[string]string{"camera": "x100", "owner": "ann"},
			Modified: time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC),
			Data:     4, Parity: 2, BlockSize: 262144, Format: 1,
			Roots:     []string{"aa", "bb", "cc", "dd", "ee", "ff"},
			Nodes:     []string{"n1", "n2", "", "n4", "n5", "n6"},
			Checksums: map[string]string{"crc32c": "yZRlqg==", "sha256": "abc="},
			Parts: []client.PartRef{
				{Number: 1, Key: ".mp/u1/1", Version: "01JGQ4M6Q8XW2Z3C5V7B9N1M3A", Size: 5 << 20, ETag: "e1", Checksums: map[string]string{"crc32": "AAAAAA=="}},
				{Number: 2, Key: ".mp/u1/2", Version: "01JGQ4M6Q8XW2Z3C5V7B9N1M3B", Size: 7, ETag: "e2"},
			},
			Target: "2025/cat.jpg",
			Staged: "01JGQ4M6Q8XW2Z3C5V7B9N1M3J",
		},
		Shard: 3,
	}
}

func goldenMarker() client.Record {
	return client.Record{
		ObjectMeta: client.ObjectMeta{
			Bucket: "photos", Key: "gone", Version: "01JGQ4M6Q8XW2Z3C5V7B9N1M3Z", Deleted: true,
			Modified: time.Date(2025, 2, 3, 4, 5, 6, 0, time.UTC),
		},
		Shard: -1,
	}
}

func goldenBucket() client.BucketRecord {
	return client.BucketRecord{Name: "photos", Version: "01JGQ4M6Q8XW2Z3C5V7B9N1M30", Created: time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC), Deleted: true}
}

func goldenHint() client.Hint {
	return client.Hint{Bucket: "photos", Key: "2025/cat.jpg", Version: "01JGQ4M6Q8XW2Z3C5V7B9N1M3K", Shard: 5, NodeID: "n6", Reason: "corrupt", Time: time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)}
}

func goldenNoteTime() time.Time { return time.Unix(0, 1735787045000000600) }

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

// TestDurableGolden checks that the durable types write the bytes the
// index wrote before it had them, and that an index holding such bytes
// reads back the same records, buckets, hints and notes.
func TestDurableGolden(t *testing.T) {
	rec, marker := goldenRecord(), goldenMarker()
	encoded := map[string]func() ([]byte, error){
		"record.json": func() ([]byte, error) { return encodeRecord(rec) },
		"marker.json": func() ([]byte, error) { return encodeRecord(marker) },
		"bucket.json": func() ([]byte, error) { return encodeBucket(goldenBucket()) },
		"hint.json":   func() ([]byte, error) { return encodeHint(goldenHint()) },
		"note.json": func() ([]byte, error) {
			return garbageValue(Garbage{File: "f", Superseded: goldenNoteTime(), Previous: &rec})
		},
	}
	for name, enc := range encoded {
		got, err := enc()
		if want := readGolden(t, name); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: encoded as\n%s (err %v), want\n%s", name, got, err, want)
		}
	}

	// An index written in that format opens and reads as before.
	db := openTest(t, t.TempDir())
	const note = "shards/ab/cd/old.3"
	err := db.db.Update(func(txn *badger.Txn) error {
		for k, file := range map[string]string{
			string(objectKey(rec.Bucket, rec.Key)):               "record.json",
			string(objectKey(marker.Bucket, marker.Key)):         "marker.json",
			string(bucketKey("photos")):                          "bucket.json",
			string(hintKey(rec.Bucket, rec.Key, rec.Version, 5)): "hint.json",
			string(garbageKey(note)):                             "note.json",
		} {
			if err := txn.Set([]byte(k), readGolden(t, file)); err != nil {
				return err
			}
		}
		return txn.Set(previousKey(rec.Bucket, rec.Key), []byte(note))
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := db.Record(rec.Bucket, rec.Key); err != nil || !reflect.DeepEqual(*got, rec) {
		t.Errorf("Record = %+v, %v; want %+v", got, err, rec)
	}
	if got, err := db.Record(marker.Bucket, marker.Key); err != nil || !reflect.DeepEqual(*got, marker) {
		t.Errorf("Record of the marker = %+v, %v; want %+v", got, err, marker)
	}
	if got, _, err := db.List("photos", "", "", 10); err != nil || !reflect.DeepEqual(got, []client.Record{rec, marker}) {
		t.Errorf("List = %+v, %v", got, err)
	}
	if got, err := db.Bucket("photos"); err != nil || !reflect.DeepEqual(got, goldenBucket()) {
		t.Errorf("Bucket = %+v, %v; want %+v", got, err, goldenBucket())
	}
	if got, err := db.Hints(10); err != nil || !reflect.DeepEqual(got, []client.Hint{goldenHint()}) {
		t.Errorf("Hints = %+v, %v; want %+v", got, err, goldenHint())
	}
	prev, err := db.Previous(rec.Bucket, rec.Key)
	if err != nil || prev == nil || !reflect.DeepEqual(*prev, rec) {
		t.Errorf("Previous = %+v, %v; want %+v", prev, err, rec)
	}
}

// TestDurableRecordCarriesEveryField fails when the wire's record gains a
// field the durable record does not store: it would be lost on disk
// without a word.
func TestDurableRecordCarriesEveryField(t *testing.T) {
	disk := reflect.TypeFor[diskRecord]()
	var check func(reflect.Type)
	check = func(wt reflect.Type) {
		for i := range wt.NumField() {
			f := wt.Field(i)
			if f.Anonymous {
				check(f.Type)
				continue
			}
			df, ok := disk.FieldByName(f.Name)
			if !ok || df.Tag.Get("json") != f.Tag.Get("json") {
				t.Errorf("wire field %s (json %q) has no durable field with the same JSON name", f.Name, f.Tag.Get("json"))
			}
		}
	}
	check(reflect.TypeFor[client.Record]())
	// And every field makes the round trip: a record with each field
	// set comes back equal.
	rec := goldenRecord()
	b, err := encodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	var got client.Record
	if err := decodeRecord(b, &got); err != nil || !reflect.DeepEqual(got, rec) {
		t.Errorf("round trip: %+v, %v; want %+v", got, err, rec)
	}
}

// FuzzDecodeRecord checks that any stored bytes decode without a panic and
// that what decodes encodes to bytes that decode to the same record (one
// that encodes to the same bytes: an empty map or list and a missing one
// are the same record).
func FuzzDecodeRecord(f *testing.F) {
	for _, name := range []string{"record.json", "marker.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"parts":null,"shard":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r client.Record
		if decodeRecord(b, &r) != nil {
			return
		}
		again, err := encodeRecord(r)
		if err != nil {
			t.Fatalf("encoding a decoded record: %v", err)
		}
		var r2 client.Record
		if err := decodeRecord(again, &r2); err != nil {
			t.Fatalf("decoding %s: %v", again, err)
		}
		if third, err := encodeRecord(r2); err != nil || !bytes.Equal(third, again) {
			t.Fatalf("round trip changed %s into %s (%v)", again, third, err)
		}
	})
}
