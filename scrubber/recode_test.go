package scrubber

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// TestRecodeNamesKeepTheirBaseTime: a re-code's name counts as its base
// version for the version a lifecycle marker takes above it and for a
// marker's age.
func TestRecodeNamesKeepTheirBaseTime(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	ahead := ulid.MustNew(ulid.Timestamp(now.Add(time.Hour)), ulid.DefaultEntropy()).String()
	r := client.RecodeVersion(ahead)
	got := versionAbove(r, now)
	if got <= r || client.CheckVersion(got) != nil || client.IsRecode(got) {
		t.Fatalf("versionAbove(%s) = %s, want a plain version above it", r, got)
	}
	m := client.ObjectMeta{Version: r, Deleted: true}
	if at := markerTime(m); !at.Equal(now.Add(time.Hour)) {
		t.Fatalf("markerTime of %s = %v, want %v", r, at, now.Add(time.Hour))
	}
}

// storedBytes sums the shard bytes the nodes serve for their committed
// record of bucket/key.
func (c *cluster) storedBytes(bucket, key string) int64 {
	c.t.Helper()
	ctx := context.Background()
	var total int64
	for _, tn := range c.nodes {
		ks, err := tn.c.Stat(ctx, bucket, key)
		if err != nil {
			c.t.Fatal(err)
		}
		rec := ks.Committed
		if rec == nil || rec.Shard < 0 {
			continue
		}
		rc, err := tn.c.ReadShard(ctx, bucket, key, rec.Version, rec.Shard, 0, -1)
		if err != nil {
			c.t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			c.t.Fatal(err)
		}
		total += n
	}
	return total
}

// TestRecodeRaisedObject: a null version of an unversioned bucket written
// 2+4 while two of its nodes were down is re-coded by a pass to the map's
// 4+2 under the name RecodeVersion(V), every field of its record but the
// version and layout kept; it reads back exact bytes, and the next write
// of the key is named above the re-code.
func TestRecodeRaisedObject(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	data := testData(9*4*testBlock+11, 5)
	c.put("bk", "plain", testData(5000, 6))
	meta := c.writeRaisedWith("bk", "r", data, func(m *client.ObjectMeta) {
		m.ContentType = "text/plain"
		m.UserMeta = map[string]string{"colour": "blue"}
		m.Headers = map[string]string{"Cache-Control": "no-cache"}
		m.Tagging = "a=b"
		m.Checksums = map[string]string{"crc32": "AAAAAA=="}
	}, 1, 4)
	before := c.storedBytes("bk", "r")

	rep := mustRun(t, c.scrubber(nil))
	if rep.Objects != 2 || rep.Raised != 1 || rep.Recoded != 1 || rep.RecodedBytes != int64(len(data)) ||
		rep.ShardsRebuilt != 0 || rep.RepairsFailed != 0 || rep.RedundancyAfter[6] != 2 || !rep.Healthy() {
		t.Fatalf("report = %+v", rep)
	}
	r := client.RecodeVersion(meta.Version)
	placed := c.m.PlaceKey("bk", "r")
	for i, n := range placed {
		rec := c.stat("bk", "r")[n.ID]
		want := meta
		want.Version, want.Data, want.Parity, want.Quorum = r, 4, 2, 0
		if rec == nil || rec.Shard != i || rec.Version != r || rec.Data != 4 || rec.Parity != 2 || rec.Quorum != 0 ||
			rec.Size != meta.Size || rec.ETag != meta.ETag || !rec.Modified.Equal(meta.Modified) ||
			rec.ContentType != meta.ContentType || !maps.Equal(rec.UserMeta, meta.UserMeta) ||
			!maps.Equal(rec.Headers, meta.Headers) || rec.Tagging != meta.Tagging || !maps.Equal(rec.Checksums, meta.Checksums) ||
			rec.Versioned || rec.Versioning != "" || len(rec.Roots) != 6 || rec.Nodes[i] != n.ID || slices.Contains(rec.Nodes, "") {
			t.Fatalf("node %s: record %+v, want %+v as shard %d", n.ID, rec, want, i)
		}
	}
	after := c.storedBytes("bk", "r")
	t.Logf("shard bytes on nodes for %d bytes: %d before (2+4 on 4 nodes), %d after (4+2 on 6)", len(data), before, after)
	if after >= before {
		t.Errorf("stored %d bytes after the re-code, %d before", after, before)
	}

	if got, err := c.read("bk", "r"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %d bytes (equal %v), %v", len(got), bytes.Equal(got, data), err)
	}
	// The next write of the key is named above the re-code.
	next := testData(7000, 7)
	c.put("bk", "r", next)
	for id, rec := range c.stat("bk", "r") {
		if rec == nil || rec.Version <= r || client.IsRecode(rec.Version) {
			t.Fatalf("node %s: after a write, record %+v, want a version above %s", id, rec, r)
		}
	}
	if got, err := c.read("bk", "r"); err != nil || !bytes.Equal(got, next) {
		t.Fatalf("read after the write: %d bytes, not the %d written: %v", len(got), len(next), err)
	}

	rep = mustRun(t, c.scrubber(nil))
	if rep.Raised != 0 || rep.Recoded != 0 || rep.Redundancy[6] != 2 || !rep.Healthy() {
		t.Fatalf("second pass: report = %+v", rep)
	}
}

// TestRecodeDryRun: a dry run re-codes nothing.
func TestRecodeDryRun(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	meta := c.writeRaised("bk", "r", testData(3*testBlock, 8), 2)
	rep := mustRun(t, c.scrubber(func(cfg *Config) { cfg.DryRun = true }))
	if rep.Raised != 1 || rep.Recoded != 0 {
		t.Fatalf("report = %+v", rep)
	}
	for id, rec := range c.stat("bk", "r") {
		if id != c.holder("bk", "r", 2) && (rec == nil || rec.Version != meta.Version || rec.Data != 3) {
			t.Fatalf("node %s: record %+v after a dry run, want %s 3+3", id, rec, meta.Version)
		}
	}
}

// raceCommit is a node client that runs hook once, before the first
// commit of a re-code it is asked to send.
type raceCommit struct {
	client.Node
	once *sync.Once
	hook func()
}

func (r raceCommit) Commit(ctx context.Context, m client.ObjectMeta) (client.Record, error) {
	if client.IsRecode(m.Version) {
		r.once.Do(r.hook)
	}
	return r.Node.Commit(ctx, m)
}

// TestRecodeLosesToClientWrite: a client write of the key that lands
// after the re-code staged its shards and before it commits wins: every
// node refuses the re-code, the write reads back, and nothing of the
// re-code is left.
func TestRecodeLosesToClientWrite(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	data := testData(5*4*testBlock+3, 9)
	meta := c.writeRaised("bk", "r", data, 0, 3)
	next := testData(6000, 10)
	var once sync.Once
	raced := false
	hook := func() {
		raced = true
		c.put("bk", "r", next)
	}
	s := c.scrubber(func(cfg *Config) {
		cfg.Dial = func(n placement.Node) client.Node { return raceCommit{Node: c.byID[n.ID].c, once: &once, hook: hook} }
	})
	rep := mustRun(t, s)
	if !raced {
		t.Fatal("the pass never committed a re-code")
	}
	if rep.Raised != 1 || rep.Recoded != 0 || rep.Changed != 1 || !rep.Healthy() {
		t.Fatalf("report = %+v", rep)
	}
	r := client.RecodeVersion(meta.Version)
	ctx := context.Background()
	for _, tn := range c.nodes {
		ks, err := tn.c.Stat(ctx, "bk", "r")
		if err != nil {
			t.Fatal(err)
		}
		if ks.Committed == nil || ks.Committed.Version <= r || ks.Committed.Size != int64(len(next)) {
			t.Fatalf("node %s: committed %+v, want the client's write above %s", tn.id, ks.Committed, r)
		}
		for _, sr := range ks.Staged {
			if sr.Version == r {
				t.Fatalf("node %s: re-code %s still staged", tn.id, r)
			}
		}
	}
	if got, err := c.read("bk", "r"); err != nil || !bytes.Equal(got, next) {
		t.Fatalf("read: %d bytes, not the %d the client wrote: %v", len(got), len(next), err)
	}
}

// TestRecodeRebuiltRaisedObject: a raised version already whole at its
// own layout (rebuilt while its bucket's record said versioned) is
// re-coded by a later pass once the record says unversioned.
func TestRecodeRebuiltRaisedObject(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	c.putBucketState("bk", client.VersioningEnabled)
	data := testData(3*4*testBlock+5, 11)
	meta := c.writeRaised("bk", "r", data, 0, 5)
	rep := mustRun(t, c.scrubber(nil))
	if rep.Raised != 1 || rep.Recoded != 0 || rep.ShardsRebuilt != 2 {
		t.Fatalf("first pass: report = %+v", rep)
	}
	c.putBucketState("bk", "")
	rep = mustRun(t, c.scrubber(nil))
	if rep.Raised != 1 || rep.Recoded != 1 || rep.RecodedBytes != int64(len(data)) || rep.Redundancy[6] != 1 || rep.RedundancyAfter[6] != 1 || !rep.Healthy() {
		t.Fatalf("second pass: report = %+v", rep)
	}
	r := client.RecodeVersion(meta.Version)
	for id, rec := range c.stat("bk", "r") {
		if rec == nil || rec.Version != r || rec.Data != 4 || rec.Parity != 2 {
			t.Fatalf("node %s: record %+v, want %s 4+2", id, rec, r)
		}
	}
	if got, err := c.read("bk", "r"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %d bytes, %v", len(got), err)
	}
}

// raceStage is a node client that runs hook once, before the first
// stage of a re-code it is asked to send.
type raceStage struct {
	client.Node
	once *sync.Once
	hook func()
}

func (r raceStage) Stage(ctx context.Context, bucket, key, version string, shard, block int, body io.Reader) (client.StagedRef, error) {
	if client.IsRecode(version) {
		r.once.Do(r.hook)
	}
	return r.Node.Stage(ctx, bucket, key, version, shard, block, body)
}

// TestRecodeStopsWhenVersioningTurnsOn: versioning enabled on the bucket
// after the pass read its record shows in the stage answers; the re-code
// is aborted (a node would keep the version beside it) and the version is
// rebuilt at its own layout instead.
func TestRecodeStopsWhenVersioningTurnsOn(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	data := testData(2*4*testBlock+1, 12)
	meta := c.writeRaised("bk", "r", data, 2, 5)
	var once sync.Once
	raced := false
	hook := func() {
		raced = true
		c.putBucketState("bk", client.VersioningEnabled)
	}
	s := c.scrubber(func(cfg *Config) {
		cfg.Dial = func(n placement.Node) client.Node { return raceStage{Node: c.byID[n.ID].c, once: &once, hook: hook} }
	})
	rep := mustRun(t, s)
	if !raced {
		t.Fatal("the pass never staged a re-code")
	}
	if rep.Raised != 1 || rep.Recoded != 0 || rep.ShardsRebuilt != 2 || rep.RedundancyAfter[6] != 1 || !rep.Healthy() {
		t.Fatalf("report = %+v", rep)
	}
	r := client.RecodeVersion(meta.Version)
	for _, tn := range c.nodes {
		ks, err := tn.c.Stat(context.Background(), "bk", "r")
		if err != nil {
			t.Fatal(err)
		}
		if ks.Committed == nil || ks.Committed.Version != meta.Version || ks.Committed.Data != 2 {
			t.Fatalf("node %s: committed %+v, want %s 2+4", tn.id, ks.Committed, meta.Version)
		}
		for _, sr := range ks.Staged {
			if sr.Version == r {
				t.Fatalf("node %s: re-code %s still staged", tn.id, r)
			}
		}
	}
}

// TestRecodeRaisedRecode: a re-code still raised (as the gateway finishes
// a write whose commit lost nodes) is re-coded to the map's layout as the
// next generation, V.g to V.(g+1), and reads back exact bytes; one at the
// last generation has no name left above it and is rebuilt at its own
// layout instead.
func TestRecodeRaisedRecode(t *testing.T) {
	for _, tc := range []struct {
		gen     int  // generation of the raised version
		recoded bool // re-coded to generation gen+1
	}{
		{1, true},
		{2, true},
		{client.MaxRecodeGeneration - 1, true},
		{client.MaxRecodeGeneration, false},
	} {
		t.Run(fmt.Sprintf("generation %d", tc.gen), func(t *testing.T) {
			c := newCluster(t, 6, 4, 2)
			data := testData(7*4*testBlock+13, uint64(20+tc.gen))
			meta := c.writeRaisedWith("bk", "r", data, func(m *client.ObjectMeta) {
				m.Version += "." + strconv.Itoa(tc.gen)
				m.Tagging = "t=1"
			}, 0, 3)
			if client.RecodeGeneration(meta.Version) != tc.gen || client.CheckVersion(meta.Version) != nil {
				t.Fatalf("raised version %s is not a generation %d re-code", meta.Version, tc.gen)
			}
			before := c.storedBytes("bk", "r")

			rep := mustRun(t, c.scrubber(nil))
			want, d, p := meta.Version, 2, 4
			rebuilt, recoded := int64(2), int64(0)
			if tc.recoded {
				want, d, p = client.BaseVersion(meta.Version)+"."+strconv.Itoa(tc.gen+1), 4, 2
				rebuilt, recoded = 0, 1
			}
			if rep.Raised != 1 || rep.Recoded != recoded || rep.ShardsRebuilt != rebuilt || rep.RepairsFailed != 0 || !rep.Healthy() {
				t.Fatalf("report = %+v", rep)
			}
			for i, n := range c.m.PlaceKey("bk", "r") {
				rec := c.stat("bk", "r")[n.ID]
				if rec == nil || rec.Version != want || rec.Shard != i || rec.Data != d || rec.Parity != p ||
					rec.Size != meta.Size || rec.ETag != meta.ETag || rec.Tagging != "t=1" {
					t.Fatalf("node %s: record %+v, want %s %d+%d as shard %d", n.ID, rec, want, d, p, i)
				}
			}
			if got, err := c.read("bk", "r"); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read: %d bytes (equal %v), %v", len(got), bytes.Equal(got, data), err)
			}
			if after := c.storedBytes("bk", "r"); tc.recoded && after >= before {
				t.Errorf("stored %d bytes after the re-code, %d before", after, before)
			}

			// A second pass finds nothing left to do.
			rep = mustRun(t, c.scrubber(nil))
			if raised := 1 - recoded; rep.Raised != raised || rep.Recoded != 0 || rep.ShardsRebuilt != 0 || !rep.Healthy() {
				t.Fatalf("second pass: report = %+v", rep)
			}
		})
	}
}
