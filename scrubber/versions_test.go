package scrubber

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// createVersionedBucket creates a bucket whose record says Enabled.
func (c *cluster) createVersionedBucket(name string) {
	c.t.Helper()
	b := client.BucketRecord{Name: name, Version: ulid.Make().String(), Created: time.Now().UTC(), Versioning: client.VersioningEnabled}
	for _, tn := range c.nodes {
		if err := tn.c.PutBucket(context.Background(), b); err != nil {
			c.t.Fatal(err)
		}
	}
}

// readVersion decodes one version from the shards its nodes serve.
func (c *cluster) readVersion(meta client.ObjectMeta) ([]byte, error) {
	ctx := context.Background()
	readers := make([]io.Reader, meta.Data+meta.Parity)
	for i, n := range c.m.PlaceKey(meta.Bucket, meta.Key) {
		rc, err := c.byID[n.ID].c.ReadShard(ctx, meta.Bucket, meta.Key, meta.Version, i, 0, -1)
		if err != nil {
			continue
		}
		defer rc.Close()
		readers[i] = rc
	}
	cd, err := codec.New(meta.Data, meta.Parity, codec.WithBlockSize(meta.BlockSize))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err = cd.Decode(&buf, readers, meta.Size, 0, meta.Size)
	return buf.Bytes(), err
}

// TestScrubRebuildsNoncurrent: a noncurrent version that lost one shard
// to a deleted file and another to rot is verified and rebuilt below the
// current version, which stays current.
func TestScrubRebuildsNoncurrent(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	c.createVersionedBucket("bk")
	c.versioning = client.VersioningEnabled
	old := testData(20000, 1)
	v1 := c.put("bk", "k", old)
	v2 := c.put("bk", "k", testData(9000, 2))
	if err := os.Remove(c.shardPath(c.holder("bk", "k", 1), "bk", "k", v1.Version, 1)); err != nil {
		t.Fatal(err)
	}
	c.flip(v1, 4, 100)

	rep := mustRun(t, c.scrubber(nil))
	if rep.Noncurrent != 1 || rep.ShardsMissing != 1 || rep.ShardsCorrupt != 1 || rep.ShardsRebuilt != 2 {
		t.Fatalf("report: noncurrent %d, missing %d, corrupt %d, rebuilt %d; want 1, 1, 1, 2 (incomplete %q)",
			rep.Noncurrent, rep.ShardsMissing, rep.ShardsCorrupt, rep.ShardsRebuilt, rep.Incomplete)
	}
	for _, i := range []int{1, 4} {
		if _, err := os.Stat(c.shardPath(c.holder("bk", "k", i), "bk", "k", v1.Version, i)); err != nil {
			t.Errorf("shard %d of the noncurrent version not back: %v", i, err)
		}
	}
	// Every node still has v2 current.
	for id, rec := range c.stat("bk", "k") {
		if rec == nil || rec.Version != v2.Version {
			t.Errorf("node %s: current %+v, want %s", id, rec, v2.Version)
		}
	}
	// The rebuilt version reads back from data shards 0-3 (shard 1
	// rebuilt) with parity as spare.
	if got, err := c.readVersion(v1); err != nil || !bytes.Equal(got, old) {
		t.Fatalf("noncurrent version after scrub: %d bytes, %v", len(got), err)
	}
	// A second pass finds nothing to do.
	rep = mustRun(t, c.scrubber(nil))
	if rep.ShardsMissing != 0 || rep.ShardsCorrupt != 0 || rep.ShardsRebuilt != 0 || !rep.Healthy() {
		t.Fatalf("second pass: %+v", rep)
	}
}

// TestScrubSpreadsDeletedVersion: a node that missed a delete by version
// is told by the scrubber.
func TestScrubSpreadsDeletedVersion(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	c.createVersionedBucket("bk")
	v1 := c.put("bk", "k", testData(5000, 3))
	c.put("bk", "k", testData(5000, 4))
	ctx := context.Background()
	missed := c.holder("bk", "k", 5)
	for _, n := range c.m.PlaceKey("bk", "k") {
		if n.ID == missed {
			continue
		}
		if _, err := c.byID[n.ID].c.DeleteVersion(ctx, "bk", "k", v1.Version); err != nil {
			t.Fatal(err)
		}
	}
	rep := mustRun(t, c.scrubber(nil))
	if rep.PurgesSpread != 1 || rep.ShardsRebuilt != 0 {
		t.Fatalf("purges spread %d, rebuilt %d; want 1, 0", rep.PurgesSpread, rep.ShardsRebuilt)
	}
	kv, err := c.byID[missed].c.KeyVersions(ctx, "bk", "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(kv.Versions) != 1 || len(kv.Purged) != 1 {
		t.Fatalf("node that missed the delete: %d versions, purged %v", len(kv.Versions), kv.Purged)
	}
}

// TestScrubLifecycle: with a short day and the clock an hour ahead, one
// pass expires a current version (a delete marker above it, the version
// kept as noncurrent), the noncurrent versions past NewerNoncurrentVersions,
// and a delete marker left alone; a second pass finds nothing more to do.
func TestScrubLifecycle(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	doc := `<LifecycleConfiguration>` +
		`<Rule><ID>e</ID><Status>Enabled</Status><Filter><Prefix>e/</Prefix></Filter><Expiration><Days>1</Days></Expiration></Rule>` +
		`<Rule><ID>n</ID><Status>Enabled</Status><Filter><Prefix>n/</Prefix></Filter><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>1</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>` +
		`<Rule><ID>m</ID><Status>Enabled</Status><Filter><Prefix>m/</Prefix></Filter><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>` +
		`<Rule><ID>off</ID><Status>Disabled</Status><Filter><Prefix>k/</Prefix></Filter><Expiration><Days>1</Days></Expiration></Rule>` +
		`</LifecycleConfiguration>`
	b := client.BucketRecord{Name: "bk", Version: ulid.Make().String(), Created: time.Now().UTC(), Versioning: client.VersioningEnabled, Lifecycle: doc}
	ctx := context.Background()
	for _, tn := range c.nodes {
		if err := tn.c.PutBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	c.versioning = client.VersioningEnabled
	versioned := func(m client.ObjectMeta) client.ObjectMeta {
		m.Versioning, m.VersioningAt, m.Versioned = client.VersioningEnabled, b.Version, true
		return m
	}
	e1 := c.put("bk", "e/x", testData(3000, 1))
	n1 := c.put("bk", "n/x", testData(3000, 2))
	n2 := c.put("bk", "n/x", testData(3000, 3))
	n3 := c.put("bk", "n/x", testData(3000, 4))
	k1 := c.put("bk", "k/x", testData(3000, 5))
	m1 := c.put("bk", "m/x", testData(3000, 6))
	marker := versioned(client.ObjectMeta{Bucket: "bk", Key: "m/x", Version: ulid.Make().String(), Deleted: true, Modified: time.Now().UTC()})
	for _, n := range c.m.PlaceKey("bk", "m/x") {
		if _, err := c.byID[n.ID].c.Commit(ctx, marker); err != nil {
			t.Fatal(err)
		}
		if _, err := c.byID[n.ID].c.DeleteVersion(ctx, "bk", "m/x", m1.Version); err != nil {
			t.Fatal(err)
		}
	}

	ahead := func() time.Time { return time.Now().Add(time.Hour) }
	scrub := c.scrubber(func(cfg *Config) { cfg.LifecycleDay, cfg.Now = time.Second, ahead })
	rep := mustRun(t, scrub)
	if rep.Expired != 3 {
		t.Fatalf("expired %d, want 3 (incomplete %q)", rep.Expired, rep.Incomplete)
	}
	versionsOf := func(key string) []string {
		kv, err := c.byID[c.holder("bk", key, 0)].c.KeyVersions(ctx, "bk", key)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range kv.Versions {
			v := r.Version
			if r.Deleted {
				v = "marker"
			}
			out = append(out, v)
		}
		return out
	}
	if got := versionsOf("e/x"); len(got) != 2 || got[0] != "marker" || got[1] != e1.Version {
		t.Errorf("e/x versions %v, want a marker over %s", got, e1.Version)
	}
	if got := versionsOf("n/x"); len(got) != 2 || got[0] != n3.Version || got[1] != n2.Version {
		t.Errorf("n/x versions %v, want %s %s (%s expired)", got, n3.Version, n2.Version, n1.Version)
	}
	if got := versionsOf("m/x"); len(got) != 0 {
		t.Errorf("m/x versions %v, want none", got)
	}
	if got := versionsOf("k/x"); len(got) != 1 || got[0] != k1.Version {
		t.Errorf("k/x (disabled rule) versions %v", got)
	}
	rep = mustRun(t, scrub)
	if rep.Expired != 0 {
		t.Fatalf("second pass expired %d more", rep.Expired)
	}
}

// TestRebalanceMovesNoncurrent: after a node is drained, a pass moves
// the noncurrent versions' shards to the nodes the new map names, for keys
// whose shards move to nodes that held nothing of them (index swaps
// between nodes are not done for noncurrent versions yet), as the current
// versions' are; the version reads back from the new placement alone.
func TestRebalanceMovesNoncurrent(t *testing.T) {
	c := newCluster(t, 7, 4, 2)
	c.createVersionedBucket("bk")
	c.versioning = client.VersioningEnabled
	const drained = "n3"
	prev := c.m
	next := c.nextMap(func(m *placement.Map) {
		for i := range m.Nodes {
			if m.Nodes[i].ID == drained {
				m.Nodes[i].State = placement.StateDraining
			}
		}
	})
	// Keys on the drained node whose other shards keep their index.
	var keys []string
	for i := 0; len(keys) < 3 && i < 1000; i++ {
		key := fmt.Sprintf("k%d", i)
		was, now := prev.PlaceKey("bk", key), next.PlaceKey("bk", key)
		moved := 0
		for j := range was {
			if was[j].ID != now[j].ID {
				moved++
			}
		}
		if slices.ContainsFunc(was, func(n placement.Node) bool { return n.ID == drained }) && moved == 1 {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		t.Fatal("no key moves one shard only")
	}
	old := map[string]client.ObjectMeta{}
	for i, key := range keys {
		old[key] = c.put("bk", key, testData(5000+i, uint64(10+i)))
		c.put("bk", key, testData(3000+i, uint64(20+i)))
	}
	c.m = next
	s := c.scrubber(func(cfg *Config) { cfg.Map = c.m })
	// The first pass moves the current versions (repair phase), the
	// second the noncurrent ones under them.
	for range 2 {
		if rep := mustRun(t, s); len(rep.Incomplete) > 0 {
			t.Fatalf("incomplete: %q", rep.Incomplete)
		}
	}
	ctx := context.Background()
	for _, key := range keys {
		meta := old[key]
		for i, n := range c.m.PlaceKey("bk", key) {
			kv, err := c.byID[n.ID].c.KeyVersions(ctx, "bk", key)
			if err != nil {
				t.Fatal(err)
			}
			if len(kv.Versions) < 2 || !slices.ContainsFunc(kv.Versions[1:], func(r client.Record) bool { return r.Version == meta.Version && r.Shard == i }) {
				t.Errorf("%s: node %s lacks shard %d of the noncurrent version", key, n.ID, i)
			}
		}
		if got, err := c.readVersion(meta); err != nil || len(got) != int(meta.Size) {
			t.Errorf("%s: noncurrent version after the moves: %d bytes, %v", key, len(got), err)
		}
	}
}
