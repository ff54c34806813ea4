package objects

import (
	"context"
	"slices"
	"sync/atomic"
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

// recheckTimeout bounds the probe a write makes of the nodes it would be
// refused for (recheck). A node back from a partition or a restart
// answers a health call within milliseconds; one still cut off sends
// nothing back, so its probe lasts the whole deadline, which the refusal
// then waits on. Half a second leaves a loaded node ten times what a
// healthy one needs and keeps a write that must be refused at about the
// latency of a slow one; it is capped by the call timeout in case an
// operator set that lower.
const recheckTimeout = 500 * time.Millisecond

// recheck asks the nodes of placed whose shards skip marks, and that the
// health tracker takes for down (their breakers are not closed), whether
// they answer now, in parallel, within recheckTimeout; those in avoid,
// which just failed this write, are not asked. A node that answers has
// its breaker closed for every caller (health.Tracker.Check). It reports
// whether any did, in which case the caller recomputes what it decided
// from the breakers. Only for a write that would otherwise be refused:
// it makes a network call and may wait its deadline.
func (s *Store) recheck(ctx context.Context, placed []member, skip []bool, avoid []string) bool {
	if s.health == nil {
		return false
	}
	var ids []string
	for i, sk := range skip {
		if sk && i < len(placed) && !slices.Contains(avoid, placed[i].Node.ID) && !s.available(placed[i].Node.ID) {
			ids = append(ids, placed[i].Node.ID)
		}
	}
	if len(ids) == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, min(recheckTimeout, s.callTimeout))
	defer cancel()
	var back atomic.Int32
	each(len(ids), func(i int) {
		if s.health.Check(ctx, ids[i]) {
			back.Add(1)
		}
	})
	if n := back.Load(); n > 0 {
		s.log.Info("objects: nodes marked down answered before a write was refused", "asked", len(ids), "answered", n)
		return true
	}
	return false
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
