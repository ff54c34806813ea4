package objects

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/testcluster"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/scrubber"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// realNodes starts n storage nodes served over httptest and returns a map
// (epoch 1, d+p) naming them, zones all distinct. Every node is given the
// map, as `kintsugi admin` does.
func realNodes(t *testing.T, n, d, p int) (*placement.Map, map[string]*client.Client) {
	t.Helper()
	tc := testcluster.New(t, testcluster.Options{Nodes: n, Data: d, Parity: p, Real: true,
		Partitions: 64, BlockSize: testBlock, WithDefaults: true})
	clients := make(map[string]*client.Client)
	for _, nd := range tc.Nodes {
		clients[nd.ID] = nd.Client
	}
	return tc.Map, clients
}

// pushMap gives m to every node of clients.
func pushMap(t *testing.T, clients map[string]*client.Client, m *placement.Map) {
	t.Helper()
	for id, c := range clients {
		if err := c.PutMap(context.Background(), m); err != nil {
			t.Fatalf("giving %s map epoch %d: %v", id, m.Epoch, err)
		}
	}
}

// A gateway that missed a map change must never answer 404 for an object
// that exists: after the rebalancer moved every shard to the new map's
// nodes and dropped the old copies, a Store still on the old map is
// refused by the nodes (they hold the new map), installs the map they
// send and reads every object exactly.
func TestStaleMapGatewayReadsEveryObjectAfterRebalance(t *testing.T) {
	ctx := context.Background()
	m1, clients := realNodes(t, 6, 2, 1)
	// Epoch 1 places everything on n0..n2; epoch 2 drains those and
	// activates n3..n5, so every shard moves.
	for i := 3; i < 6; i++ {
		m1.Nodes[i].State = placement.StateDraining
	}
	pushMap(t, clients, m1)
	s, err := New(Config{Map: m1, CallTimeout: 5 * time.Second, BucketCacheTTL: time.Hour,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.bg.Wait)
	if err := s.CreateBucket(ctx, testBucket); err != nil {
		t.Fatal(err)
	}
	objects := make(map[string][]byte)
	for i := range 8 {
		key := fmt.Sprintf("k%02d", i)
		data := payload(1+i*3*testBlock/2, byte(i))
		if _, err := s.PutObject(ctx, PutInput{Bucket: testBucket, Key: key, Size: int64(len(data)), Body: bytes.NewReader(data)}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		objects[key] = data
	}

	m2 := *m1
	m2.Nodes = slices.Clone(m1.Nodes)
	for i := range m2.Nodes {
		m2.Nodes[i].State = placement.StateActive
		if i < 3 {
			m2.Nodes[i].State = placement.StateDraining
		}
	}
	m2.Epoch = 2
	pushMap(t, clients, &m2)
	sc, err := scrubber.New(scrubber.Config{Map: m1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	sc.SetMap(&m2)
	rep, err := sc.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.MovesDone == 0 {
		t.Fatalf("the rebalancer moved nothing: %+v", rep)
	}
	for _, id := range []string{"n0", "n1", "n2"} {
		if h, err := clients[id].Health(ctx); err != nil || h.Objects != 0 {
			t.Fatalf("drained node %s still holds %d records (%v): the old copies were not dropped", id, h.Objects, err)
		}
	}

	if s.Map().Epoch != 1 {
		t.Fatalf("the gateway learned epoch %d before reading", s.Map().Epoch)
	}
	for key, want := range objects {
		obj, err := s.OpenObject(ctx, testBucket, key)
		if err != nil {
			t.Fatalf("open %s under the old map: %v", key, err)
		}
		var buf bytes.Buffer
		if err := obj.WriteRange(ctx, &buf, 0, obj.Info().Size); err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("read %s: %d bytes differ from the %d written", key, buf.Len(), len(want))
		}
	}
	if s.Map().Epoch != 2 {
		t.Fatalf("gateway map epoch %d after being refused, want 2", s.Map().Epoch)
	}
}

// A put through a gateway that missed a map change lands where the new
// map places it: the nodes refuse the stages, the gateway installs their
// map and, the body being small enough to have been read first, puts it
// again under that map.
func TestStaleMapGatewayPutLandsOnNewPlacement(t *testing.T) {
	ctx := context.Background()
	m1, clients := realNodes(t, 6, 2, 1)
	for i := 3; i < 6; i++ {
		m1.Nodes[i].State = placement.StateDraining
	}
	pushMap(t, clients, m1)
	s, err := New(Config{Map: m1, CallTimeout: 5 * time.Second, BucketCacheTTL: time.Hour,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.bg.Wait)
	if err := s.CreateBucket(ctx, testBucket); err != nil {
		t.Fatal(err)
	}
	m2 := *m1
	m2.Nodes = slices.Clone(m1.Nodes)
	for i := range m2.Nodes {
		m2.Nodes[i].State = placement.StateActive
		if i < 3 {
			m2.Nodes[i].State = placement.StateDraining
		}
	}
	m2.Epoch = 2
	pushMap(t, clients, &m2)

	data := payload(testBlock+5, 9) // within one stripe
	if _, err := s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "late", Size: int64(len(data)), Body: bytes.NewReader(data)}); err != nil {
		t.Fatalf("put under the old map: %v", err)
	}
	if s.Map().Epoch != 2 {
		t.Fatalf("gateway map epoch %d after the put, want 2", s.Map().Epoch)
	}
	for i := range 6 {
		id := fmt.Sprintf("n%d", i)
		ks, err := clients[id].Stat(ctx, testBucket, "late")
		if err != nil {
			t.Fatal(err)
		}
		if placed := i >= 3; placed != (ks.Committed != nil) {
			t.Errorf("node %s (placed by the new map: %v) holds %+v", id, placed, ks.Committed)
		}
	}
	obj, err := s.OpenObject(ctx, testBucket, "late")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := obj.WriteRange(ctx, &buf, 0, obj.Info().Size); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("read back: %d bytes, %v", buf.Len(), err)
	}
}
