package objects

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// realCluster is a Store over six real storage nodes (4+2) served over
// loopback HTTP, with a client per node for doing to them what the
// scrubber does.
type realCluster struct {
	s       *Store
	clients map[string]*client.Client
}

// newRealCluster starts the nodes and the Store; preload lets the Store
// fetch small shards with the key's state (else every shard is streamed,
// opened lazily).
func newRealCluster(t *testing.T, preload bool) *realCluster {
	t.Helper()
	secret := []byte("shard-index-test-secret")
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	rc := &realCluster{clients: make(map[string]*client.Client)}
	m := &placement.Map{Epoch: 1, DataShards: 4, ParityShards: 2, Partitions: 64, BlockSize: testBlock}
	for i := range 6 {
		cfg := storagenode.DefaultConfig()
		cfg.ID, cfg.Dir, cfg.Secret, cfg.Logger = fmt.Sprintf("n%d", i), t.TempDir(), secret, logger
		cfg.SweepInterval, cfg.ScrubRate = 0, 0
		node, err := storagenode.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		srv := httptest.NewServer(node.Handler())
		t.Cleanup(srv.Close) // runs before node.Close
		rc.clients[cfg.ID] = client.New(srv.URL, &client.Options{Secret: secret})
		m.Nodes = append(m.Nodes, placement.Node{ID: cfg.ID, Addr: srv.URL, Zone: fmt.Sprintf("z%d", i)})
	}
	cfg := Config{
		Map:           m,
		ClientOptions: &client.Options{Secret: secret},
		CallTimeout:   5 * time.Second,
		PreloadMax:    -1,
		Logger:        logger,
	}
	if preload {
		cfg.PreloadMax = 0 // the default, which covers these shards
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.bg.Wait)
	if err := s.CreateBucket(context.Background(), testBucket); err != nil {
		t.Fatal(err)
	}
	rc.s = s
	return rc
}

// swap exchanges shards a and b of key's committed version between the
// nodes holding them, in the rebalancer's order: stage each shard on the
// other node, then on each node drop the shard it holds and commit the
// version, which installs the staged one.
func (rc *realCluster) swap(t *testing.T, key string, a, b int) {
	t.Helper()
	ctx := context.Background()
	holder := make(map[int]string)
	var meta client.ObjectMeta
	for id, c := range rc.clients {
		ks, err := c.Stat(ctx, testBucket, key)
		if err != nil {
			t.Fatal(err)
		}
		if r := ks.Committed; r != nil && (r.Shard == a || r.Shard == b) {
			holder[r.Shard], meta = id, r.ObjectMeta
		}
	}
	if holder[a] == "" || holder[b] == "" {
		t.Fatalf("holders of shards %d and %d: %v", a, b, holder)
	}
	move := func(i int, from, to string) {
		rd, err := rc.clients[from].ReadShard(ctx, testBucket, key, meta.Version, i, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		if _, err := rc.clients[to].Stage(ctx, testBucket, key, meta.Version, i, meta.BlockSize, rd); err != nil {
			t.Fatal(err)
		}
	}
	move(a, holder[a], holder[b])
	move(b, holder[b], holder[a])
	for _, give := range []int{a, b} {
		c := rc.clients[holder[give]]
		if ok, err := c.DropShard(ctx, testBucket, key, meta.Version, give); err != nil || !ok {
			t.Fatalf("DropShard(%d) on %s = %v, %v", give, holder[give], ok, err)
		}
		if rec, err := c.Commit(ctx, meta); err != nil || rec.Shard == give {
			t.Fatalf("Commit on %s after the drop = %+v, %v", holder[give], rec, err)
		}
	}
}

// TestGetAcrossRebalanceSwapReturnsExactBytes: a GET that resolved a
// version before the rebalancer swapped two of its shards between their
// nodes, and opens its shard streams after the swap, returns exactly the
// object's bytes. Each node now holds the other shard under the same
// version, as long and with every block digest valid: a read that did
// not name the index would decode it as the one it asked for. Named, the
// nodes refuse and the GET decodes from the other shards, opening parity
// streams as it goes. Shards preloaded with the key's state are used as
// the index their record names, before and after the swap.
func TestGetAcrossRebalanceSwapReturnsExactBytes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		a, b    int
		preload bool
	}{
		{"two data shards", 0, 1, false},
		{"a data and a parity shard", 1, 4, false},
		{"two preloaded data shards", 0, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newRealCluster(t, tc.preload)
			ctx := context.Background()
			data := payload(3*4*testBlock+1234, 9)
			if _, err := rc.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)}); err != nil {
				t.Fatal(err)
			}
			obj, err := rc.s.OpenObject(ctx, testBucket, "k")
			if err != nil {
				t.Fatal(err)
			}
			rc.swap(t, "k", tc.a, tc.b)
			var buf bytes.Buffer
			if err := obj.WriteRange(ctx, &buf, 0, obj.Info().Size); err != nil {
				t.Fatalf("GET resolved before the swap: %v", err)
			}
			if !bytes.Equal(buf.Bytes(), data) {
				t.Fatalf("GET resolved before the swap returned %d bytes that differ from the %d written (first at %d)",
					buf.Len(), len(data), firstDiff(buf.Bytes(), data))
			}
			// A range inside one stripe, after the swap too.
			buf.Reset()
			if err := obj.WriteRange(ctx, &buf, 4*testBlock+10, 100); err != nil || !bytes.Equal(buf.Bytes(), data[4*testBlock+10:4*testBlock+110]) {
				t.Fatalf("range GET resolved before the swap: %v, bytes equal %v", err, bytes.Equal(buf.Bytes(), data[4*testBlock+10:4*testBlock+110]))
			}
			// A GET resolved after the swap reads every shard where it is.
			obj, err = rc.s.OpenObject(ctx, testBucket, "k")
			if err != nil {
				t.Fatal(err)
			}
			buf.Reset()
			if err := obj.WriteRange(ctx, &buf, 0, obj.Info().Size); err != nil || !bytes.Equal(buf.Bytes(), data) {
				t.Fatalf("GET after the swap: %v, bytes equal %v", err, bytes.Equal(buf.Bytes(), data))
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
