package placement

import (
	"fmt"
	"slices"
	"testing"
)

func movesTestMap(epoch uint64, states map[string]string) *Map {
	m := &Map{Epoch: epoch, DataShards: 4, ParityShards: 2, Partitions: 256}
	for i := range 8 {
		id := fmt.Sprintf("n%d", i)
		m.Nodes = append(m.Nodes, Node{ID: id, Addr: fmt.Sprintf("10.0.0.%d:9101", i), Zone: fmt.Sprintf("z%d", i%4), State: states[id]})
	}
	return m.WithDefaults()
}

func TestMoves(t *testing.T) {
	base := movesTestMap(1, map[string]string{"n7": StateDraining})
	tests := []struct {
		name string
		to   *Map
	}{
		{"same map", movesTestMap(2, map[string]string{"n7": StateDraining})},
		{"node added", movesTestMap(2, nil)},
		{"node drained", movesTestMap(2, map[string]string{"n7": StateDraining, "n2": StateDraining})},
		{"node removed", movesTestMap(2, map[string]string{"n7": StateDraining, "n2": StateRemoved})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			total := 0
			for k := range 300 {
				key := fmt.Sprintf("key-%d", k)
				a, b := base.PlaceKey("b", key), tt.to.PlaceKey("b", key)
				got := Moves(base, tt.to, "b", key)
				// Every listed move is a slot that changed, every changed
				// slot is listed, in shard order.
				var want []Move
				for i := range a {
					if a[i].ID != b[i].ID {
						want = append(want, Move{Shard: i, From: a[i], To: b[i]})
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s: Moves = %+v, want %+v", key, got, want)
				}
				for _, mv := range got {
					switch tt.name {
					case "node added":
						if mv.From.ID == "" || mv.To.ID == "" {
							t.Fatalf("%s: a slot of a full placement went empty: %+v", key, mv)
						}
					case "node drained", "node removed":
						if mv.To.ID == "n2" {
							t.Fatalf("%s: move onto the drained node: %+v", key, mv)
						}
					}
				}
				total += len(got)
			}
			if tt.name == "same map" && total != 0 {
				t.Fatalf("%d moves between equal maps", total)
			}
			if tt.name != "same map" && total == 0 {
				t.Fatal("no moves after a membership change")
			}
		})
	}
}

func TestMovesUnfilledSlots(t *testing.T) {
	// With 5 active nodes the sixth slot is not filled.
	small := movesTestMap(1, map[string]string{"n5": StateDraining, "n6": StateDraining, "n7": StateDraining})
	full := movesTestMap(2, map[string]string{"n6": StateDraining, "n7": StateDraining})
	got := Moves(small, full, "b", "k")
	a := small.PlaceKey("b", "k")
	b := full.PlaceKey("b", "k")
	if len(a) != 5 || len(b) != 6 {
		t.Fatalf("placements of %d and %d nodes", len(a), len(b))
	}
	last := got[len(got)-1]
	if last.Shard != 5 || last.From.ID != "" || last.To.ID != b[5].ID {
		t.Fatalf("last move %+v, want slot 5 from nowhere to %s", last, b[5].ID)
	}
}
