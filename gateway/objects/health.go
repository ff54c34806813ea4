package objects

import (
	"time"

	"github.com/kintsugi-store/kintsugi/internal/nodeaccess"
	"github.com/kintsugi-store/kintsugi/placement"
)

// bypassing returns holders whose calls go through open breakers.
func bypassing(holders []member) []member {
	out := make([]member, len(holders))
	for i, m := range holders {
		m.Client = nodeaccess.Bypass(m.Client)
		out[i] = m
	}
	return out
}

// bypassed reports whether m's calls go through open breakers. Such a
// member answered a moment ago although its node is still marked down, so
// the down signal says nothing about its streams; the stall timeout still
// guards them.
func bypassed(m member) bool { return nodeaccess.Bypassed(m.Client) }

// anyOpen reports whether some node of the current map sits behind a
// breaker that refuses calls (open, or half-open and probing); false
// without health tracking.
func (s *Store) anyOpen() bool {
	if s.health == nil {
		return false
	}
	for _, n := range s.Map().Nodes {
		if !s.health.Available(n.ID) {
			return true
		}
	}
	return false
}

// available reports whether node id's breaker lets every call through
// (it is closed); without health tracking every node is.
func (s *Store) available(id string) bool {
	return s.health == nil || s.health.Available(id)
}

// progress tells the health tracker that a stream to or from node id just
// moved bytes (see health.Tracker.Progress).
func (s *Store) progress(id string) {
	if s.health != nil {
		s.health.Progress(id)
	}
}

// hedgeDelay is how long a call to node id may take before the protocol
// stops waiting for it where it can do without; 0 without health tracking,
// which means: wait for every node up to its own timeouts.
func (s *Store) hedgeDelay(id string) time.Duration {
	if s.health == nil {
		return 0
	}
	return s.health.HedgeDelay(id)
}

// downChan is closed when node id goes down; nil (never ready) without
// health tracking.
func (s *Store) downChan(id string) <-chan struct{} {
	if s.health == nil {
		return nil
	}
	return s.health.Down(id)
}

// trackNodes tells the health tracker which nodes to send heartbeats to:
// every node of the current and previous map that was not removed.
func (s *Store) trackNodes(p *placement.Pair) {
	if s.health == nil {
		return
	}
	var ids []string
	for _, m := range []*placement.Map{p.Cur, p.Prev} {
		if m == nil {
			continue
		}
		for _, n := range nodeaccess.LiveNodes(m) {
			ids = append(ids, n.ID)
		}
	}
	s.health.SetNodes(ids)
}
