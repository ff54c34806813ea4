package cluster

import (
	"errors"
	"fmt"

	"github.com/kintsugi-store/kintsugi/placement"
)

// entry is one command of the Raft log: the seed of the map, or a change
// of it. The rules of a change are placement's (Map.Apply); the log only
// orders them.
type entry struct {
	Init   *placement.Map    `json:"init,omitempty"`
	Change *placement.Change `json:"change,omitempty"`
	// ID is random, so that no two proposals have the same bytes: a
	// proposer that lost its leadership knows its entry by them
	// (Group.settle). Members ignore it.
	ID string `json:"id,omitempty"`
}

// Errors of the group's own, besides placement's (*placement.ConflictError,
// placement.ErrInvalidChange, placement.ErrInvalidMap). Each changes nothing.
var (
	// ErrNotInitialised: the group holds no map yet (admin init seeds it).
	ErrNotInitialised = errors.New("cluster map not initialised")
	// ErrInitialised: a seed for a group that already holds a map.
	ErrInitialised = errors.New("cluster map already initialised")
)

// apply returns the map e makes of cur (nil: none yet). It never
// modifies cur and is deterministic: every member applies the same entry
// to the same map and gets the same answer.
func apply(cur *placement.Map, e entry) (*placement.Map, error) {
	switch {
	case e.Init != nil && e.Change == nil:
		if cur != nil {
			// Even a seed of the very same map: of two inits, exactly one
			// seeds and the other hears that it did not. A second seed
			// changes nothing either way, so a log that holds one replays
			// to the same map whichever rule wrote it.
			return nil, ErrInitialised
		}
		// The seed keeps its epoch: nodes already hold maps of epochs up
		// to it from before the group, and fence with the highest.
		m := e.Init.WithDefaults()
		m.Epoch = max(m.Epoch, 1)
		if err := m.Validate(); err != nil {
			return nil, err
		}
		return m, nil
	case e.Change != nil && e.Init == nil:
		if cur == nil {
			return nil, ErrNotInitialised
		}
		return cur.Apply(*e.Change)
	}
	return nil, fmt.Errorf("%w: a log entry must hold a seed or a change", placement.ErrInvalidChange)
}
