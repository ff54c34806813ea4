package cluster

import (
	"slices"

	"github.com/kintsugi-store/kintsugi/placement"
)

// DefaultVoters is how many nodes vote unless configured otherwise: three
// survive one voter's loss, five survive two.
const DefaultVoters = 3

// PickVoters returns the ids of the (at most want) nodes of m that should
// vote, sorted. Voters are spread over as many zones as possible, so that
// losing a zone loses as few votes as possible; active nodes come before
// draining ones, and removed nodes never vote. Among equals the current
// voters are kept, so that a map change moves votes only when it must:
// each change of the voter set is a membership change of the group.
func PickVoters(m *placement.Map, current []string, want int) []string {
	if m == nil || want <= 0 {
		return nil
	}
	isCurrent := func(id string) bool { return slices.Contains(current, id) }
	var active, draining []placement.Node
	for _, n := range m.Nodes {
		switch n.State {
		case placement.StateActive, "":
			active = append(active, n)
		case placement.StateDraining:
			draining = append(draining, n)
		}
	}
	// Current voters first, then by id: a stable, deterministic order.
	order := func(ns []placement.Node) {
		slices.SortFunc(ns, func(a, b placement.Node) int {
			ca, cb := isCurrent(a.ID), isCurrent(b.ID)
			switch {
			case ca && !cb:
				return -1
			case cb && !ca:
				return 1
			}
			if a.ID < b.ID {
				return -1
			}
			if a.ID > b.ID {
				return 1
			}
			return 0
		})
	}
	order(active)
	order(draining)

	var out []string
	zones := map[string]bool{}
	take := func(ns []placement.Node, newZoneOnly bool) {
		for _, n := range ns {
			if len(out) == want {
				return
			}
			if slices.Contains(out, n.ID) || (newZoneOnly && zones[n.Zone]) {
				continue
			}
			out = append(out, n.ID)
			zones[n.Zone] = true
		}
	}
	take(active, true)
	take(active, false)
	take(draining, true)
	take(draining, false)
	slices.Sort(out)
	return out
}

// Seed returns the node a new group is bootstrapped on (admin init): the
// lowest id among m's active nodes, or among its draining ones if none is
// active; false if m has neither. It depends on the map's set of nodes
// alone, not on their order in a file nor on which nodes answer, so every
// init of one map, from any host, goes to the same node, whose Bootstrap
// lets exactly one of them seed the group: two inits cannot start two
// groups. It is the node PickVoters takes first whatever the voter count
// (and keeps, as a current voter), so the first leader stays a voter while
// the others join.
func Seed(m *placement.Map) (placement.Node, bool) {
	ids := PickVoters(m, nil, 1)
	if len(ids) == 0 {
		return placement.Node{}, false
	}
	return m.Node(ids[0])
}
