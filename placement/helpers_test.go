package placement

import (
	"fmt"
	"testing"
)

// makeMap returns a d+p map of nodes nodes named n00, n01, ..., placed
// round-robin over zones zones, or each in its own zone if zones is 0.
func makeMap(nodes, zones, d, p int) *Map {
	m := &Map{DataShards: d, ParityShards: p}
	for i := range nodes {
		m.Nodes = append(m.Nodes, makeNode(i, zones))
	}
	return m
}

func makeNode(i, zones int) Node {
	z := i
	if zones > 0 {
		z = i % zones
	}
	return Node{
		ID:   fmt.Sprintf("n%02d", i),
		Addr: fmt.Sprintf("10.0.%d.%d:9100", i/200, i%200+1),
		Zone: fmt.Sprintf("z%d", z),
	}
}

// placements returns Place for every partition of m.
func placements(m *Map) [][]Node {
	all := make([][]Node, m.partitions())
	for p := range all {
		all[p] = m.Place(p)
	}
	return all
}

// slotCounts returns how many slots each node id holds over all partitions.
func slotCounts(all [][]Node) map[string]int {
	c := make(map[string]int)
	for _, list := range all {
		for _, n := range list {
			c[n.ID]++
		}
	}
	return c
}

// checkList fails t unless list holds want distinct, active nodes.
func checkList(t *testing.T, p int, list []Node, want int) {
	t.Helper()
	if len(list) != want {
		t.Fatalf("partition %d: got %d nodes, want %d", p, len(list), want)
	}
	seen := make(map[string]bool, len(list))
	for _, n := range list {
		if seen[n.ID] {
			t.Fatalf("partition %d: node %s placed twice in %v", p, n.ID, ids(list))
		}
		seen[n.ID] = true
		if n.State != "" && n.State != StateActive {
			t.Fatalf("partition %d: %s node %s placed", p, n.State, n.ID)
		}
	}
}

func ids(list []Node) []string {
	s := make([]string, len(list))
	for i, n := range list {
		s[i] = n.ID
	}
	return s
}
