package objects

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func TestPutGetSizes(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	stripe := 4 * testBlock
	sizes := []int{0, 1, testBlock - 1, testBlock, testBlock + 1, stripe - 1, stripe, stripe + 1, 3*stripe + 123, 7*stripe + 3}
	for i, size := range sizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			key := fmt.Sprintf("obj-%d", size)
			data := payload(size, byte(i))
			in := PutInput{
				Bucket: testBucket, Key: key, Size: int64(size), Body: bytes.NewReader(data),
				ContentType: "application/x-test", UserMeta: map[string]string{"color": "blue"},
			}
			if i%2 == 1 {
				in.Size = -1 // unknown length
			}
			info, err := c.s.PutObject(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			want := ObjectInfo{
				Bucket: testBucket, Key: key, Version: info.Version, Size: int64(size), ETag: md5hex(data),
				ContentType: "application/x-test", UserMeta: map[string]string{"color": "blue"}, Modified: testNow,
			}
			if !equalInfo(info, want) {
				t.Fatalf("put info %+v, want %+v", info, want)
			}
			st, err := c.s.StatObject(context.Background(), testBucket, key)
			if err != nil || !equalInfo(st, want) {
				t.Fatalf("stat: %+v, %v; want %+v", st, err, want)
			}
			obj, err := c.s.OpenObject(context.Background(), testBucket, key)
			if err != nil {
				t.Fatal(err)
			}
			if !equalInfo(obj.Info(), want) {
				t.Fatalf("open info %+v, want %+v", obj.Info(), want)
			}
			var buf bytes.Buffer
			if err := obj.WriteRange(context.Background(), &buf, 0, int64(size)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), data) {
				t.Fatalf("read %d bytes, not the %d written", buf.Len(), size)
			}
			// Every node committed its shard, with the same metadata.
			for i, nd := range c.s.Map().PlaceKey(testBucket, key) {
				rec := c.nodes[nd.ID].Committed(testBucket, key)
				if rec == nil || rec.Version != info.Version || rec.Shard != i || rec.Nodes[i] != nd.ID {
					t.Fatalf("node %s: record %+v, want shard %d of %s", nd.ID, rec, i, info.Version)
				}
				if rec.Data != 4 || rec.Parity != 2 || rec.BlockSize != testBlock || rec.Format != codec.FormatVersion || len(rec.Roots) != 6 {
					t.Fatalf("node %s: bad layout in %+v", nd.ID, rec.ObjectMeta)
				}
			}
			if h := c.allHints(); len(h) != 0 {
				t.Fatalf("healthy put and get sent hints: %v", h)
			}
		})
	}
}

func equalInfo(a, b ObjectInfo) bool {
	return a.Bucket == b.Bucket && a.Key == b.Key && a.Version == b.Version && a.Size == b.Size &&
		a.ETag == b.ETag && a.ContentType == b.ContentType && maps.Equal(a.UserMeta, b.UserMeta) &&
		a.Modified.Equal(b.Modified)
}

func TestRangeReads(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	stripe := int64(4 * testBlock)
	size := 3*stripe + 5000
	data := payload(int(size), 7)
	c.put("r", data)
	ranges := []struct{ off, n int64 }{
		{0, 1},
		{0, size},
		{size - 1, 1},
		{testBlock - 1, 2},             // across a block boundary
		{stripe - 1, 2},                // across a stripe boundary
		{3*testBlock + 10, 2 * stripe}, // starts in the last data block of a stripe
		{stripe + 100, stripe},         // middle
		{3 * stripe, 5000},             // exactly the short last stripe
		{3*stripe + 4999, 1},
		{123, 0},
		{size, 0},
	}
	obj, err := c.s.OpenObject(context.Background(), testBucket, "r")
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T) {
		for _, r := range ranges {
			var buf bytes.Buffer
			if err := obj.WriteRange(context.Background(), &buf, r.off, r.n); err != nil {
				t.Fatalf("range %d+%d: %v", r.off, r.n, err)
			}
			if !bytes.Equal(buf.Bytes(), data[r.off:r.off+r.n]) {
				t.Fatalf("range %d+%d: wrong bytes", r.off, r.n)
			}
		}
	}
	t.Run("healthy", check)
	t.Run("data shard 1 down", func(t *testing.T) {
		n := c.shardNode("r", 1)
		n.SetDown("*", true)
		defer n.SetDown("*", false)
		check(t)
	})
	t.Run("data shards 0 and 3 down", func(t *testing.T) {
		for _, i := range []int{0, 3} {
			n := c.shardNode("r", i)
			n.SetDown("*", true)
			defer n.SetDown("*", false)
		}
		check(t)
	})

	for _, r := range []struct{ off, n int64 }{{-1, 1}, {0, -1}, {0, size + 1}, {size, 1}, {size + 1, 0}} {
		err := obj.WriteRange(context.Background(), io.Discard, r.off, r.n)
		wantErr(t, err, ErrInvalidRange, kerr.Invalid)
	}
}

func TestReadsOnlyNeededShards(t *testing.T) {
	c := newCluster(t, 6, 4, 2, noPreload)
	data := payload(8*testBlock, 3)
	c.put("k", data)
	obj, err := c.s.OpenObject(context.Background(), testBucket, "k")
	if err != nil {
		t.Fatal(err)
	}
	before := make([]int, 6)
	for i := range 6 {
		before[i] = c.shardNode("k", i).Calls("read")
	}
	var buf bytes.Buffer
	// Bytes of data block 1 of the second stripe only.
	if err := obj.WriteRange(context.Background(), &buf, 4*testBlock+testBlock+5, 10); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), data[5*testBlock+5:5*testBlock+15]) {
		t.Fatal("wrong bytes")
	}
	for i := range 6 {
		want := 0
		if i == 1 {
			want = 1
		}
		if got := c.shardNode("k", i).Calls("read") - before[i]; got != want {
			t.Errorf("shard %d read %d times, want %d", i, got, want)
		}
	}
}

func TestGetAnyTwoDown(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	data := payload(5*4*testBlock+77, 9)
	c.put("k", data)
	for i := range c.list {
		for j := i + 1; j < len(c.list); j++ {
			a, b := c.list[i], c.list[j]
			t.Run(a.ID()+"+"+b.ID(), func(t *testing.T) {
				a.SetDown("*", true)
				b.SetDown("*", true)
				defer a.SetDown("*", false)
				defer b.SetDown("*", false)
				c.mustGet("k", data)
			})
		}
	}
	// Missing shards were reported, but only ever for shards that were down.
	for id, hints := range c.allHints() {
		for _, h := range hints {
			if h.NodeID == id || h.Version == "" || h.Key != "k" {
				t.Fatalf("node %s got hint %+v", id, h)
			}
		}
	}
}

func TestGetThreeDown(t *testing.T) {
	c := newCluster(t, 6, 4, 2, noPreload)
	data := payload(3*4*testBlock, 1)
	c.put("k", data)
	obj, err := c.s.OpenObject(context.Background(), testBucket, "k")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c.shardNode("k", i).SetDown("*", true)
	}
	_, err = c.s.OpenObject(context.Background(), testBucket, "k")
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
	_, err = c.s.StatObject(context.Background(), testBucket, "k")
	wantErr(t, err, ErrQuorum, kerr.Unavailable)

	// Resolved before the failure: the read fails before writing a byte.
	var buf bytes.Buffer
	err = obj.WriteRange(context.Background(), &buf, 0, int64(len(data)))
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
	if buf.Len() != 0 {
		t.Fatalf("wrote %d bytes on a failed read", buf.Len())
	}
}

func TestCorruptBlock(t *testing.T) {
	for _, shard := range []int{0, 2, 5} {
		t.Run(fmt.Sprint("shard ", shard), func(t *testing.T) {
			c := newCluster(t, 6, 4, 2)
			data := payload(4*4*testBlock+999, byte(shard))
			info := c.put("k", data)
			c.allHints()
			bad := c.shardNode("k", shard)
			// A byte in the block of stripe 2, past its digest.
			corrupt(t, bad, testBucket, "k", 2*(codec.DigestSize+testBlock)+codec.DigestSize+17)
			c.mustGet("k", data)
			hints := c.allHints()
			if shard >= 4 {
				// Parity is not read on the healthy path.
				if len(hints) != 0 {
					t.Fatalf("hints for an unread shard: %v", hints)
				}
				return
			}
			if len(hints) != 5 {
				t.Fatalf("hints went to %d nodes, want the 5 other holders: %v", len(hints), hints)
			}
			for id, hs := range hints {
				want := client.Hint{Bucket: testBucket, Key: "k", Version: info.Version, Shard: shard, NodeID: bad.ID(), Reason: "corrupt", Time: testNow}
				if id == bad.ID() || len(hs) != 1 || hs[0] != want {
					t.Fatalf("node %s got %+v, want [%+v]", id, hs, want)
				}
			}
		})
	}
}

func TestPutOneDown(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	down := c.shardNode("k", 2)
	down.SetDown("*", true)
	data := payload(2*4*testBlock+1, 4)
	info := c.put("k", data)
	want := client.Hint{Bucket: testBucket, Key: "k", Version: info.Version, Shard: 2, NodeID: down.ID(), Reason: "missing", Time: testNow}
	checkHints := func(what string, want client.Hint) {
		t.Helper()
		hints := c.allHints()
		if len(hints) != 5 {
			t.Fatalf("%s: hints went to %d nodes, want 5: %v", what, len(hints), hints)
		}
		for id, hs := range hints {
			if len(hs) != 1 || hs[0] != want {
				t.Fatalf("%s: node %s got %+v, want %+v", what, id, hs, want)
			}
		}
	}
	checkHints("put", want)
	c.mustGet("k", data)
	want.Reason = "unreachable"
	checkHints("get", want)
	for i, nd := range c.s.Map().PlaceKey(testBucket, "k") {
		if nd.ID == down.ID() {
			continue
		}
		rec := c.nodes[nd.ID].Committed(testBucket, "k")
		wantNodes := c.nodeIDs("k")
		wantNodes[2] = ""
		if rec == nil || !slices.Equal(rec.Nodes, wantNodes) {
			t.Fatalf("shard %d: record %+v, want nodes %q", i, rec, wantNodes)
		}
	}
}

func (c *cluster) nodeIDs(key string) []string {
	var ids []string
	for _, n := range c.s.Map().PlaceKey(testBucket, key) {
		ids = append(ids, n.ID)
	}
	return ids
}

// TestPutTwoDown: two of a key's six nodes down, not known to be
// (no health tracking). A PUT longer than a stripe fails its stage on
// them, one short of its quorum; its kept body is written again with
// them taken for down, as 2+4 on the four others, and reads back with
// two of those down once the first two are back. A body the Store does not keep is spent: the
// PUT fails and leaves nothing.
func TestPutTwoDown(t *testing.T) {
	for _, kept := range []bool{true, false} {
		t.Run(fmt.Sprintf("kept=%v", kept), func(t *testing.T) {
			c := newCluster(t, 6, 4, 2, func(cfg *Config) {
				if !kept {
					cfg.KeptBodies = -1
				}
			})
			a, b := c.shardNode("k", 0), c.shardNode("k", 5)
			a.SetDown("*", true)
			b.SetDown("*", true)
			data := payload(10*4*testBlock, 2)
			info, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)})
			if kept {
				if err != nil || !info.Raised {
					t.Fatalf("put: %+v, %v; want it raised", info, err)
				}
				for _, i := range []int{1, 2, 3, 4} {
					rec := c.shardNode("k", i).Committed(testBucket, "k")
					if rec == nil || rec.Version != info.Version || rec.Data != 2 || rec.Parity != 4 || rec.Quorum != 4 {
						t.Fatalf("shard %d: %+v, want %s as 2+4, quorum 4", i, rec, info.Version)
					}
				}
				// The two come back without the version; two others fail.
				a.SetDown("*", false)
				b.SetDown("*", false)
				c.shardNode("k", 1).SetDown("*", true)
				c.shardNode("k", 4).SetDown("*", true)
				c.mustGet("k", data)
				return
			}
			wantErr(t, err, ErrQuorum, kerr.Unavailable)
			a.SetDown("*", false)
			b.SetDown("*", false)
			c.assertNothing("k")
			_, err = c.s.StatObject(context.Background(), testBucket, "k")
			wantErr(t, err, ErrNoSuchKey, kerr.NotExist)
		})
	}
}

// TestPutCommitQuorumLost: more than p nodes fail the commit, so the
// write cannot be finished as its re-code either (see
// TestPutFinishedAsRecodeWhenCommitsFail for p of them).
func TestPutCommitQuorumLost(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	for i := range 3 {
		c.shardNode("k", i).Edit(func(n *nodetest.State) { n.DropCommit = true })
	}
	_, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: 5, Body: strings.NewReader("hello")})
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
}

// TestPutStageQuorumLost: more than p nodes fail their stage, so the
// write cannot be staged again with raised parity either (see
// TestPutStagedAgainWhenNodesFailMidStage for p of them).
func TestPutStageQuorumLost(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	for _, i := range []int{1, 3, 4} {
		c.shardNode("k", i).Edit(func(n *nodetest.State) { n.StageErr = fmt.Errorf("disk full") })
	}
	_, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: 5, Body: strings.NewReader("hello")})
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
	if !strings.Contains(err.Error(), "staged 3 of 6 shards, need 5") {
		t.Fatalf("error %q", err)
	}
	// The four staged shards were aborted.
	c.assertNothing("k")
}

func TestPutBadRoot(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	liar := c.shardNode("k", 3)
	liar.Edit(func(n *nodetest.State) { n.BadRoot = true })
	data := payload(4*testBlock+9, 3)
	info := c.put("k", data)
	c.flush()
	if rec, st := liar.Committed(testBucket, "k"), liar.StagedVersions(testBucket, "k"); rec != nil || len(st) != 0 {
		t.Fatalf("node with a bad root kept %+v, staged %q", rec, st)
	}
	for id, hs := range c.allHints() {
		want := client.Hint{Bucket: testBucket, Key: "k", Version: info.Version, Shard: 3, NodeID: liar.ID(), Reason: "missing", Time: testNow}
		if len(hs) != 1 || hs[0] != want {
			t.Fatalf("node %s: hints %+v", id, hs)
		}
	}
	c.mustGet("k", data)
}

// cancelAfter cancels a context once n bytes were read through it.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	k, err := c.r.Read(p[:min(len(p), max(c.n, 1))])
	c.n -= k
	return k, err
}

func TestPutCanceled(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	data := payload(8*4*testBlock, 1)
	body := &cancelAfter{r: bytes.NewReader(data), n: 3 * 4 * testBlock, cancel: cancel}
	_, err := c.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: body})
	wantErr(t, err, context.Canceled, kerr.Transient)
	c.assertNothing("k")
}

func TestTruncatedBody(t *testing.T) {
	data := payload(3*4*testBlock, 5)
	tests := []struct {
		name string
		in   PutInput
		want error
	}{
		{"short", PutInput{Size: int64(len(data)) + 1, Body: bytes.NewReader(data)}, ErrIncompleteBody},
		{"short by a stripe", PutInput{Size: int64(len(data)) + 4*testBlock, Body: bytes.NewReader(data)}, ErrIncompleteBody},
		{"empty", PutInput{Size: 10, Body: strings.NewReader("")}, ErrIncompleteBody},
		{"long", PutInput{Size: int64(len(data)) - 1, Body: bytes.NewReader(data)}, ErrInvalidArgument},
		{"one byte at a time", PutInput{Size: 100, Body: iotest.OneByteReader(bytes.NewReader(data[:99]))}, ErrIncompleteBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, 6, 4, 2)
			tt.in.Bucket, tt.in.Key = testBucket, "k"
			_, err := c.s.PutObject(context.Background(), tt.in)
			wantErr(t, err, tt.want, kerr.Invalid)
			c.assertNothing("k")
		})
	}
	t.Run("body error", func(t *testing.T) {
		c := newCluster(t, 6, 4, 2)
		boom := fmt.Errorf("connection reset")
		body := io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom))
		_, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: -1, Body: body})
		wantErr(t, err, boom, kerr.Transient)
		c.assertNothing("k")
	})
	t.Run("previous version survives", func(t *testing.T) {
		c := newCluster(t, 6, 4, 2)
		c.put("k", []byte("old"))
		_, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: 100, Body: strings.NewReader("new")})
		wantErr(t, err, ErrIncompleteBody, kerr.Invalid)
		c.mustGet("k", []byte("old"))
	})
}

func TestOverwriteDeleteList(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	ctx := context.Background()
	v1 := payload(3*testBlock, 1)
	v2 := payload(5*testBlock+3, 2)
	i1 := c.put("k", v1)
	i2 := c.put("k", v2)
	if i2.Version <= i1.Version {
		t.Fatalf("versions not increasing: %s then %s", i1.Version, i2.Version)
	}
	c.mustGet("k", v2)
	c.put("other", []byte("x"))
	page, err := c.s.ListObjects(ctx, testBucket, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Objects) != 2 || !equalInfo(page.Objects[0], i2) || page.Objects[1].Key != "other" || page.Truncated {
		t.Fatalf("list %+v, want k at %s and other", page, i2.Version)
	}

	if err := c.s.DeleteObject(ctx, testBucket, "k"); err != nil {
		t.Fatal(err)
	}
	_, err = c.s.OpenObject(ctx, testBucket, "k")
	wantErr(t, err, ErrNoSuchKey, kerr.NotExist)
	_, err = c.s.StatObject(ctx, testBucket, "k")
	wantErr(t, err, ErrNoSuchKey, kerr.NotExist)
	page, err = c.s.ListObjects(ctx, testBucket, ListOptions{})
	if err != nil || len(page.Objects) != 1 || page.Objects[0].Key != "other" {
		t.Fatalf("list after delete: %+v, %v", page, err)
	}
	// Deleting what every node agrees is deleted, or was never there,
	// succeeds and writes nothing.
	commits := c.list[0].Calls("commit")
	for _, key := range []string{"k", "never"} {
		if err := c.s.DeleteObject(ctx, testBucket, key); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.list[0].Calls("commit"); got != commits {
		t.Fatalf("deleting a missing key committed %d markers", got-commits)
	}

	// Write again after the delete.
	v3 := []byte("back")
	c.put("k", v3)
	c.mustGet("k", v3)
}

func TestDeleteQuorum(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	ctx := context.Background()
	c.put("k", []byte("data"))
	c.allHints()
	down := c.shardNode("k", 3)
	down.SetDown("*", true)
	if err := c.s.DeleteObject(ctx, testBucket, "k"); err != nil {
		t.Fatal(err)
	}
	// The node that missed the delete comes back with the old version:
	// the marker still wins, in reads and in lists.
	down.SetDown("*", false)
	_, err := c.s.StatObject(ctx, testBucket, "k")
	wantErr(t, err, ErrNoSuchKey, kerr.NotExist)
	page, err := c.s.ListObjects(ctx, testBucket, ListOptions{})
	if err != nil || len(page.Objects) != 0 {
		t.Fatalf("list: %+v, %v", page, err)
	}
	for id, hs := range c.allHints() {
		if len(hs) != 1 || hs[0].NodeID != down.ID() || hs[0].Shard != -1 || hs[0].Reason != "missing" {
			t.Fatalf("node %s: hints %+v", id, hs)
		}
	}

	// Three failing commits are more than p: the marker cannot be
	// finished as its re-code either (TestDeleteMarkerFinishedAsRecode).
	c.put("j", []byte("data"))
	for i := range 3 {
		c.shardNode("j", i).SetDown("commit", true)
	}
	err = c.s.DeleteObject(ctx, testBucket, "j")
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
}

// The gateway died after committing V on one node: the others hold it
// staged. A reader finishes the commit and serves V.
func TestRollForward(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	ctx := context.Background()
	c.put("k", []byte("old"))
	keep := c.shardNode("k", 4)
	for _, n := range c.list {
		if n != keep {
			n.Edit(func(n *nodetest.State) { n.DropCommit = true })
		}
	}
	data := payload(2*4*testBlock+10, 8)
	_, err := c.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)})
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
	for _, n := range c.list {
		n.Edit(func(n *nodetest.State) { n.DropCommit = false })
	}
	v := keep.Committed(testBucket, "k").Version
	c.mustGet("k", data)
	for _, n := range c.list {
		if rec := n.Committed(testBucket, "k"); rec == nil || rec.Version != v {
			t.Fatalf("node %s: %+v, want %s rolled forward", n.ID(), rec, v)
		}
	}
}

// V is committed on one node and staged on two: even with those committed
// it could not be read, and committing them would remove two shards of the
// readable previous version. The reader leaves them alone.
func TestNoRollForwardToUnreadable(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	ctx := context.Background()
	old := payload(4*testBlock+1, 1)
	info := c.put("k", old)
	nodes := make([]*fakeNode, 6)
	for i := range 6 {
		nodes[i] = c.shardNode("k", i)
		if i > 0 {
			nodes[i].Edit(func(n *nodetest.State) { n.DropCommit = true })
		}
	}
	_, err := c.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: 3, Body: strings.NewReader("new")})
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
	v := nodes[0].Committed(testBucket, "k").Version
	for i, n := range nodes {
		n.Edit(func(n *nodetest.State) { n.DropCommit = false })
		if i >= 3 {
			if err := n.Abort(ctx, testBucket, "k", v); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.mustGet("k", old)
	for _, n := range nodes[1:] {
		if rec := n.Committed(testBucket, "k"); rec.Version != info.Version {
			t.Fatalf("node %s committed %s", n.ID(), rec.Version)
		}
	}
}

// Answers taken at different moments of a write: three nodes have
// committed V, and the other three answered before V's stage reached them.
// Neither V nor the previous version looks readable, yet V was meant to be
// visible. The reader asks again rather than answer 503, and then finishes
// V's commit.
func TestReadAcrossWriteInProgress(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	nodes, data := halfCommitted(t, c)
	// Shard 3's node is asked twice in a read (the quick look at the data
	// shards' nodes, then all six), the others once.
	for i, n := range nodes[3:] {
		n.Edit(func(n *nodetest.State) { n.HideStaged = 1 + max(1-i, 0) })
	}
	c.mustGet("k", data)
	v := nodes[0].Committed(testBucket, "k").Version
	for _, n := range nodes[:4] {
		if rec := n.Committed(testBucket, "k"); rec == nil || rec.Version != v {
			t.Fatalf("node %s committed %+v after the read, want version %s", n.ID(), rec, v)
		}
	}
}

// halfCommitted writes key k twice: the second version is staged on all six
// nodes but committed on the first three shards' nodes only. It returns
// the nodes by shard index and the second version's bytes.
func halfCommitted(t *testing.T, c *cluster) ([]*fakeNode, []byte) {
	t.Helper()
	c.put("k", payload(4*testBlock+1, 1))
	nodes := make([]*fakeNode, 6)
	for i := range 6 {
		nodes[i] = c.shardNode("k", i)
		if i >= 3 {
			nodes[i].Edit(func(n *nodetest.State) { n.DropCommit = true })
		}
	}
	data := payload(4*testBlock+3, 2)
	_, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)})
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
	for _, n := range nodes[3:] {
		n.Edit(func(n *nodetest.State) { n.DropCommit = false })
	}
	return nodes, data
}

// A read that rolls a version forward on a node must not serve the shard
// that node sent with its state: that was its shard of the older version,
// whose frames are all valid.
func TestRollForwardDropsStalePreload(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	nodes, data := halfCommitted(t, c)
	// Shard 3's node hides its stage from the quick look only; the full
	// look then finds it, rolls it forward, and reads shard 3 there.
	nodes[3].Edit(func(n *nodetest.State) { n.HideStaged = 1 })
	c.mustGet("k", data)
}

func TestUnacknowledgedVersion(t *testing.T) {
	tests := []struct {
		name      string
		committed int // nodes that committed V (shards 0..committed-1)
		down      int // nodes down among the others
		wantOld   bool
	}{
		{"one commit, all up", 1, 0, true},
		{"one commit, one down", 1, 1, true},
		{"three commits, none down", 3, 0, false}, // V and the old version both unreadable
		{"two commits, three down", 2, 3, false},  // 2+3 >= WQ: V may have been acked
		{"one commit, four down", 1, 4, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, 6, 4, 2)
			ctx := context.Background()
			old := payload(4*testBlock+1, 1)
			c.put("k", old)
			nodes := make([]*fakeNode, 6)
			for i := range 6 {
				nodes[i] = c.shardNode("k", i)
				if i >= tt.committed {
					nodes[i].Edit(func(n *nodetest.State) { n.DropCommit = true })
				}
			}
			_, err := c.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: 3, Body: strings.NewReader("new")})
			wantErr(t, err, ErrQuorum, kerr.Unavailable)
			v := nodes[0].Committed(testBucket, "k").Version
			for i, n := range nodes {
				n.Edit(func(n *nodetest.State) { n.DropCommit = false })
				if i >= tt.committed {
					// The stages were swept: nothing left to roll forward.
					if err := n.Abort(ctx, testBucket, "k", v); err != nil {
						t.Fatal(err)
					}
				}
				if i >= tt.committed && i < tt.committed+tt.down {
					n.SetDown("*", true)
				}
			}
			got, err := c.get("k")
			if tt.wantOld {
				if err != nil || !bytes.Equal(got, old) {
					t.Fatalf("got %d bytes, %v; want the previous version", len(got), err)
				}
				return
			}
			wantErr(t, err, ErrQuorum, kerr.Unavailable)
		})
	}
}

func TestStalledNodeDuringPut(t *testing.T) {
	tests := []struct {
		name  string
		fault func(n *nodetest.State)
	}{
		{"stalls at once", func(n *nodetest.State) { n.Stall["stage"] = true }},
		{"stalls mid-stream", func(n *nodetest.State) { n.StallAfter = 3*(codec.DigestSize+testBlock) + 100 }},
		{"fails mid-stream", func(n *nodetest.State) { n.FailAfter = 2*(codec.DigestSize+testBlock) + 7 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, 6, 4, 2, shortStall)
			bad := c.shardNode("k", 1)
			bad.Edit(tt.fault)
			data := payload(20*4*testBlock+5, 6)
			start := time.Now()
			info := c.put("k", data)
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("put took %v with a stalled node", d)
			}
			bad.Edit(func(n *nodetest.State) { n.Stall, n.StallAfter, n.FailAfter = map[string]bool{}, 0, 0 })
			if rec := bad.Committed(testBucket, "k"); rec != nil {
				t.Fatalf("stalled node committed %+v", rec)
			}
			hints := c.allHints()
			want := client.Hint{Bucket: testBucket, Key: "k", Version: info.Version, Shard: 1, NodeID: bad.ID(), Reason: "missing", Time: testNow}
			if len(hints) != 5 {
				t.Fatalf("hints %v", hints)
			}
			for id, hs := range hints {
				if len(hs) != 1 || hs[0] != want {
					t.Fatalf("node %s got %+v, want %+v", id, hs, want)
				}
			}
			c.mustGet("k", data)
		})
	}
}

func TestStalledNodeDuringGet(t *testing.T) {
	c := newCluster(t, 6, 4, 2, shortStall)
	data := payload(6*4*testBlock, 3)
	info := c.put("k", data)
	first := true
	tests := []struct {
		name  string
		fault func(n *nodetest.State)
		clear func(n *nodetest.State)
	}{
		{"open stalls", func(n *nodetest.State) { n.Stall["read"] = true }, func(n *nodetest.State) { n.Stall["read"] = false }},
		{"stream stalls", func(n *nodetest.State) { n.StallAfter = 2*(codec.DigestSize+testBlock) + 5 }, func(n *nodetest.State) { n.StallAfter = 0 }},
		{"stream fails", func(n *nodetest.State) { n.FailAfter = 100 }, func(n *nodetest.State) { n.FailAfter = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := c.shardNode("k", 0)
			bad.Edit(tt.fault)
			defer bad.Edit(tt.clear)
			c.mustGet("k", data)
			hints := c.allHints()
			if first && len(hints) != 5 {
				t.Fatalf("hints %v, want them on the 5 healthy holders", hints)
			}
			for id, hs := range hints {
				want := client.Hint{Bucket: testBucket, Key: "k", Version: info.Version, Shard: 0, NodeID: bad.ID(), Reason: "unreachable", Time: testNow}
				if id == bad.ID() || len(hs) != 1 || hs[0] != want {
					t.Fatalf("node %s got %+v, want %+v", id, hs, want)
				}
			}
			// The same damage is reported once, not on every read.
			first = false
			c.mustGet("k", data)
			if hints := c.allHints(); len(hints) != 0 {
				t.Fatalf("repeated hints %v", hints)
			}
		})
	}
}

func TestMapChangeReadsPreviousEpoch(t *testing.T) {
	c := newCluster(t, 7, 4, 2)
	ctx := context.Background()
	// Find a key on n0..n5 under a map where n6 is draining, so that the
	// next map, which drains n5 and activates n6, moves one shard.
	m1 := *c.s.Map()
	m1.Nodes = slices.Clone(m1.Nodes)
	m1.Nodes[6].State = placement.StateDraining
	m1.Epoch = 2
	c.s.SetMap(&m1)
	data := payload(4*testBlock+3, 4)
	c.put("k", data)

	m2 := *c.s.Map()
	m2.Nodes = slices.Clone(m2.Nodes)
	m2.Nodes[5].State = placement.StateDraining
	m2.Nodes[6].State = placement.StateActive
	m2.Epoch = 3
	c.s.SetMap(&m2)
	if c.s.Map().Epoch != 3 {
		t.Fatalf("epoch %d after SetMap", c.s.Map().Epoch)
	}
	old := m1
	old.Epoch = 1
	c.s.SetMap(&old)
	if c.s.Map().Epoch != 3 {
		t.Fatal("an older map replaced a newer one")
	}
	// n5's shard has not moved to n6 yet; with two more nodes down, only
	// the previous epoch's list finds enough shards.
	c.nodes["n0"].SetDown("*", true)
	c.nodes["n1"].SetDown("*", true)
	c.mustGet("k", data)
	if _, err := c.s.StatObject(ctx, testBucket, "k"); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentPutGet(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range 3 {
				key := fmt.Sprintf("g%d/%d", g, i)
				data := payload(g*4*testBlock+i*1000+1, byte(g*3+i))
				if _, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: key, Size: -1, Body: bytes.NewReader(data)}); err != nil {
					t.Error(err)
					return
				}
				got, err := c.get(key)
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("%s: %d bytes, %v", key, len(got), err)
				}
			}
		})
	}
	// Overwrites of one key race; reads serve a version at least as new
	// as every acknowledged one. A write whose shard a racing write
	// superseded on a node before its retry may lose (ErrQuorum): it is
	// then not acknowledged, and may or may not become visible.
	var mu sync.Mutex
	var acked string
	for g := range 4 {
		wg.Go(func() {
			body := fmt.Sprint("writer ", g)
			info, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "shared", Size: int64(len(body)), Body: strings.NewReader(body)})
			switch {
			case err == nil:
				mu.Lock()
				acked = max(acked, info.Version)
				mu.Unlock()
			case !errors.Is(err, ErrQuorum):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	info, err := c.s.StatObject(context.Background(), testBucket, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if info.Version < acked {
		t.Fatalf("reads serve %s, older than the acknowledged %s", info.Version, acked)
	}
}

func TestVersionsIncrease(t *testing.T) {
	now := testNow
	c := newCluster(t, 6, 4, 2, func(cfg *Config) {
		cfg.Now = func() time.Time { return now }
	})
	prev := c.s.newVersion()
	for i := range 2000 {
		if i == 1000 {
			now = now.Add(-time.Hour) // the clock steps back
		}
		v := c.s.newVersion()
		if err := client.CheckVersion(v); err != nil {
			t.Fatal(err)
		}
		if v <= prev {
			t.Fatalf("version %d: %s after %s", i, v, prev)
		}
		prev = v
	}
}

func TestInvalidInput(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	ctx := context.Background()
	_, err := c.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "", Body: strings.NewReader("")})
	wantErr(t, err, ErrInvalidArgument, kerr.Invalid)
	_, err = c.s.OpenObject(ctx, testBucket, strings.Repeat("k", 1025))
	wantErr(t, err, ErrInvalidArgument, kerr.Invalid)
	_, err = c.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: 1})
	wantErr(t, err, ErrInvalidArgument, kerr.Invalid)
	_, err = c.s.PutObject(ctx, PutInput{Bucket: "nope", Key: "k", Size: 1, Body: strings.NewReader("x")})
	wantErr(t, err, ErrNoSuchBucket, kerr.NotExist)
	_, err = c.s.OpenObject(ctx, "nope", "k")
	wantErr(t, err, ErrNoSuchBucket, kerr.NotExist)
	err = c.s.DeleteObject(ctx, "nope", "k")
	wantErr(t, err, ErrNoSuchBucket, kerr.NotExist)
	_, err = c.s.ListObjects(ctx, "nope", ListOptions{})
	wantErr(t, err, ErrNoSuchBucket, kerr.NotExist)
	_, err = c.s.ListObjects(ctx, testBucket, ListOptions{MaxKeys: -1})
	wantErr(t, err, ErrInvalidArgument, kerr.Invalid)
	_, err = New(Config{})
	if kerr.KindOf(err) != kerr.Invalid {
		t.Fatalf("New without a map: %v", err)
	}
}
