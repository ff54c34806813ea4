package cluster

import (
	"errors"
	"fmt"

	"github.com/kintsugi-store/kintsugi/placement"
)

// Op kinds.
const (
	OpInit   = "init"   // seed the map; only on an empty group
	OpAdd    = "add"    // add Node
	OpDrain  = "drain"  // active ID -> draining
	OpRemove = "remove" // draining (or, with Force, active) ID -> removed
	OpPush   = "push"   // replace the map's content with Map
)

// Op is one change of the cluster map, as the Raft log carries it.
type Op struct {
	Kind string `json:"kind"`
	// Expect, if set, is the epoch the map must be at for the Op to
	// apply; otherwise it fails with a *ConflictError. Unset, the Op
	// applies to whatever the map is when its log entry is applied.
	Expect *uint64         `json:"expect,omitempty"`
	Node   *placement.Node `json:"node,omitempty"`  // OpAdd
	ID     string          `json:"id,omitempty"`    // OpDrain, OpRemove
	Force  bool            `json:"force,omitempty"` // OpRemove of an active node
	Map    *placement.Map  `json:"map,omitempty"`   // OpInit, OpPush
}

// ExpectEpoch returns a pointer to e, for Op.Expect.
func ExpectEpoch(e uint64) *uint64 { return &e }

// Errors of applying an Op. Each changes nothing.
var (
	// ErrNotInitialised: the group holds no map yet (admin init seeds it).
	ErrNotInitialised = errors.New("cluster map not initialised")
	// ErrInitialised: OpInit on a group that already holds a map.
	ErrInitialised = errors.New("cluster map already initialised")
	// ErrRejected is wrapped by an Op the current map does not allow
	// (a duplicate node, draining a removed one, an invalid result).
	ErrRejected = errors.New("map change rejected")
)

// ConflictError is an Op that expected another epoch than the map's.
type ConflictError struct {
	Expected, Current uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("conflict: expected map epoch %d, the cluster is at epoch %d", e.Expected, e.Current)
}

// rejectf returns an error wrapping ErrRejected.
func rejectf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}

// apply returns the map op makes of cur (nil: none yet), its epoch one
// higher, validated. It never modifies cur. It is pure: every member
// applies the same entry to the same map and must get the same answer.
func apply(cur *placement.Map, op Op) (*placement.Map, error) {
	if op.Kind == OpInit {
		if cur != nil {
			// A retried init of the very map it seeded is not an error.
			if op.Map != nil && sameContent(cur, op.Map) {
				return cur, nil
			}
			return nil, ErrInitialised
		}
		if op.Map == nil {
			return nil, rejectf("init without a map")
		}
		m := op.Map.WithDefaults()
		if m.Epoch == 0 {
			m.Epoch = 1
		}
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRejected, err)
		}
		return m, nil
	}
	if cur == nil {
		return nil, ErrNotInitialised
	}
	if op.Expect != nil && *op.Expect != cur.Epoch {
		return nil, &ConflictError{Expected: *op.Expect, Current: cur.Epoch}
	}
	m := cur.WithDefaults()
	switch op.Kind {
	case OpAdd:
		if op.Node == nil {
			return nil, rejectf("add without a node")
		}
		n := *op.Node
		if old, ok := m.Node(n.ID); ok {
			if old.State == placement.StateRemoved {
				return nil, rejectf("node id %s belonged to a removed node; give the new node another id", n.ID)
			}
			return nil, rejectf("node %s is already in the map (%s)", n.ID, old.State)
		}
		if n.State == "" {
			n.State = placement.StateActive
		}
		m.Nodes = append(m.Nodes, n)
	case OpDrain:
		n := node(m, op.ID)
		switch {
		case n == nil:
			return nil, rejectf("no node %s in the map", op.ID)
		case n.State != placement.StateActive:
			return nil, rejectf("node %s is %s, not active", op.ID, n.State)
		}
		n.State = placement.StateDraining
	case OpRemove:
		n := node(m, op.ID)
		switch {
		case n == nil:
			return nil, rejectf("no node %s in the map", op.ID)
		case n.State == placement.StateRemoved:
			return nil, rejectf("node %s is already removed", op.ID)
		case n.State == placement.StateActive && !op.Force:
			return nil, rejectf("node %s is active: drain it first, or use --force if it is dead", op.ID)
		}
		n.State = placement.StateRemoved
	case OpPush:
		if op.Map == nil {
			return nil, rejectf("push without a map")
		}
		if sameContent(cur, op.Map) {
			return cur, nil // a retried push: nothing to change
		}
		m = op.Map.WithDefaults()
	default:
		return nil, rejectf("unknown operation %q", op.Kind)
	}
	m = m.WithDefaults() // an added node's weight and state
	m.Epoch = cur.Epoch + 1
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: the new map would be invalid: %w", ErrRejected, err)
	}
	return m, nil
}

// sameContent reports whether a and b are the same map but for the epoch.
func sameContent(a, b *placement.Map) bool {
	x, y := a.WithDefaults(), b.WithDefaults()
	x.Epoch, y.Epoch = 0, 0
	bx, err1 := x.Marshal()
	by, err2 := y.Marshal()
	return err1 == nil && err2 == nil && string(bx) == string(by)
}

func node(m *placement.Map, id string) *placement.Node {
	for i := range m.Nodes {
		if m.Nodes[i].ID == id {
			return &m.Nodes[i]
		}
	}
	return nil
}
