package meta

import (
	"bytes"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/storagenode/internal/pack"
)

// TestBlobs: inline and packed entries keep their kind through a commit's
// rename, ReplaceLoc swaps only the location it was told, and deletes
// report what they removed.
func TestBlobs(t *testing.T) {
	db := openTest(t, t.TempDir())
	loc := pack.Loc{Pack: 3, Off: 100, Len: 42}
	inline := Staged{Bucket: "b", Key: "i", Version: "V1", Shard: 0, Staged: time.Now(), File: "staging/i"}
	packed := Staged{Bucket: "b", Key: "p", Version: "V1", Shard: 1, Staged: time.Now(), File: "staging/p"}
	if _, err := db.PutStagedInline(inline, Blob{Data: []byte("bytes")}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutStagedInline(packed, Blob{Packed: true, Loc: loc}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		s  Staged
		to string
	}{{inline, "shards/i"}, {packed, "shards/p"}} {
		if err := db.Commit(rec(c.s.Bucket, c.s.Key, c.s.Version, false), []Staged{c.s}, Move{From: c.s.File, To: c.to}, Garbage{}); err != nil {
			t.Fatal(err)
		}
		if ok, _ := db.HasBlob(c.s.File); ok {
			t.Errorf("%s still there after the commit's rename", c.s.File)
		}
	}
	if b, ok, err := db.Blob("shards/i"); err != nil || !ok || b.Packed || !bytes.Equal(b.Data, []byte("bytes")) {
		t.Errorf("inline after rename = %+v, %v, %v", b, ok, err)
	}
	if b, ok, err := db.Blob("shards/p"); err != nil || !ok || !b.Packed || b.Loc != loc {
		t.Errorf("packed after rename = %+v, %v, %v", b, ok, err)
	}
	var seen []string
	if err := db.ScanPacked(func(path string, l pack.Loc) { seen = append(seen, path) }); err != nil || len(seen) != 1 || seen[0] != "shards/p" {
		t.Errorf("ScanPacked = %v, %v; want [shards/p]", seen, err)
	}
	moved := pack.Loc{Pack: 9, Off: 0, Len: 42}
	if ok, err := db.ReplaceLoc("shards/p", pack.Loc{Pack: 3, Off: 0, Len: 42}, moved); err != nil || ok {
		t.Errorf("ReplaceLoc from a wrong location = %v, %v; want false", ok, err)
	}
	if ok, err := db.ReplaceLoc("shards/i", loc, moved); err != nil || ok {
		t.Errorf("ReplaceLoc of an inline file = %v, %v; want false", ok, err)
	}
	if ok, err := db.ReplaceLoc("shards/p", loc, moved); err != nil || !ok {
		t.Errorf("ReplaceLoc = %v, %v; want true", ok, err)
	}
	if b, _, _ := db.Blob("shards/p"); b.Loc != moved {
		t.Errorf("after ReplaceLoc the location is %+v", b.Loc)
	}
	for _, p := range []string{"shards/i", "shards/p", "shards/none"} {
		ok, err := db.DeleteBlob(p)
		if err != nil || ok != (p != "shards/none") {
			t.Errorf("DeleteBlob(%s) = %v, %v", p, ok, err)
		}
	}
}
