package meta

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// BenchmarkKey measures the state lookup behind every stat of a key, on an
// index of many objects whose writes each staged and dropped an entry, as
// real PUTs do, and the time of a 1000-record list page at several
// depths. KINTSUGI_BENCH_OBJECTS sets the number of objects (default
// 100000).
func BenchmarkKey(b *testing.B) {
	n := 100_000
	if v := os.Getenv("KINTSUGI_BENCH_OBJECTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("KINTSUGI_BENCH_OBJECTS=%q", v)
		}
	}
	db, err := Open(b.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	fillBench(b, db, n)
	keys := make([]string, 1024)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range keys {
		keys[i] = fmt.Sprintf("obj/%08d", r.IntN(n))
	}
	b.Run("record", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := db.Record("bkt", keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("record+staged", func(b *testing.B) {
		i := 0
		for b.Loop() {
			rec, _, err := db.Key("bkt", keys[i%len(keys)])
			if err != nil || rec == nil {
				b.Fatal(rec, err)
			}
			i++
		}
	})
	for _, depth := range []float64{0, 0.5, 0.9} {
		at := int(depth * float64(n))
		after, want := fmt.Sprintf("obj/%08d", at), min(1000, n-at-1)
		if depth == 0 {
			after, want = "", min(1000, n)
		}
		b.Run(fmt.Sprintf("list1000-at-%.1f", depth), func(b *testing.B) {
			for b.Loop() {
				recs, _, err := db.List("bkt", "", after, 1000)
				if err != nil || len(recs) != want {
					b.Fatal(len(recs), err)
				}
			}
		})
	}
}

// fillBench writes n committed records, each after staging and dropping a
// shard entry as a PUT does, in large unsynced batches.
func fillBench(b *testing.B, db *DB, n int) {
	b.Helper()
	root := strings.Repeat("ab", 32)
	meta := client.ObjectMeta{Bucket: "bkt", Size: 4096, ETag: strings.Repeat("e", 32), Data: 4, Parity: 2,
		BlockSize: 1 << 20, Format: 1, Modified: time.Unix(1.7e9, 0).UTC(),
		Roots: []string{root, root, root, root, root, root}, Nodes: []string{"n1", "n2", "n3", "n4", "n5", "n6"}}
	wb := db.db.NewWriteBatch()
	for i := range n {
		meta.Key = fmt.Sprintf("obj/%08d", i)
		meta.Version = fmt.Sprintf("01K%023d", i)
		val, err := json.Marshal(client.Record{ObjectMeta: meta, Shard: 2})
		if err != nil {
			b.Fatal(err)
		}
		sk := stagedKey(meta.Bucket, meta.Key, meta.Version, 2)
		if err := wb.Set(sk, val); err != nil {
			b.Fatal(err)
		}
		if err := wb.Set(objectKey(meta.Bucket, meta.Key), val); err != nil {
			b.Fatal(err)
		}
		if err := wb.Delete(sk); err != nil {
			b.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		b.Fatal(err)
	}
}
