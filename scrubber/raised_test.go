package scrubber

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// writeRaised writes data as a gateway does with the nodes of the shards
// in skip down: coded d-k+p+k, those shards neither written nor named,
// the lowered write quorum recorded.
func (c *cluster) writeRaised(bucket, key string, data []byte, skip ...int) client.ObjectMeta {
	c.t.Helper()
	return c.writeRaisedWith(bucket, key, data, nil, skip...)
}

// writeRaisedWith is writeRaised with edit applied to the version's
// record before it is committed.
func (c *cluster) writeRaisedWith(bucket, key string, data []byte, edit func(*client.ObjectMeta), skip ...int) client.ObjectMeta {
	c.t.Helper()
	ctx := context.Background()
	k := len(skip)
	d, p := c.m.DataShards-k, c.m.ParityShards+k
	cd, err := codec.New(d, p, codec.WithBlockSize(c.m.BlockSize))
	if err != nil {
		c.t.Fatal(err)
	}
	bufs := make([]bytes.Buffer, d+p)
	ws := make([]io.Writer, d+p)
	for i := range bufs {
		ws[i] = &bufs[i]
	}
	enc, err := cd.Encode(bytes.NewReader(data), ws)
	if err != nil {
		c.t.Fatal(err)
	}
	placed := c.m.PlaceKey(bucket, key)
	meta := client.ObjectMeta{
		Bucket: bucket, Key: key, Version: ulid.Make().String(), Size: enc.Size,
		Modified: time.Now().UTC(), Data: d, Parity: p, BlockSize: c.m.BlockSize,
		Format: codec.FormatVersion, Quorum: c.m.RaisedQuorum(k),
		ETag:       fmt.Sprintf("%x", md5.Sum(data)),
		Versioning: c.versioning, Versioned: c.versioning == client.VersioningEnabled,
	}
	skipped := make([]bool, d+p)
	for _, i := range skip {
		skipped[i] = true
	}
	for i := range d + p {
		meta.Roots = append(meta.Roots, enc.Roots[i].String())
		id := placed[i].ID
		if skipped[i] {
			id = ""
		}
		meta.Nodes = append(meta.Nodes, id)
	}
	if edit != nil {
		edit(&meta)
	}
	for i, n := range placed {
		if skipped[i] {
			continue
		}
		tn := c.byID[n.ID]
		if _, err := tn.c.Stage(ctx, bucket, key, meta.Version, i, meta.BlockSize, bytes.NewReader(bufs[i].Bytes())); err != nil {
			c.t.Fatal(err)
		}
		if _, err := tn.c.Commit(ctx, meta); err != nil {
			c.t.Fatal(err)
		}
	}
	return meta
}

// TestRaisedVersion: a version written 2+4 while two of its six nodes
// were down, in a bucket whose versions clients see by name, is counted
// as raised, its two unwritten shards are rebuilt at its own layout once
// the nodes are back (it is not re-coded: that would change the version
// id clients see, or keep the version beside its re-code), and it then
// reads back from any two of its nodes.
func TestRaisedVersion(t *testing.T) {
	for _, tc := range []struct {
		name            string
		bucket, written string // bucket versioning now, and when the version was written
	}{
		{"versioned", client.VersioningEnabled, client.VersioningEnabled},
		{"suspended", client.VersioningSuspended, client.VersioningSuspended},
		{"versioning enabled since", client.VersioningEnabled, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 6, 4, 2)
			c.putBucketState("bk", tc.bucket)
			c.versioning = tc.written
			data := testData(9*4*testBlock+11, 3)
			c.put("bk", "plain", testData(5000, 4))
			meta := c.writeRaised("bk", "r", data, 1, 4)

			rep := mustRun(t, c.scrubber(nil))
			if rep.Objects != 2 || rep.Raised != 1 || rep.RaisedBytes != int64(len(data)) || rep.Recoded != 0 ||
				rep.ShardsMissing != 2 || rep.ShardsRebuilt != 2 || rep.RepairsFailed != 0 || !rep.Healthy() {
				t.Fatalf("report = %+v", rep)
			}
			for id, rec := range c.stat("bk", "r") {
				if rec == nil || rec.Version != meta.Version || rec.Data != 2 || rec.Parity != 4 || rec.Quorum != 4 {
					t.Fatalf("node %s: record %+v, want %s 2+4 quorum 4", id, rec, meta.Version)
				}
			}
			rep = mustRun(t, c.scrubber(nil))
			if rep.Raised != 1 || rep.Recoded != 0 || rep.ShardsVerified != 6+6 || rep.ShardsMissing != 0 || rep.ShardsRebuilt != 0 || rep.Redundancy[6] != 2 {
				t.Fatalf("second pass: report = %+v", rep)
			}
			// Any two shards of a 2+4 version read it: keep only the rebuilt ones.
			placed := c.m.PlaceKey("bk", "r")
			for i, n := range placed {
				if i != 1 && i != 4 {
					up := c.down(n.ID)
					defer up()
				}
			}
			got, err := c.read("bk", "r")
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read from the rebuilt shards: %d bytes, %v", len(got), err)
			}
		})
	}
}

// putBucketState writes bucket's record with the versioning state given
// ("" for never versioned) on every node.
func (c *cluster) putBucketState(name, versioning string) {
	c.t.Helper()
	b := client.BucketRecord{Name: name, Version: ulid.Make().String(), Created: time.Now().UTC(), Versioning: versioning}
	for _, tn := range c.nodes {
		if err := tn.c.PutBucket(context.Background(), b); err != nil {
			c.t.Fatal(err)
		}
	}
}
