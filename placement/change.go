package placement

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrInvalidChange is wrapped by every error that reports a change that
// cannot be applied to the map it is given: an unknown node, a node in the
// wrong state, or a change that is malformed.
var ErrInvalidChange = errors.New("invalid map change")

// ErrConflict is matched (errors.Is) by a *ConflictError.
var ErrConflict = errors.New("map epoch conflict")

// ConflictError is the error of a change that expected the map at one epoch
// and found it at another: another change came first.
type ConflictError struct {
	Expected uint64 // the epoch the change was prepared against
	Current  uint64 // the epoch of the map it was applied to
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("map epoch is %d, not the expected %d", e.Current, e.Expected)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Op names the kind of a Change. The names are part of the encoded form:
// add new ones, never rename.
type Op string

// The operations a Change can carry.
const (
	OpAdd     Op = "add"     // add Node, active
	OpDrain   Op = "drain"   // an active node stops getting new shards
	OpRemove  Op = "remove"  // a drained node (any node with Force) leaves placement
	OpReplace Op = "replace" // the map becomes Map, under the rules of Replace
)

// Change is one edit of the cluster map, as a value: it can be encoded
// (Marshal, ParseChange), logged, sent and applied later to whatever map is
// current then (Map.Apply). Build one with AddNode, DrainNode, RemoveNode
// or ReplaceMap.
type Change struct {
	Op    Op     `json:"op"`
	Node  *Node  `json:"node,omitempty"`  // OpAdd: the node to add
	ID    string `json:"id,omitempty"`    // OpDrain, OpRemove: the node's id
	Force bool   `json:"force,omitempty"` // OpRemove: remove the node whatever its state
	Map   *Map   `json:"map,omitempty"`   // OpReplace: the map to install

	// ExpectEpoch, if not nil, makes the change a compare-and-set: Apply
	// refuses it with a *ConflictError unless the map is at this epoch.
	ExpectEpoch *uint64 `json:"expect_epoch,omitempty"`
}

// AddNode returns the change that adds n to the map as an active node. Its
// id must be new: the id of a removed node stays taken, so that older
// epochs naming it still mean the same machine.
func AddNode(n Node) Change { return Change{Op: OpAdd, Node: &n} }

// DrainNode returns the change that stops placing shards on the active node
// id. It keeps serving; the rebalancer moves its shards off.
func DrainNode(id string) Change { return Change{Op: OpDrain, ID: id} }

// RemoveNode returns the change that marks node id removed. Without force
// the node must be draining (whether it still holds shards is for the
// caller to ask the node); with force it may be in any state but removed,
// typically a dead node whose shards the scrubber rebuilds elsewhere.
func RemoveNode(id string, force bool) Change { return Change{Op: OpRemove, ID: id, Force: force} }

// ReplaceMap returns the change that installs m's content as the next map,
// whatever its Epoch field says. Apply refuses it if it drops a node of the
// current map or brings a removed node back: a removed node stays in every
// later map so that older epochs can still be resolved.
func ReplaceMap(m *Map) Change { return Change{Op: OpReplace, Map: m} }

// Expecting returns c made conditional on the map being at epoch.
func (c Change) Expecting(epoch uint64) Change {
	c.ExpectEpoch = &epoch
	return c
}

// String names the change for people: "add n7", "drain n3", "replace".
func (c Change) String() string {
	switch c.Op {
	case OpAdd:
		if c.Node != nil {
			return "add " + c.Node.ID
		}
	case OpDrain, OpRemove:
		return string(c.Op) + " " + c.ID
	}
	return string(c.Op)
}

// check reports whether c carries exactly the arguments its Op needs.
func (c Change) check() error {
	var ok bool
	switch c.Op {
	case OpAdd:
		ok = c.Node != nil && c.ID == "" && !c.Force && c.Map == nil
	case OpDrain:
		ok = c.Node == nil && c.ID != "" && !c.Force && c.Map == nil
	case OpRemove:
		ok = c.Node == nil && c.ID != "" && c.Map == nil
	case OpReplace:
		ok = c.Node == nil && c.ID == "" && !c.Force && c.Map != nil
	default:
		return fmt.Errorf("%w: unknown op %q", ErrInvalidChange, c.Op)
	}
	if !ok {
		return fmt.Errorf("%w: wrong arguments for op %q", ErrInvalidChange, c.Op)
	}
	return nil
}

// Marshal encodes c as JSON, the form ParseChange reads.
func (c Change) Marshal() ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("placement.Change.Marshal: %w", err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("placement.Change.Marshal: %w", err)
	}
	return b, nil
}

// ParseChange decodes a change encoded by Marshal. It checks that the op is
// known and carries the arguments it needs, not that it applies to any
// map: that is Apply's answer. Errors wrap ErrInvalidChange.
func ParseChange(data []byte) (Change, error) {
	const op = "placement.ParseChange"
	var c Change
	dec := json.NewDecoder(bytes.NewReader(data))
	// A change this version does not fully understand must not be applied
	// as if it did.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Change{}, fmt.Errorf("%s: %w: %w", op, ErrInvalidChange, err)
	}
	if dec.More() {
		return Change{}, fmt.Errorf("%s: %w: data after the change", op, ErrInvalidChange)
	}
	if err := c.check(); err != nil {
		return Change{}, fmt.Errorf("%s: %w", op, err)
	}
	return c, nil
}

// Apply returns the map that c makes of m: its defaults filled in, the edit
// made, the epoch m's plus one, and validated. m is not modified. Apply is
// deterministic, so replicas applying the same changes in the same order
// hold the same maps.
//
// Errors: a *ConflictError (errors.Is ErrConflict) if c expects another
// epoch; ErrInvalidChange if c does not apply to m (the message names the
// node and its state, e.g. "node n3 is active: drain it first, ..."); and
// ErrInvalidMap if the result would not validate (e.g. fewer than n active
// nodes). Messages have no prefix of their own: callers show them after
// the change's String.
//
// The empty Map (epoch 0, no nodes) is a valid starting point: a
// ReplaceMap change installs the first map at epoch 1.
func (m *Map) Apply(c Change) (*Map, error) {
	if c.ExpectEpoch != nil && *c.ExpectEpoch != m.Epoch {
		return nil, &ConflictError{Expected: *c.ExpectEpoch, Current: m.Epoch}
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	next := m.WithDefaults()
	if err := next.edit(c, m); err != nil {
		return nil, err
	}
	next = next.WithDefaults()
	next.Epoch = m.Epoch + 1
	if err := next.Validate(); err != nil {
		return nil, fmt.Errorf("the new map would be invalid: %w", err)
	}
	return next, nil
}

// refusal is the error of a change its rules refuse. It matches
// ErrInvalidChange without putting its text before the reason.
type refusal struct{ reason string }

func (e *refusal) Error() string        { return e.reason }
func (e *refusal) Is(target error) bool { return target == ErrInvalidChange }

func refuse(format string, args ...any) error {
	return &refusal{fmt.Sprintf(format, args...)}
}

// edit makes c on m, a copy of cur with defaults; it checks c's rules, not
// the resulting map.
func (m *Map) edit(c Change, cur *Map) error {
	switch c.Op {
	case OpAdd:
		n := *c.Node
		if old := m.node(n.ID); old != nil {
			if old.State == StateRemoved {
				return refuse("node id %s belonged to a removed node; give the new node another id", n.ID)
			}
			return refuse("node %s is already in the map (%s)", n.ID, old.State)
		}
		n.State = StateActive
		m.Nodes = append(m.Nodes, n)
	case OpDrain:
		n := m.node(c.ID)
		switch {
		case n == nil:
			return refuse("no node %s in the map", c.ID)
		case n.State != StateActive:
			return refuse("node %s is %s, not active", c.ID, n.State)
		}
		n.State = StateDraining
	case OpRemove:
		n := m.node(c.ID)
		switch {
		case n == nil:
			return refuse("no node %s in the map", c.ID)
		case n.State == StateRemoved:
			return refuse("node %s is already removed", c.ID)
		case n.State == StateActive && !c.Force:
			return refuse("node %s is active: drain it first, or use --force if it is dead", c.ID)
		}
		n.State = StateRemoved
	case OpReplace:
		repl := c.Map.WithDefaults()
		for _, old := range cur.WithDefaults().Nodes {
			n := repl.node(old.ID)
			switch {
			case n == nil:
				return refuse("node %s is missing from the new map; mark it removed instead", old.ID)
			case old.State == StateRemoved && n.State != StateRemoved:
				return refuse("node %s was removed and cannot come back; give it another id", old.ID)
			}
		}
		*m = *repl
	}
	return nil
}

// node returns a pointer to the node with the given id in m.Nodes, or nil.
func (m *Map) node(id string) *Node {
	for i := range m.Nodes {
		if m.Nodes[i].ID == id {
			return &m.Nodes[i]
		}
	}
	return nil
}
