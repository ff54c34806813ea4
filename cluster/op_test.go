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

func TestApply(t *testing.T) {
	base := testMap(4, "a", "b", "c", "d")
	draining := base.WithDefaults()
	draining.Nodes[3].State = placement.StateDraining
	newNode := &placement.Node{ID: "e", Addr: "127.0.0.1:9000", Zone: "ze"}
	edited := base.WithDefaults()
	edited.Nodes[0].Weight = 2
	tests := []struct {
		name   string
		cur    *placement.Map
		op     Op
		epoch  uint64 // of the result
		nodes  int
		state  map[string]string // node -> state after
		err    error             // errors.Is target
		confl  bool
		sameAs bool // result is cur itself
	}{
		{name: "init", op: Op{Kind: OpInit, Map: testMap(0, "a", "b", "c")}, epoch: 1, nodes: 3},
		{name: "init keeps epoch", op: Op{Kind: OpInit, Map: testMap(7, "a", "b", "c")}, epoch: 7, nodes: 3},
		{name: "init twice", cur: base, op: Op{Kind: OpInit, Map: testMap(1, "x", "y", "z")}, err: ErrInitialised},
		{name: "init retried", cur: base, op: Op{Kind: OpInit, Map: base}, epoch: 4, sameAs: true},
		{name: "init invalid", op: Op{Kind: OpInit, Map: testMap(1, "a")}, err: ErrRejected},
		{name: "add before init", op: Op{Kind: OpAdd, Node: newNode}, err: ErrNotInitialised},
		{name: "add", cur: base, op: Op{Kind: OpAdd, Node: newNode}, epoch: 5, nodes: 5, state: map[string]string{"e": placement.StateActive}},
		{name: "add expected", cur: base, op: Op{Kind: OpAdd, Node: newNode, Expect: ExpectEpoch(4)}, epoch: 5, nodes: 5},
		{name: "add stale", cur: base, op: Op{Kind: OpAdd, Node: newNode, Expect: ExpectEpoch(3)}, confl: true},
		{name: "add duplicate", cur: base, op: Op{Kind: OpAdd, Node: &placement.Node{ID: "a", Addr: "127.0.0.1:1", Zone: "q"}}, err: ErrRejected},
		{name: "drain", cur: base, op: Op{Kind: OpDrain, ID: "d"}, epoch: 5, state: map[string]string{"d": placement.StateDraining}},
		{name: "drain missing", cur: base, op: Op{Kind: OpDrain, ID: "q"}, err: ErrRejected},
		{name: "drain below n", cur: testMap(2, "a", "b", "c"), op: Op{Kind: OpDrain, ID: "a"}, err: ErrRejected},
		{name: "remove active", cur: base, op: Op{Kind: OpRemove, ID: "d"}, err: ErrRejected},
		{name: "remove forced", cur: base, op: Op{Kind: OpRemove, ID: "d", Force: true}, epoch: 5, state: map[string]string{"d": placement.StateRemoved}},
		{name: "remove drained", cur: draining, op: Op{Kind: OpRemove, ID: "d"}, epoch: 5, state: map[string]string{"d": placement.StateRemoved}},
		{name: "push", cur: base, op: Op{Kind: OpPush, Map: edited}, epoch: 5, nodes: 4},
		{name: "push same", cur: base, op: Op{Kind: OpPush, Map: base}, epoch: 4, sameAs: true},
		{name: "push stale", cur: base, op: Op{Kind: OpPush, Map: edited, Expect: ExpectEpoch(9)}, confl: true},
		{name: "unknown", cur: base, op: Op{Kind: "grow"}, err: ErrRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := func() ([]byte, error) {
				if tt.cur == nil {
					return nil, nil
				}
				return tt.cur.Marshal()
			}()
			m, err := apply(tt.cur, tt.op)
			if tt.cur != nil {
				after, _ := tt.cur.Marshal()
				if string(after) != string(before) {
					t.Fatal("apply modified the current map")
				}
			}
			var ce *ConflictError
			switch {
			case tt.confl:
				if !errors.As(err, &ce) || ce.Current != tt.cur.Epoch {
					t.Fatalf("err = %v, want a conflict at epoch %d", err, tt.cur.Epoch)
				}
				return
			case tt.err != nil:
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			case err != nil:
				t.Fatalf("apply: %v", err)
			}
			if m.Epoch != tt.epoch {
				t.Errorf("epoch = %d, want %d", m.Epoch, tt.epoch)
			}
			if tt.nodes > 0 && len(m.Nodes) != tt.nodes {
				t.Errorf("%d nodes, want %d", len(m.Nodes), tt.nodes)
			}
			for id, st := range tt.state {
				if n, _ := m.Node(id); n.State != st {
					t.Errorf("node %s is %q, want %q", id, n.State, st)
				}
			}
			if tt.sameAs && m != tt.cur {
				t.Error("a no-op change made a new map")
			}
		})
	}
}

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
