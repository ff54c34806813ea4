package objects

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/testcluster"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/scrubber"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
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

// mapChangeNode is a node whose map changes, while armed, just before it
// takes a commit: it is given a map one epoch newer than the commit's
// fence, the same placement, so it refuses the commit as a node does that
// learned a new map between a write's stage and its commit.
type mapChangeNode struct {
	client.Node
	base  *placement.Map
	armed *atomic.Bool
}

func (n mapChangeNode) Commit(ctx context.Context, meta client.ObjectMeta) (client.Record, error) {
	if f := client.FenceOf(ctx); f != nil && n.armed.Load() {
		m := *n.base
		m.Epoch = f.Epoch() + 1
		if err := n.Node.PutMap(context.Background(), &m); err != nil {
			return client.Record{}, err
		}
	}
	return n.Node.Commit(ctx, meta)
}

// TestWriteShortfallMapChanged: a write whose stage or commit misses its
// quorum only because nodes refused it as made under an older map (added
// to those that staged or committed, they would have made it) fails with
// ErrMapChanged inside ErrQuorum; one that nodes failing would have
// failed anyway fails with ErrQuorum alone. The PUTs are longer than one
// stripe and the Store keeps no such body, so they are not run again.
func TestWriteShortfallMapChanged(t *testing.T) {
	tests := []struct {
		name        string
		write       string // "put", "delete" or "complete"
		stageStale  []int  // shards whose nodes hold a newer map before the write
		stageDown   []int  // shards whose nodes fail the stage
		commitStale []int  // shards whose nodes take a newer map at commit
		dropOn      []int  // shards whose nodes fail the commit
		changed     bool
	}{
		{name: "commit, five refuse", write: "put", commitStale: []int{1, 2, 3, 4, 5}, changed: true},
		{name: "commit, one refuses, one fails", write: "put", commitStale: []int{5}, dropOn: []int{4}, changed: true},
		{name: "commit, one refuses, two fail", write: "put", commitStale: []int{5}, dropOn: []int{3, 4}},
		{name: "commit, two fail", write: "put", dropOn: []int{4, 5}},
		{name: "stage, two refuse", write: "put", stageStale: []int{0, 1}, changed: true},
		{name: "stage, one refuses, one fails", write: "put", stageStale: []int{0}, stageDown: []int{1}, changed: true},
		{name: "stage, one refuses, two fail", write: "put", stageStale: []int{0}, stageDown: []int{1, 2}},
		{name: "delete marker, two refuse", write: "delete", commitStale: []int{0, 1}, changed: true},
		{name: "delete marker, one refuses, two fail", write: "delete", commitStale: []int{0}, dropOn: []int{1, 2}},
		{name: "multipart completion, all refuse", write: "complete", commitStale: []int{0, 1, 2, 3, 4, 5}, changed: true},
		{name: "multipart completion, one refuses, two fail", write: "complete", commitStale: []int{0}, dropOn: []int{1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			armed := make(map[string]*atomic.Bool)
			c := newCluster(t, 6, 4, 2, func(cfg *Config) {
				cfg.KeptBodies = -1
				dial, base := cfg.Dial, cfg.Map
				cfg.Dial = func(pn placement.Node) client.Node {
					armed[pn.ID] = new(atomic.Bool)
					return mapChangeNode{Node: dial(pn), base: base, armed: armed[pn.ID]}
				}
			})
			if wq := c.s.Map().WriteQuorum; wq != 5 {
				t.Fatalf("write quorum %d, the cases assume 5", wq)
			}
			c.put("k", payload(100, 1))
			var upload string
			var parts []CompletePart
			if tc.write == "complete" {
				upload = c.create("k")
				parts = complete(c.putPart("k", upload, 1, payload(1000, 3)))
			}
			placed := c.s.Map().PlaceKey(testBucket, "k")
			newer := *c.s.Map()
			newer.Epoch++
			for _, i := range tc.stageStale {
				if err := c.nodes[placed[i].ID].PutMap(ctx, &newer); err != nil {
					t.Fatal(err)
				}
			}
			for _, i := range tc.stageDown {
				c.nodes[placed[i].ID].SetDown("stage", true)
			}
			for _, i := range tc.commitStale {
				armed[placed[i].ID].Store(true)
			}
			for _, i := range tc.dropOn {
				c.nodes[placed[i].ID].Edit(func(st *nodetest.State) { st.DropCommit = true })
			}
			var err error
			switch tc.write {
			case "put":
				size := 3*4*testBlock + 100 // three stripes and a bit
				_, err = c.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: int64(size), Body: bytes.NewReader(payload(size, 2))})
			case "delete":
				err = c.s.DeleteObject(ctx, testBucket, "k")
			case "complete":
				_, err = c.s.CompleteUpload(ctx, CompleteInput{Bucket: testBucket, Key: "k", UploadID: upload, Parts: parts})
			}
			wantErr(t, err, ErrQuorum, kerr.Unavailable)
			if got := errors.Is(err, ErrMapChanged); got != tc.changed {
				t.Errorf("error %v: ErrMapChanged %v, want %v", err, got, tc.changed)
			}
			if errors.Is(err, ErrSuperseded) {
				t.Errorf("error %v: ErrSuperseded, want not", err)
			}
		})
	}
}
