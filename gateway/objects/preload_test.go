package objects

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// TestPreloadSmallObject: a small object's data shards come with the
// stats of the d data shards' nodes (quickResolve), so a GET (whole or a
// range) makes d calls and streams nothing; an object over the limit
// streams its data shards as before.
func TestPreloadSmallObject(t *testing.T) {
	small := payload(3*4*testBlock+11, 7) // shards of 4 frames
	large := payload(5*4*testBlock, 8)    // shards of 5 frames
	limit := int64(4 * (codec.DigestSize + testBlock))
	c := newCluster(t, 6, 4, 2, func(cfg *Config) { cfg.PreloadMax = limit })
	c.put("small", small)
	c.put("large", large)

	calls := func(key string) (stats, preloads, streams int) {
		for i := range 6 {
			n := c.shardNode(key, i)
			stats += n.Calls("stat")
			preloads += n.Calls("preload")
			streams += n.Calls("read")
		}
		return
	}
	for _, tc := range []struct {
		key               string
		data              []byte
		off, length       int64
		preloads, streams int
	}{
		{"small", small, 0, int64(len(small)), 4, 0},
		{"small", small, 4*testBlock + 3, 2 * testBlock, 4, 0},
		{"large", large, 0, int64(len(large)), 0, 4},
	} {
		s0, p0, r0 := calls(tc.key)
		obj, err := c.s.OpenObject(context.Background(), testBucket, tc.key)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := obj.WriteRange(context.Background(), &buf, tc.off, tc.length); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), tc.data[tc.off:tc.off+tc.length]) {
			t.Fatalf("%s [%d,+%d): wrong bytes", tc.key, tc.off, tc.length)
		}
		s1, p1, r1 := calls(tc.key)
		if s1-s0 != 4 || p1-p0 != tc.preloads || r1-r0 != tc.streams {
			t.Errorf("%s: %d stats, %d preloaded shards, %d streams; want 4, %d, %d",
				tc.key, s1-s0, p1-p0, r1-r0, tc.preloads, tc.streams)
		}
	}
	if hints := c.allHints(); len(hints) != 0 {
		t.Errorf("hints after healthy reads: %v", hints)
	}
}

// TestPreloadDegraded: with two data shards' nodes down, the preloaded
// data shards and the parity streams still give the exact bytes.
func TestPreloadDegraded(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	data := payload(2*4*testBlock+100, 9)
	c.put("k", data)
	c.shardNode("k", 0).SetDown("*", true)
	c.shardNode("k", 3).SetDown("*", true)
	c.mustGet("k", data)
}

// TestPreloadParityWhenDataNodeDown: with a data shard's node known down,
// the stats bring parity shards too, so a degraded small GET streams
// nothing either.
func TestPreloadParityWhenDataNodeDown(t *testing.T) {
	c := newHealthCluster(t, 6, 4, 2)
	data := payload(2*4*testBlock+100, 13)
	c.put("k", data)
	for _, i := range []int{0, 3} {
		n := c.shardNode("k", i)
		n.SetDown("*", true)
		c.waitState(n.ID(), health.Down)
	}
	streams := func() (n int) {
		for _, fn := range c.list {
			n += fn.Calls("read")
		}
		return n
	}
	before := streams()
	c.mustGet("k", data)
	if got := streams() - before; got != 0 {
		t.Errorf("degraded small GET opened %d shard streams, want 0", got)
	}
	for _, i := range []int{4, 5} {
		if c.shardNode("k", i).Calls("preload") == 0 {
			t.Errorf("parity shard %d not fetched with the stat", i)
		}
	}
}

// TestQuickResolveFallsBack: a GET asks only the d data shards' nodes
// when they agree; when they do not (one missed the newest commit, one
// holds a newer version staged), it asks every node and still serves the
// newest committed version. A delete is seen by the d nodes alone.
func TestQuickResolveFallsBack(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	stats := func(key string) (n int) {
		for i := range 6 {
			n += c.shardNode(key, i).Calls("stat")
		}
		return n
	}
	get := func(key string, want []byte, wantStats int) {
		t.Helper()
		before := stats(key)
		c.mustGet(key, want)
		if got := stats(key) - before; got != wantStats {
			t.Errorf("GET %s made %d stats, want %d", key, got, wantStats)
		}
	}
	v1, v2 := payload(3*testBlock, 21), payload(5*testBlock+1, 22)

	// One data node missed the newest commit: the d disagree.
	c.put("stale", v1)
	lagging := c.shardNode("stale", 1)
	lagging.Edit(func(n *nodetest.State) { n.DropCommit = true })
	c.put("stale", v2)
	lagging.Edit(func(n *nodetest.State) { n.DropCommit = false })
	get("stale", v2, 4+6)

	// A newer version staged on a data node: a write in progress, or one
	// to roll forward.
	c.put("busy", v1)
	if _, err := c.shardNode("busy", 0).Stage(context.Background(), testBucket, "busy", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ", 0, testBlock, bytes.NewReader(nil)); err != nil {
		t.Fatal(err)
	}
	get("busy", v1, 4+6)

	// Agreement, the usual case.
	c.put("calm", v1)
	get("calm", v1, 4)
	if err := c.s.DeleteObject(context.Background(), testBucket, "calm"); err != nil {
		t.Fatal(err)
	}
	before := stats("calm")
	if _, err := c.get("calm"); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("GET after delete: %v", err)
	}
	if got := stats("calm") - before; got != 4 {
		t.Errorf("GET of a deleted key made %d stats, want 4", got)
	}
}
