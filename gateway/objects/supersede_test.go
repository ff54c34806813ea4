package objects

import (
	"bytes"
	"context"
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// TestReadRacingSupersession: a GET that resolved a version before a newer
// commit (overwrite or delete) reaches the holders afterwards. Small
// objects whose data shards came with the resolve are not affected.
func TestReadRacingSupersession(t *testing.T) {
	old, next := payload(3*testBlock+17, 1), payload(2*testBlock+5, 2)
	sameOld := func(t *testing.T, got []byte, err error) {
		if err != nil || !bytes.Equal(got, old) {
			t.Errorf("got %d bytes, %v; want the old %d bytes", len(got), err, len(old))
		}
	}
	for _, tc := range []struct {
		name    string
		keep    bool // nodes keep superseded shards for a grace
		preload bool // data shards come with the resolve
		later   func(c *cluster)
		check   func(t *testing.T, got []byte, err error)
	}{
		{"delete, no grace, preloaded", false, true, func(c *cluster) { c.del("k") }, sameOld},
		{"overwrite, no grace, preloaded", false, true, func(c *cluster) { c.put("k", next) }, sameOld},
		{"delete, no grace", false, false, func(c *cluster) { c.del("k") }, func(t *testing.T, got []byte, err error) {
			wantErr(t, err, ErrNoSuchKey, kerr.NotExist)
			if len(got) != 0 {
				t.Errorf("wrote %d bytes before failing", len(got))
			}
		}},
		{"overwrite, no grace", false, false, func(c *cluster) { c.put("k", next) }, func(t *testing.T, got []byte, err error) {
			wantErr(t, err, ErrQuorum, kerr.Unavailable)
			if len(got) != 0 {
				t.Errorf("wrote %d bytes before failing", len(got))
			}
		}},
		{"delete, grace", true, false, func(c *cluster) { c.del("k") }, func(t *testing.T, got []byte, err error) {
			if err != nil || !bytes.Equal(got, old) {
				t.Errorf("got %d bytes, %v; want the old %d bytes", len(got), err, len(old))
			}
		}},
		{"overwrite, grace", true, false, func(c *cluster) { c.put("k", next) }, func(t *testing.T, got []byte, err error) {
			if err != nil || !bytes.Equal(got, old) {
				t.Errorf("got %d bytes, %v; want the old %d bytes", len(got), err, len(old))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := noPreload
			if tc.preload {
				opt = func(*Config) {}
			}
			c := newCluster(t, 6, 4, 2, opt)
			for _, n := range c.list {
				n.Edit(func(n *nodetest.State) { n.KeepSuperseded = tc.keep })
			}
			c.put("k", old)
			obj, err := c.s.OpenObject(context.Background(), testBucket, "k")
			if err != nil {
				t.Fatal(err)
			}
			tc.later(c)
			var buf bytes.Buffer
			err = obj.WriteRange(context.Background(), &buf, 0, obj.Info().Size)
			tc.check(t, buf.Bytes(), err)
		})
	}
}

func (c *cluster) del(key string) {
	c.t.Helper()
	if err := c.s.DeleteObject(context.Background(), testBucket, key); err != nil {
		c.t.Fatalf("delete %s: %v", key, err)
	}
}
