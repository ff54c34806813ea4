package health

import (
	"context"
	"sync"

	"github.com/sony/gobreaker/v2"
)

// Run sends heartbeats to the tracked nodes (SetNodes) every Interval, on
// Config.After's clock, until ctx is done; the first round goes out at
// once. A node whose breaker is open is not probed until the breaker lets
// a probe through, and a node is never probed twice at the same time.
// Without a Probe, Run returns at once.
func (t *Tracker) Run(ctx context.Context) {
	if t.cfg.Probe == nil {
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		t.round(ctx, &wg)
		select {
		case <-ctx.Done():
			return
		case <-t.cfg.After(t.cfg.Interval):
		}
	}
}

// Heartbeat sends one round of heartbeats, as Run does every Interval,
// and returns when they are done: a caller (a test, an operator's probe)
// can then read the states they left. A node whose heartbeat is already
// in flight is skipped. Without a Probe, Heartbeat returns at once.
func (t *Tracker) Heartbeat(ctx context.Context) {
	if t.cfg.Probe == nil {
		return
	}
	var wg sync.WaitGroup
	t.round(ctx, &wg)
	wg.Wait()
}

// round starts a heartbeat to every tracked node with none in flight.
func (t *Tracker) round(ctx context.Context, wg *sync.WaitGroup) {
	for _, n := range t.tracked() {
		if !n.probing.CompareAndSwap(false, true) {
			continue
		}
		wg.Go(func() {
			if t.beat != nil {
				defer t.beat(n.id) // last: the node can be probed again
			}
			defer n.probing.Store(false)
			t.heartbeat(ctx, n)
		})
	}
}

func (t *Tracker) tracked() []*node {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*node
	for _, n := range t.nodes {
		n.mu.Lock()
		if n.tracked {
			out = append(out, n)
		}
		n.mu.Unlock()
	}
	return out
}

// heartbeat probes n once. Any error from the probe counts against the
// node, whatever its kind: a node that answers its health check with an
// error is not healthy.
//
// A half-open breaker lets one call through and refuses the rest, this
// heartbeat among them, until that call ends: often a call begun while
// the node was cut off, hanging until its own timeout, seconds after the
// node is back. Such a heartbeat asks the node with Check instead, which
// replaces the breaker if the node answers, so that a node back from a
// partition is seen up within an Interval, not a call timeout.
func (t *Tracker) heartbeat(ctx context.Context, n *node) {
	c, err := t.Begin(n.id)
	if err != nil {
		if n.cb.Load().State() == gobreaker.StateHalfOpen {
			pctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
			defer cancel()
			t.Check(pctx, n.id)
		}
		return
	}
	pctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout)
	defer cancel()
	start := t.cfg.Now().UnixNano()
	err = t.cfg.Probe(pctx, n.id)
	o := success
	if err != nil {
		o = failure
		switch {
		case ctx.Err() != nil:
			o = excluded // shutting down
		case pctx.Err() != nil && n.progress.Load() >= start:
			o = excluded // slow behind its own streams, which still move (see Progress)
		}
	}
	n.mu.Lock()
	switch o {
	case success:
		n.hbFails = 0
	case failure:
		n.hbFails++
	}
	n.mu.Unlock()
	c.end(o, err, true)
}
