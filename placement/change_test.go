package placement

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// changeBase is a 2+1 map at epoch 5: n0, n1, n4 and n5 active, n2
// draining, n3 removed, so that every state is there to edit.
func changeBase() *Map {
	m := makeMap(6, 0, 2, 1)
	for i := range m.Nodes {
		m.Nodes[i].ID = fmt.Sprintf("n%d", i)
	}
	m.Epoch = 5
	m.Nodes[2].State = StateDraining
	m.Nodes[3].State = StateRemoved
	return m
}

func TestApply(t *testing.T) {
	newNode := Node{ID: "n9", Addr: "10.0.9.9:9100", Zone: "z9", Weight: 2}
	tests := []struct {
		name   string
		change Change
		want   map[string]string // node id -> state in the next map; nil: refused
		err    error
		msg    string
	}{
		{"add", AddNode(newNode), map[string]string{"n9": StateActive, "n0": StateActive}, nil, ""},
		{"add draining is added active", AddNode(Node{ID: "n9", Addr: "h:1", State: StateDraining}), map[string]string{"n9": StateActive}, nil, ""},
		{"add existing", AddNode(Node{ID: "n1", Addr: "h:1"}), nil, ErrInvalidChange, "node n1 is already in the map (active)"},
		{"add draining id", AddNode(Node{ID: "n2", Addr: "h:1"}), nil, ErrInvalidChange, "node n2 is already in the map (draining)"},
		{"add removed id", AddNode(Node{ID: "n3", Addr: "h:1"}), nil, ErrInvalidChange, "node id n3 belonged to a removed node; give the new node another id"},
		{"add bad addr", AddNode(Node{ID: "n9", Addr: "nohost"}), nil, ErrInvalidMap, `the new map would be invalid: invalid cluster map: nodes[6].addr: "nohost" is not host:port`},
		{"add taken addr", AddNode(Node{ID: "n9", Addr: "10.0.0.1:9100"}), nil, ErrInvalidMap, `the new map would be invalid: invalid cluster map: nodes[6].addr: duplicate addr "10.0.0.1:9100" (also nodes[0])`},
		{"add reuses a removed node's addr", AddNode(Node{ID: "n9", Addr: "10.0.0.4:9100"}), map[string]string{"n9": StateActive, "n3": StateRemoved}, nil, ""},
		{"drain", DrainNode("n0"), map[string]string{"n0": StateDraining}, nil, ""},
		{"drain unknown", DrainNode("n42"), nil, ErrInvalidChange, "no node n42 in the map"},
		{"drain draining", DrainNode("n2"), nil, ErrInvalidChange, "node n2 is draining, not active"},
		{"drain removed", DrainNode("n3"), nil, ErrInvalidChange, "node n3 is removed, not active"},
		{"remove drained", RemoveNode("n2", false), map[string]string{"n2": StateRemoved}, nil, ""},
		{"remove active", RemoveNode("n0", false), nil, ErrInvalidChange, "node n0 is active: drain it first, or use --force if it is dead"},
		{"remove active forced", RemoveNode("n0", true), map[string]string{"n0": StateRemoved, "n2": StateDraining}, nil, ""},
		{"remove removed", RemoveNode("n3", true), nil, ErrInvalidChange, "node n3 is already removed"},
		{"remove unknown", RemoveNode("x", true), nil, ErrInvalidChange, "no node x in the map"},
		{"expected epoch", DrainNode("n0").Expecting(5), map[string]string{"n0": StateDraining}, nil, ""},
		{"other epoch", DrainNode("n0").Expecting(4), nil, ErrConflict, "map epoch is 5, not the expected 4"},
		{"conflict before rules", DrainNode("n42").Expecting(6), nil, ErrConflict, "map epoch is 5, not the expected 6"},
		{"unknown op", Change{Op: "frob"}, nil, ErrInvalidChange, `invalid map change: unknown op "frob"`},
		{"missing id", Change{Op: OpDrain}, nil, ErrInvalidChange, `invalid map change: wrong arguments for op "drain"`},
		{"force on drain", Change{Op: OpDrain, ID: "n0", Force: true}, nil, ErrInvalidChange, `invalid map change: wrong arguments for op "drain"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := changeBase()
			before := changeBase()
			next, err := m.Apply(tt.change)
			if !reflect.DeepEqual(m, before) {
				t.Fatalf("Apply modified its map: %+v", m)
			}
			if tt.want == nil {
				if !errors.Is(err, tt.err) || err == nil || err.Error() != tt.msg {
					t.Fatalf("Apply(%v) = %v, want an error matching %v saying %q", tt.change, err, tt.err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply(%v): %v", tt.change, err)
			}
			if next.Epoch != 6 {
				t.Fatalf("next epoch %d, want 6", next.Epoch)
			}
			for id, state := range tt.want {
				if n, ok := next.Node(id); !ok || n.State != state {
					t.Errorf("node %s: %+v (in map: %v), want state %s", id, n, ok, state)
				}
			}
			if len(next.Nodes) < len(m.Nodes) {
				t.Fatalf("nodes dropped: %d -> %d", len(m.Nodes), len(next.Nodes))
			}
			if err := next.Validate(); err != nil {
				t.Fatalf("next map invalid: %v", err)
			}
		})
	}
}

func TestApplyAddKeepsNodeFields(t *testing.T) {
	n := Node{ID: "n9", Addr: "https://10.0.9.9:9100", Zone: "z9", Weight: 2.5}
	next, err := changeBase().Apply(AddNode(n))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := next.Node("n9")
	n.State = StateActive
	if got != n {
		t.Fatalf("added %+v, want %+v", got, n)
	}
	if last := next.Nodes[len(next.Nodes)-1]; last.ID != "n9" {
		t.Fatalf("new node not appended: last is %s", last.ID)
	}
}

func TestApplyReplace(t *testing.T) {
	base := changeBase()
	withState := func(state string, ids ...string) *Map {
		m := base.WithDefaults()
		for _, id := range ids {
			m.node(id).State = state
		}
		return m
	}
	dropped := base.WithDefaults()
	dropped.Nodes = dropped.Nodes[1:]
	geometry := base.WithDefaults()
	geometry.ParityShards = 2
	geometry.Epoch = 99 // ignored

	tests := []struct {
		name string
		repl *Map
		err  error
		msg  string
	}{
		{"same content", base, nil, ""},
		{"drain by edit", withState(StateDraining, "n1"), nil, ""},
		{"more parity", geometry, nil, ""},
		{"node dropped", dropped, ErrInvalidChange, "node n0 is missing from the new map; mark it removed instead"},
		{"removed node back", withState(StateActive, "n3"), ErrInvalidChange, "node n3 was removed and cannot come back; give it another id"},
		{"too few active", withState(StateRemoved, "n0", "n1"), ErrInvalidMap,
			"the new map would be invalid: invalid cluster map: nodes: 2 active nodes, fewer than n = data_shards + parity_shards = 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, err := base.Apply(ReplaceMap(tt.repl))
			if tt.err != nil {
				if !errors.Is(err, tt.err) || err == nil || err.Error() != tt.msg {
					t.Fatalf("Apply = %v, want %v saying %q", err, tt.err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.repl.WithDefaults()
			want.Epoch = base.Epoch + 1
			if !reflect.DeepEqual(next, want) {
				t.Fatalf("next = %+v, want %+v", next, want)
			}
		})
	}
}

// TestApplyBootstrap: a replicated map can start from the empty Map, the
// first change installing a whole map at epoch 1.
func TestApplyBootstrap(t *testing.T) {
	first := changeBase()
	first.Epoch = 42 // ignored
	m, err := (&Map{}).Apply(ReplaceMap(first).Expecting(0))
	if err != nil {
		t.Fatal(err)
	}
	if m.Epoch != 1 || len(m.Nodes) != len(first.Nodes) {
		t.Fatalf("bootstrap gave epoch %d with %d nodes", m.Epoch, len(m.Nodes))
	}
	if _, err := (&Map{}).Apply(DrainNode("n0")); !errors.Is(err, ErrInvalidChange) {
		t.Fatalf("drain on the empty map: %v", err)
	}
}

// TestApplySequence applies changes one after another, each expecting the
// epoch the previous one produced, as a replicated log would.
func TestApplySequence(t *testing.T) {
	m := changeBase()
	for _, c := range []Change{
		AddNode(Node{ID: "n9", Addr: "h9:1", Zone: "z9"}),
		DrainNode("n0"),
		RemoveNode("n0", false),
		RemoveNode("n2", false),
	} {
		next, err := m.Apply(c.Expecting(m.Epoch))
		if err != nil {
			t.Fatalf("%v at epoch %d: %v", c, m.Epoch, err)
		}
		if _, err := m.Apply(c.Expecting(m.Epoch - 1)); !errors.Is(err, ErrConflict) {
			t.Fatalf("%v expecting a stale epoch: %v, want a conflict", c, err)
		}
		m = next
	}
	if m.Epoch != 9 {
		t.Fatalf("epoch %d after four changes from 5", m.Epoch)
	}
	var ce *ConflictError
	if _, err := m.Apply(DrainNode("n1").Expecting(3)); !errors.As(err, &ce) || *ce != (ConflictError{Expected: 3, Current: 9}) {
		t.Fatalf("conflict error %#v", err)
	}
}

func TestChangeString(t *testing.T) {
	tests := []struct {
		c    Change
		want string
	}{
		{AddNode(Node{ID: "n7"}), "add n7"},
		{DrainNode("n3"), "drain n3"},
		{RemoveNode("n3", true), "remove n3"},
		{ReplaceMap(&Map{}), "replace"},
		{DrainNode("n3").Expecting(4), "drain n3"},
		{Change{Op: OpAdd}, "add"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.c, got, tt.want)
		}
	}
}

func TestChangeMarshalParse(t *testing.T) {
	tests := []struct {
		change Change
		json   string
	}{
		{AddNode(Node{ID: "n7", Addr: "h:1", Zone: "z", Weight: 2}), `{"op":"add","node":{"id":"n7","addr":"h:1","zone":"z","weight":2}}`},
		{DrainNode("n3").Expecting(4), `{"op":"drain","id":"n3","expect_epoch":4}`},
		{RemoveNode("n3", true), `{"op":"remove","id":"n3","force":true}`},
		{ReplaceMap(&Map{Epoch: 2, DataShards: 1, Nodes: []Node{{ID: "a", Addr: "a:1"}}}),
			`{"op":"replace","map":{"epoch":2,"data_shards":1,"parity_shards":0,"nodes":[{"id":"a","addr":"a:1","zone":""}]}}`},
	}
	for _, tt := range tests {
		b, err := tt.change.Marshal()
		if err != nil || string(b) != tt.json {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tt.change, b, err, tt.json)
			continue
		}
		back, err := ParseChange(b)
		if err != nil || !reflect.DeepEqual(back, tt.change) {
			t.Errorf("ParseChange(%s) = %+v, %v; want %+v", b, back, err, tt.change)
		}
	}
	for _, bad := range []string{
		``, `{}`, `[]`, `{"op":"drain"}`, `{"op":"drain","id":"n1","force":true}`, `{"op":"add","id":"n1"}`,
		`{"op":"replace"}`, `{"op":"drain","id":"n1","colour":"red"}`, `{"op":"drain","id":"n1"} {}`,
		`{"op":"drain","id":"n1","expect_epoch":-1}`,
	} {
		if c, err := ParseChange([]byte(bad)); !errors.Is(err, ErrInvalidChange) {
			t.Errorf("ParseChange(%q) = %+v, %v; want ErrInvalidChange", bad, c, err)
		}
	}
	if _, err := (Change{Op: OpRemove}).Marshal(); !errors.Is(err, ErrInvalidChange) {
		t.Errorf("Marshal of a change without its id: %v", err)
	}
}

// FuzzParseChange: ParseChange never panics and fails only with
// ErrInvalidChange; an accepted change survives a Marshal/ParseChange round
// trip, and applying it to a map either fails with one of Apply's errors or
// yields a valid map one epoch on that keeps every node.
func FuzzParseChange(f *testing.F) {
	f.Add([]byte(`{"op":"add","node":{"id":"n7","addr":"h:1","zone":"z","weight":2}}`))
	f.Add([]byte(`{"op":"drain","id":"n0","expect_epoch":5}`))
	f.Add([]byte(`{"op":"remove","id":"n2"}`))
	f.Add([]byte(`{"op":"remove","id":"n1","force":true}`))
	f.Add([]byte(`{"op":"replace","map":{"data_shards":2,"parity_shards":1,"nodes":[{"id":"n0","addr":"a:1"},{"id":"n1","addr":"b:1"},{"id":"n2","addr":"c:1"}]}}`))
	f.Add([]byte(`{"op":"add","node":{"id":"n3","addr":"h:1","weight":-1}}`))
	f.Add([]byte(`{"op":`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseChange(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidChange) {
				t.Fatalf("ParseChange error %v does not wrap ErrInvalidChange", err)
			}
			return
		}
		b, err := c.Marshal()
		if err != nil {
			// JSON has no NaN or infinity, so only an unrepresentable
			// weight can fail here, and then Apply must refuse it.
			if _, aerr := changeBase().Apply(c); aerr == nil {
				t.Fatalf("Marshal of an applicable change: %v", err)
			}
			return
		}
		back, err := ParseChange(b)
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("ParseChange(Marshal(c)) = %+v, %v; want %+v", back, err, c)
		}
		m := changeBase()
		next, err := m.Apply(c)
		if err != nil {
			if !errors.Is(err, ErrInvalidChange) && !errors.Is(err, ErrInvalidMap) && !errors.Is(err, ErrConflict) {
				t.Fatalf("Apply error %v matches none of its sentinels", err)
			}
			return
		}
		if next.Epoch != m.Epoch+1 {
			t.Fatalf("epoch %d -> %d", m.Epoch, next.Epoch)
		}
		if err := next.Validate(); err != nil {
			t.Fatalf("Apply returned an invalid map: %v", err)
		}
		for _, n := range m.Nodes {
			got, ok := next.Node(n.ID)
			if !ok || n.State == StateRemoved && got.State != StateRemoved {
				t.Fatalf("node %s (%s) became %+v, present %v", n.ID, n.State, got, ok)
			}
		}
	})
}
