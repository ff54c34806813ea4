package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/kintsugi-store/kintsugi/placement"
)

// fsm is the Raft state machine: the current map. Every member applies
// the same entries in the same order, so every member's map is the same
// at the same index.
type fsm struct {
	onMap func(*placement.Map) // called after each change, in log order; may be nil

	mu      sync.Mutex
	m       *placement.Map // nil: not initialised
	changed chan struct{}  // closed and replaced whenever m changes
	// results holds what the last entries applied returned, by log
	// index, for a proposer that lost its leadership before it heard
	// (Group.settle); at most keptResults of them.
	results map[uint64]result
}

// keptResults bounds fsm.results: a proposer asks within seconds of its
// proposal, and a map changes a few times a minute at most.
const keptResults = 256

func newFSM(onMap func(*placement.Map)) *fsm {
	return &fsm{onMap: onMap, changed: make(chan struct{})}
}

// result is what Apply returns to the proposer (raft.ApplyFuture.Response).
type result struct {
	m   *placement.Map
	err error
}

// Apply applies one log entry. An entry that cannot be decoded is an Op
// rejected on every member alike, never a panic: the log is the same
// everywhere.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	var e entry
	if err := json.Unmarshal(l.Data, &e); err != nil {
		return result{err: fmt.Errorf("%w: undecodable log entry %d: %v", placement.ErrInvalidChange, l.Index, err)}
	}
	f.mu.Lock()
	cur := f.m
	f.mu.Unlock()
	m, err := apply(cur, e)
	res := result{m: m, err: err}
	if err != nil {
		res.m = nil
	} else if m != cur {
		f.set(m)
	}
	f.remember(l.Index, res)
	return res
}

// remember keeps res as the result of the entry at index, dropping the
// oldest kept once keptResults are.
func (f *fsm) remember(index uint64, res result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.results == nil {
		f.results = make(map[uint64]result)
	}
	f.results[index] = res
	if len(f.results) > keptResults {
		delete(f.results, slices.Min(slices.Collect(maps.Keys(f.results))))
	}
}

// resultAt returns the result of the entry applied at index, if kept.
func (f *fsm) resultAt(index uint64) (result, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res, ok := f.results[index]
	return res, ok
}

// set installs m and wakes the watchers.
func (f *fsm) set(m *placement.Map) {
	f.mu.Lock()
	f.m = m
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
	if f.onMap != nil {
		f.onMap(m)
	}
}

// current returns the map (nil: none) and a channel closed on its next
// change.
func (f *fsm) current() (*placement.Map, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m, f.changed
}

// wait returns the map once its epoch is above after, or the current map
// (possibly nil) when ctx is done.
func (f *fsm) wait(ctx context.Context, after uint64) *placement.Map {
	for {
		m, changed := f.current()
		if m != nil && m.Epoch > after {
			return m
		}
		select {
		case <-ctx.Done():
			return m
		case <-changed:
		}
	}
}

// Snapshot captures the map; the map is never modified in place, so the
// pointer is the snapshot.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	m, _ := f.current()
	return snapshot{m}, nil
}

// Restore replaces the map with a snapshot's: a member that was away
// long enough for the log to be compacted catches up this way.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var s struct {
		Map *placement.Map `json:"map"`
	}
	if err := json.NewDecoder(rc).Decode(&s); err != nil {
		return fmt.Errorf("cluster: decoding snapshot: %w", err)
	}
	if s.Map != nil {
		f.set(s.Map.WithDefaults())
	}
	return nil
}

type snapshot struct{ m *placement.Map }

// Persist writes {"map": ...} as JSON.
func (s snapshot) Persist(sink raft.SnapshotSink) error {
	err := json.NewEncoder(sink).Encode(struct {
		Map *placement.Map `json:"map"`
	}{s.m})
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("cluster: writing snapshot: %w", err)
	}
	return sink.Close()
}

func (snapshot) Release() {}
