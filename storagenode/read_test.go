package storagenode

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// swapShard does on one node what the rebalancer's swap does: stage shard
// to of the version, drop the shard from it holds, commit the version.
func (tn *testNode) swapShard(t *testing.T, bucket, key, version string, o object, from, to int) {
	t.Helper()
	ctx := context.Background()
	if _, err := tn.c.Stage(ctx, bucket, key, version, to, testBlock, bytes.NewReader(o.shards[to])); err != nil {
		t.Fatalf("Stage shard %d: %v", to, err)
	}
	if ok, err := tn.c.DropShard(ctx, bucket, key, version, from); err != nil || !ok {
		t.Fatalf("DropShard(%d) = %v, %v", from, ok, err)
	}
	if rec, err := tn.c.Commit(ctx, o.meta(bucket, key, version)); err != nil || rec.Shard != to {
		t.Fatalf("Commit after drop = %+v, %v; want shard %d", rec, err, to)
	}
}

// TestReadNamingAnotherShardIsRefused: after the node swapped shard j of a
// version for shard i, a read that names j (it resolved the version
// before the swap) is refused with ErrWrongShard, across the wire, and
// never gets shard i's bytes, which are as long as j's and pass every
// block check; a read naming i gets shard i. Files, inline and packed
// shards alike, within a superseded grace and after the version itself
// is superseded.
func TestReadNamingAnotherShardIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		edit func(*Config)
	}{
		{"file", 3*testBlock + 5, nil},
		{"inline", 100, func(c *Config) { c.InlineMax = inlineMax }},
		{"packed", 100, func(c *Config) { c.PackMax, c.PackFileSize = inlineMax, 3*inlineMax }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := startNode(t, "", func(c *Config) {
				c.SupersededGrace = time.Hour
				if tc.edit != nil {
					tc.edit(c)
				}
			})
			ctx := context.Background()
			o := encode(t, tc.size, 71)
			const j, i = 1, 2
			tn.put(t, "bk", "k", ver(1), o, j)
			tn.swapShard(t, "bk", "k", ver(1), o, j, i)

			check := func(when string) {
				t.Helper()
				rc, err := tn.c.ReadShard(ctx, "bk", "k", ver(1), j, 0, -1)
				if err == nil {
					rc.Close()
					t.Fatalf("%s: ReadShard naming shard %d served the node's shard %d", when, j, i)
				}
				if !errors.Is(err, client.ErrWrongShard) || !kerr.Is(kerr.NotExist, err) {
					t.Fatalf("%s: ReadShard naming shard %d: %v; want NotExist and ErrWrongShard", when, j, err)
				}
				if got := tn.readAll(t, "bk", "k", ver(1), i); !bytes.Equal(got, o.shards[i]) {
					t.Fatalf("%s: ReadShard naming shard %d = %d bytes, not the shard", when, i, len(got))
				}
				// A range names the index too.
				if _, err := tn.c.ReadShard(ctx, "bk", "k", ver(1), j, 10, 20); !errors.Is(err, client.ErrWrongShard) {
					t.Fatalf("%s: range naming shard %d: %v; want ErrWrongShard", when, j, err)
				}
			}
			check("committed")
			// Superseded, the version's shard is still served for the
			// grace, by its own index only.
			tn.put(t, "bk", "k", ver(2), o, 0)
			check("superseded")
			// No shard of a version at all is plain NotExist.
			_, err := tn.c.ReadShard(ctx, "bk", "k", ver(3), j, 0, -1)
			if !kerr.Is(kerr.NotExist, err) || errors.Is(err, client.ErrWrongShard) {
				t.Errorf("ReadShard of a version the node never had: %v; want NotExist without ErrWrongShard", err)
			}
		})
	}
}

// TestVerifyNamingAnotherShardIsAbsent: Verify names the shard index too.
// After a swap, a verify of the old index is answered VerifyAbsent with
// the index the node holds, not a verdict on the other shard's bytes,
// which would count a shard the node no longer has as healthy; the new
// index verifies.
func TestVerifyNamingAnotherShardIsAbsent(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 3*testBlock+5, 72)
	const j, i = 3, 0
	tn.put(t, "bk", "k", ver(1), o, j)
	tn.swapShard(t, "bk", "k", ver(1), o, j, i)
	refs := []client.ShardRef{
		{Bucket: "bk", Key: "k", Version: ver(1), Shard: j},
		{Bucket: "bk", Key: "k", Version: ver(1), Shard: i},
	}
	res, err := tn.c.Verify(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	want := []client.VerifyResult{
		{ShardRef: refs[0], Shard: i, Status: client.VerifyAbsent},
		{ShardRef: refs[1], Shard: i, Status: client.VerifyOK, Bytes: int64(len(o.shards[i]))},
	}
	for k := range want {
		if res[k] != want[k] {
			t.Errorf("Verify naming shard %d = %+v, want %+v", refs[k].Shard, res[k], want[k])
		}
	}
	_, err = tn.c.Verify(ctx, []client.ShardRef{{Bucket: "bk", Key: "k", Version: ver(1), Shard: -1}})
	wantKind(t, err, kerr.Invalid)
}

// TestDropNamingAnotherShardKeepsTheHeldOne: a drop naming an index the
// node does not hold of the version (here the one staged on it mid-swap)
// drops nothing: not the held shard, not the staged copy.
func TestDropNamingAnotherShardKeepsTheHeldOne(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 3*testBlock+5, 73)
	const held, staged = 2, 5
	tn.put(t, "bk", "k", ver(1), o, held)
	if _, err := tn.c.Stage(ctx, "bk", "k", ver(1), staged, testBlock, bytes.NewReader(o.shards[staged])); err != nil {
		t.Fatal(err)
	}
	if ok, err := tn.c.DropShard(ctx, "bk", "k", ver(1), staged); err != nil || ok {
		t.Fatalf("DropShard naming shard %d = %v, %v; want nothing dropped", staged, ok, err)
	}
	ks, err := tn.c.Stat(ctx, "bk", "k")
	if err != nil || ks.Committed == nil || ks.Committed.Shard != held {
		t.Fatalf("Stat after the refused drop = %+v, %v", ks, err)
	}
	if got := tn.readAll(t, "bk", "k", ver(1), held); !bytes.Equal(got, o.shards[held]) {
		t.Error("held shard changed by a drop naming another")
	}
	if got := files(t, tn.cfg.Dir, stagingDir); len(got) != 1 {
		t.Errorf("staging after the refused drop = %v, want the staged copy", got)
	}
}

// TestCommitOfAnotherShardKeepsTheHeldOne: a commit of a version the node
// already holds, with a staged shard of another index (a rebuild sent to
// a node whose shard was swapped meanwhile), keeps the held shard and
// answers with its index, and the staged bytes are never served under
// either index.
func TestCommitOfAnotherShardKeepsTheHeldOne(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 3*testBlock+5, 74)
	const held, other = 1, 4
	tn.put(t, "bk", "k", ver(1), o, held)
	if _, err := tn.c.Stage(ctx, "bk", "k", ver(1), other, testBlock, bytes.NewReader(o.shards[other])); err != nil {
		t.Fatal(err)
	}
	rec, err := tn.c.Commit(ctx, o.meta("bk", "k", ver(1)))
	if err != nil || rec.Version != ver(1) || rec.Shard != held {
		t.Fatalf("Commit = %+v, %v; want shard %d kept", rec, err, held)
	}
	if _, err := tn.c.ReadShard(ctx, "bk", "k", ver(1), other, 0, -1); !errors.Is(err, client.ErrWrongShard) {
		t.Errorf("ReadShard naming shard %d: %v; want ErrWrongShard", other, err)
	}
	if got := tn.readAll(t, "bk", "k", ver(1), held); !bytes.Equal(got, o.shards[held]) {
		t.Error("held shard changed by the commit")
	}
	if got := files(t, tn.cfg.Dir, stagingDir); len(got) != 0 {
		t.Errorf("staging after the commit = %v", got)
	}
}
