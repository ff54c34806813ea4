package storagenode

import (
	"context"
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// A multipart manifest commits without a staged shard, is kept with its
// parts as given, and is replaced like any version; any other version
// still needs its shard.
func TestCommitManifest(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 5000, 3)
	tn.put(t, "bk", "m", ver(1), o, 2)

	manifest := client.ObjectMeta{
		Bucket: "bk", Key: "m", Version: ver(2), Size: 12345, ETag: "0123-2",
		Data: 4, Parity: 2, BlockSize: testBlock,
		Parts: []client.PartRef{
			{Number: 1, Key: "\x00mpu/u/00001.a", Version: ver(1), Size: 10000, ETag: "aa"},
			{Number: 2, Key: "\x00mpu/u/00002.b", Version: ver(1), Size: 2345, ETag: "bb", Checksums: map[string]string{"crc32": "AAAAAA=="}},
		},
		Checksums: map[string]string{"crc32": "BBBBBB==-2"},
	}
	rec, err := tn.c.Commit(ctx, manifest)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Shard != -1 || rec.Version != ver(2) || len(rec.Parts) != 2 || rec.Parts[1].Checksums["crc32"] != "AAAAAA==" {
		t.Fatalf("committed %+v", rec)
	}
	ks, err := tn.c.Stat(ctx, "bk", "m")
	if err != nil || ks.Committed == nil || ks.Committed.Parts[0].Key != "\x00mpu/u/00001.a" || ks.Committed.Checksums["crc32"] != "BBBBBB==-2" {
		t.Fatalf("Stat after the manifest: %+v, %v", ks, err)
	}
	// The replaced version's shard is gone, and the manifest has none.
	if got := files(t, tn.cfg.Dir, shardsDir); len(got) != 0 {
		t.Errorf("shard files after the manifest replaced the object: %v", got)
	}
	_, err = tn.c.ReadShard(ctx, "bk", "m", ver(2), 0, 0, -1)
	wantKind(t, err, kerr.NotExist)
	page, err := tn.c.List(ctx, "bk", "", "", 10)
	if err != nil || len(page.Records) != 1 || len(page.Records[0].Parts) != 2 {
		t.Fatalf("List: %+v, %v", page, err)
	}

	// A version without parts and not a delete marker still needs a shard.
	_, err = tn.c.Commit(ctx, client.ObjectMeta{Bucket: "bk", Key: "m", Version: ver(3), Size: 1, Data: 4, Parity: 2, BlockSize: testBlock})
	wantKind(t, err, kerr.NotExist)
	// A newer object replaces the manifest.
	tn.put(t, "bk", "m", ver(4), o, 0)
	if ks, _ := tn.c.Stat(ctx, "bk", "m"); ks.Committed == nil || ks.Committed.Version != ver(4) || len(ks.Committed.Parts) != 0 {
		t.Fatalf("after a newer object: %+v", ks.Committed)
	}
}
