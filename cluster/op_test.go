package cluster

import (
	"errors"
	"slices"
	"testing"

	"github.com/kintsugi-store/kintsugi/placement"
)

func testMap(epoch uint64, ids ...string) *placement.Map {
	m := &placement.Map{Epoch: epoch, DataShards: 2, ParityShards: 1}
	for i, id := range ids {
		m.Nodes = append(m.Nodes, placement.Node{ID: id, Addr: "127.0.0.1:" + string(rune('1'+i)) + "000", Zone: "z" + id})
	}
	return m.WithDefaults()
}

// TestApply covers the log's own rules; the change rules are placement's
// (Map.Apply) and tested there.
func TestApply(t *testing.T) {
	base := testMap(4, "a", "b", "c", "d")
	add := placement.AddNode(placement.Node{ID: "e", Addr: "127.0.0.1:9000", Zone: "ze"})
	tests := []struct {
		name  string
		cur   *placement.Map
		e     entry
		epoch uint64 // of the result
		err   error  // errors.Is target
	}{
		{name: "init", e: entry{Init: testMap(0, "a", "b", "c")}, epoch: 1},
		{name: "init keeps epoch", e: entry{Init: testMap(7, "a", "b", "c")}, epoch: 7},
		{name: "init twice", cur: base, e: entry{Init: testMap(1, "x", "y", "z")}, err: ErrInitialised},
		{name: "init of the same map again", cur: base, e: entry{Init: base}, err: ErrInitialised},
		{name: "init invalid", e: entry{Init: testMap(1, "a")}, err: placement.ErrInvalidMap},
		{name: "change before init", e: entry{Change: &add}, err: ErrNotInitialised},
		{name: "change", cur: base, e: entry{Change: &add}, epoch: 5},
		{name: "stale change", cur: base, e: entry{Change: ptr(add.Expecting(3))}, err: placement.ErrConflict},
		{name: "empty entry", cur: base, e: entry{}, err: placement.ErrInvalidChange},
		{name: "both", cur: base, e: entry{Init: base, Change: &add}, err: placement.ErrInvalidChange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before []byte
			if tt.cur != nil {
				before, _ = tt.cur.Marshal()
			}
			m, err := apply(tt.cur, tt.e)
			if tt.cur != nil {
				if after, _ := tt.cur.Marshal(); string(after) != string(before) {
					t.Fatal("apply modified the current map")
				}
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if m.Epoch != tt.epoch {
				t.Errorf("epoch = %d, want %d", m.Epoch, tt.epoch)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestPickVoters(t *testing.T) {
	m := func(nodes ...placement.Node) *placement.Map { return &placement.Map{Nodes: nodes} }
	n := func(id, zone, state string) placement.Node { return placement.Node{ID: id, Zone: zone, State: state} }
	const a, d, r = placement.StateActive, placement.StateDraining, placement.StateRemoved
	tests := []struct {
		name    string
		m       *placement.Map
		current []string
		want    int
		out     []string
	}{
		{"distinct zones first", m(n("a", "z1", a), n("b", "z1", a), n("c", "z2", a), n("d", "z3", a)), nil, 3, []string{"a", "c", "d"}},
		{"fewer zones than voters", m(n("a", "z1", a), n("b", "z1", a), n("c", "z2", a)), nil, 3, []string{"a", "b", "c"}},
		{"keeps current voters", m(n("a", "z1", a), n("b", "z2", a), n("c", "z3", a), n("d", "z4", a)), []string{"b", "c", "d"}, 3, []string{"b", "c", "d"}},
		{"current voter in a shared zone yields", m(n("a", "z1", a), n("b", "z1", a), n("c", "z2", a), n("d", "z3", a)), []string{"a", "b", "c"}, 3, []string{"a", "c", "d"}},
		{"removed never votes", m(n("a", "z1", r), n("b", "z2", a), n("c", "z3", a), n("d", "z4", a)), []string{"a", "b", "c"}, 3, []string{"b", "c", "d"}},
		{"active before draining", m(n("a", "z1", d), n("b", "z2", a), n("c", "z3", a), n("d", "z4", a)), []string{"a", "b", "c"}, 3, []string{"b", "c", "d"}},
		{"draining fills in", m(n("a", "z1", d), n("b", "z2", a)), nil, 3, []string{"a", "b"}},
		{"five", m(n("a", "z1", a), n("b", "z2", a), n("c", "z3", a), n("d", "z1", a), n("e", "z2", a), n("f", "z3", a)), nil, 5, []string{"a", "b", "c", "d", "e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PickVoters(tt.m, tt.current, tt.want); !slices.Equal(got, tt.out) {
				t.Errorf("PickVoters = %v, want %v", got, tt.out)
			}
		})
	}
}

func TestSeed(t *testing.T) {
	m := func(nodes ...placement.Node) *placement.Map { return &placement.Map{Nodes: nodes} }
	n := func(id, zone, state string) placement.Node { return placement.Node{ID: id, Zone: zone, State: state} }
	const a, d, r = placement.StateActive, placement.StateDraining, placement.StateRemoved
	tests := []struct {
		name string
		m    *placement.Map
		want string // "": none
	}{
		{"lowest id", m(n("c", "z1", a), n("b", "z2", a), n("d", "z3", a)), "b"},
		{"the file's order does not matter", m(n("d", "z3", a), n("b", "z2", a), n("c", "z1", a)), "b"},
		{"unset state is active", m(n("c", "z1", a), n("b", "z2", "")), "b"},
		{"removed never seeds", m(n("a", "z1", r), n("c", "z2", a), n("b", "z3", a)), "b"},
		{"active before draining", m(n("a", "z1", d), n("c", "z2", a), n("b", "z2", a)), "b"},
		{"draining when none is active", m(n("c", "z1", d), n("b", "z2", d), n("a", "z3", r)), "b"},
		{"no node to seed", m(n("a", "z1", r)), ""},
		{"no map", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Seed(tt.m)
			if got.ID != tt.want || ok != (tt.want != "") {
				t.Fatalf("Seed = %q, %v; want %q", got.ID, ok, tt.want)
			}
			// The seed votes whatever the voter count, and stays a voter
			// once it is one.
			for _, k := range []int{1, 3, 5} {
				if ok && !slices.Contains(PickVoters(tt.m, nil, k), got.ID) {
					t.Errorf("%d voters: PickVoters = %v lacks the seed %s", k, PickVoters(tt.m, nil, k), got.ID)
				}
				if ok && !slices.Contains(PickVoters(tt.m, []string{got.ID}, k), got.ID) {
					t.Errorf("%d voters with the seed voting: PickVoters = %v lacks it", k, PickVoters(tt.m, []string{got.ID}, k))
				}
			}
		})
	}
}
