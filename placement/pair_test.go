package placement

import (
	"encoding/json"
	"testing"
)

func TestPairNode(t *testing.T) {
	cur := &Map{Epoch: 2, Nodes: []Node{{ID: "n1", Addr: "a:2"}, {ID: "n2", State: StateRemoved}}}
	prev := &Map{Epoch: 1, Nodes: []Node{{ID: "n1", Addr: "a:1"}, {ID: "n3"}}}
	for _, tc := range []struct {
		p        Pair
		id, addr string
		ok       bool
	}{
		{Pair{Cur: cur, Prev: prev}, "n1", "a:2", true}, // the current map wins
		{Pair{Cur: cur, Prev: prev}, "n2", "", true},    // whatever its state
		{Pair{Cur: cur, Prev: prev}, "n3", "", true},    // only in the previous map
		{Pair{Cur: cur, Prev: prev}, "n4", "", false},
		{Pair{Cur: cur}, "n3", "", false},
		{Pair{}, "n1", "", false},
	} {
		n, ok := tc.p.Node(tc.id)
		if ok != tc.ok || (ok && (n.ID != tc.id || n.Addr != tc.addr)) {
			t.Errorf("Node(%q) with prev=%v = %+v, %v; want addr %q, %v", tc.id, tc.p.Prev != nil, n, ok, tc.addr, tc.ok)
		}
	}
}

// The scrubber keeps a Pair in its checkpoint: the field names are a
// durable format.
func TestPairJSON(t *testing.T) {
	b, err := json.Marshal(Pair{Cur: &Map{Epoch: 3}})
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	if _, ok := fields["cur"]; !ok || len(fields) != 1 {
		t.Errorf("Pair without Prev encodes as %s, want only \"cur\"", b)
	}
	var back Pair
	if err := json.Unmarshal([]byte(`{"cur":{"epoch":3},"prev":{"epoch":2}}`), &back); err != nil {
		t.Fatal(err)
	}
	if back.Cur == nil || back.Cur.Epoch != 3 || back.Prev == nil || back.Prev.Epoch != 2 {
		t.Errorf("decoded %+v", back)
	}
}
