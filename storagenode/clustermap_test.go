package storagenode

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
)

func testMap(epoch uint64, nodes int) *placement.Map {
	m := &placement.Map{Epoch: epoch, DataShards: 2, ParityShards: 1}
	for i := range nodes {
		m.Nodes = append(m.Nodes, placement.Node{ID: fmt.Sprintf("n%d", i), Addr: fmt.Sprintf("10.0.0.%d:9101", i), Zone: fmt.Sprintf("z%d", i)})
	}
	return m.WithDefaults()
}

func TestClusterMap(t *testing.T) {
	ctx := context.Background()
	tn := startNode(t, "", func(c *Config) { c.Secret = []byte("secret") })
	if _, err := tn.c.GetMap(ctx); !kerr.Is(kerr.NotExist, err) {
		t.Fatalf("GetMap on a new node: %v, want NotExist", err)
	}
	if h, err := tn.c.Health(ctx); err != nil || h.Epoch != 0 {
		t.Fatalf("health of a node without a map: %+v, %v", h, err)
	}
	m3, m3b := testMap(3, 3), testMap(3, 4)
	tests := []struct {
		name    string
		m       *placement.Map
		kind    kerr.Kind // Other: accepted
		msg     string
		stored  uint64
		storedN int
	}{
		{"first map", m3, kerr.Other, "", 3, 3},
		{"same map again", m3, kerr.Other, "", 3, 3},
		{"same epoch, other content", m3b, kerr.Conflict, "map epoch 3 is already stored with different content", 3, 3},
		{"older epoch", testMap(2, 4), kerr.Conflict, "node has map epoch 3, newer than 2", 3, 3},
		{"newer epoch", testMap(5, 4), kerr.Other, "", 5, 4},
		{"invalid map", &placement.Map{Epoch: 9, DataShards: 4, ParityShards: 2}, kerr.Invalid, "fewer than n", 5, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tn.c.PutMap(ctx, tt.m)
			if tt.kind == kerr.Other && err != nil {
				t.Fatalf("PutMap: %v", err)
			}
			if tt.kind != kerr.Other && (!kerr.Is(tt.kind, err) || !strings.Contains(err.Error(), tt.msg)) {
				t.Fatalf("PutMap: %v, want %v containing %q", err, tt.kind, tt.msg)
			}
			got, err := tn.c.GetMap(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got.Epoch != tt.stored || len(got.Nodes) != tt.storedN {
				t.Fatalf("stored map: epoch %d with %d nodes, want %d with %d", got.Epoch, len(got.Nodes), tt.stored, tt.storedN)
			}
			if h, err := tn.c.Health(ctx); err != nil || h.Epoch != tt.stored {
				t.Fatalf("health: %+v, %v; want epoch %d", h, err, tt.stored)
			}
		})
	}
}

// TestClusterMapSurvivesRestart: the map is in the index, not in memory.
func TestClusterMapSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tn := startNode(t, dir, nil)
	if err := tn.c.PutMap(ctx, testMap(7, 3)); err != nil {
		t.Fatal(err)
	}
	tn.stop()
	tn = startNode(t, dir, nil)
	m, err := tn.c.GetMap(ctx)
	if err != nil || m.Epoch != 7 {
		t.Fatalf("after restart: %+v, %v", m, err)
	}
}

// TestClusterMapRace: of concurrent different maps with the same epoch,
// exactly one is stored and the others get Conflict.
func TestClusterMapRace(t *testing.T) {
	ctx := context.Background()
	tn := startNode(t, "", nil)
	const racers = 8
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() { errs[i] = tn.c.PutMap(ctx, testMap(4, 3+i)) })
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("racers %d and %d both won", won, i)
		case err == nil:
			won = i
		case !kerr.Is(kerr.Conflict, err):
			t.Fatalf("racer %d: %v, want Conflict", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no racer won")
	}
	m, err := tn.c.GetMap(ctx)
	if err != nil || len(m.Nodes) != 3+won {
		t.Fatalf("stored %+v, %v; want the winner's %d nodes", m, err, 3+won)
	}
}
