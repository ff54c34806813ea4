package health

import (
	"context"
	"time"

	"github.com/sony/gobreaker/v2"
)

// check is one Check of a node in flight; concurrent Checks of the node
// wait for it rather than each probing the node.
type check struct {
	began time.Time
	done  chan struct{}
	ok    bool // set before done is closed
}

// Check asks node id now, with the Probe, whether it answers, whatever its
// breaker says, and reports whether it did. A node that answers is taken
// as up at once: its breaker is closed and its failures forgotten, so
// every caller sees it up without waiting for OpenFor and the next
// heartbeat. A node that does not answer is left as it was: it is down or
// suspect already, and its breaker goes on learning from its own probes.
//
// It is for callers about to refuse work because nodes are marked down: a
// node back from a partition or a restart stays marked down for up to
// OpenFor plus an Interval, and a refusal in that window refuses work the
// nodes could do. The probe runs under ctx, which should carry a short
// deadline (each node cut off from the network holds its probe that
// long). A Check of a node that has one in flight waits for that one, or
// for ctx; if that probe fails and was begun before this Check was asked,
// the Check probes again: a probe sent while the link was down waits out
// a lost SYN's retransmission long after the link is back, and must not
// answer for a node that is reachable now. A node whose breaker is closed
// is not probed: Check reports true. Without a Probe, Check reports
// whether the breaker is closed.
func (t *Tracker) Check(ctx context.Context, id string) bool {
	n := t.node(id)
	asked := t.cfg.Now()
	for {
		if n.cb.Load().State() == gobreaker.StateClosed {
			return true
		}
		if t.cfg.Probe == nil {
			return false
		}
		n.mu.Lock()
		c := n.checking
		if c == nil {
			c = &check{began: t.cfg.Now(), done: make(chan struct{})}
			n.checking = c
			n.mu.Unlock()
			c.ok = t.check(ctx, n)
			n.mu.Lock()
			n.checking = nil
			n.mu.Unlock()
			close(c.done)
			return c.ok
		}
		n.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return false
		}
		if c.ok || !c.began.Before(asked) || ctx.Err() != nil {
			return c.ok
		}
	}
}

// check probes n once and, if it answers, closes its breaker.
func (t *Tracker) check(ctx context.Context, n *node) bool {
	old := n.cb.Load()
	start := t.cfg.Now()
	if err := t.cfg.Probe(ctx, n.id); err != nil {
		t.log.Debug("node still not answering", "node", n.id, "err", err)
		return false
	}
	lat := t.cfg.Now().Sub(start)
	t.m.observe(n.id, lat)
	t.m.call(n.id, "ok")
	// The breaker is replaced, not driven closed: an open one lets no call
	// through before OpenFor, and a half-open one only the call holding
	// its slot, often a heartbeat hanging on the dead link. Calls begun on
	// the old breaker end on it, unheard (newBreaker). Swapping under n.mu
	// keeps the new breaker's own state changes, which take n.mu, after
	// this one.
	fresh := n.newBreaker()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cb.CompareAndSwap(old, fresh) {
		n.breaker = gobreaker.StateClosed
	}
	n.hbFails, n.fails, n.lastErr = 0, 0, nil
	n.lat.add(lat)
	n.update()
	return true
}
