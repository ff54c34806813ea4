package nodeaccess

import (
	"sync"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Pool dials each node once and keeps its guarded client, by node ID and
// address, across map changes: a node that moves gets a new client, and
// its breaker (kept by ID in the tracker) stays. It is safe for concurrent
// use.
type Pool struct {
	dial func(placement.Node) client.Node
	h    *health.Tracker

	mu      sync.Mutex
	clients map[string]client.Node
}

// NewPool returns a Pool that dials with dial and guards with h (nil: no
// breakers).
func NewPool(dial func(placement.Node) client.Node, h *health.Tracker) *Pool {
	return &Pool{dial: dial, h: h, clients: make(map[string]client.Node)}
}

// Get returns the client for n.
func (p *Pool) Get(n placement.Node) client.Node {
	k := n.ID + "\x00" + n.Addr
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.clients[k]
	if !ok {
		c = Guard(p.dial(n), n.ID, p.h)
		p.clients[k] = c
	}
	return c
}

// LiveNodes returns the nodes of m that have not been removed.
func LiveNodes(m *placement.Map) []placement.Node {
	var out []placement.Node
	for _, n := range m.Nodes {
		if n.State != placement.StateRemoved {
			out = append(out, n)
		}
	}
	return out
}
