package main

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/scrubber"
	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// A localNode is a storage node run inside this process, as `kintsugi dev`
// and `kintsugi server` run theirs.
type localNode struct {
	id   string
	dir  string // its data directory
	zone string // its failure domain in the map
	addr string // where its HTTP API listens
}

// localCluster is the nodes this process runs, their HTTP servers and the
// cluster map that names them.
type localCluster struct {
	m       *placement.Map
	nodes   []*storagenode.Node
	servers []*server
	urls    []string
	// trusted are in-process clients of the nodes, by id, for the
	// gateway: its frames are cut from stripes that never left memory,
	// so the nodes do not hash each block again (TrustFrames). checked
	// are the same without that, for the scrubber, whose rebuilt
	// frames are checked where they land as a remote node checks them.
	trusted map[string]*storagenode.Local
	checked map[string]*storagenode.Local
	addrs   map[string]string // the map address of each node, by id
	// follow, if set, keeps a component's map current with the
	// cluster's (a Raft-held map: see dev_raft.go).
	follow func(mapSetter)
}

// openLocalNodes opens every node and listens for its API. The map has
// epoch 1, one entry per node, and validates; busy is added to a listen
// error as the way out (a flag to change). On error, whatever was opened is
// closed again.
func openLocalNodes(env *environ, nodes []localNode, dataShards, parityShards int, secret []byte,
	tlsCert, tlsKey string, reg prometheus.Registerer, busy string) (lc *localCluster, err error) {
	lc = &localCluster{m: &placement.Map{Epoch: 1, DataShards: dataShards, ParityShards: parityShards},
		trusted: map[string]*storagenode.Local{}, checked: map[string]*storagenode.Local{}, addrs: map[string]string{}}
	defer func() {
		if err != nil {
			lc.close()
		}
	}()
	for _, n := range nodes {
		cfg := storagenode.DefaultConfig()
		cfg.ID = n.id
		cfg.Dir = n.dir
		cfg.Secret = secret
		cfg.Logger = env.logger.With("node", n.id)
		// One registry for the front end and every node: the nodes'
		// series carry node=ID, as a lone node's do, so the dashboards
		// work on both.
		cfg.Registerer = nodeRegisterer(reg, n.id)
		node, err := storagenode.Open(cfg)
		if err != nil {
			return lc, fmt.Errorf("node %s: %w", n.id, err)
		}
		lc.nodes = append(lc.nodes, node)
		lc.trusted[n.id] = storagenode.NewLocal(node, &storagenode.LocalOptions{TrustFrames: true})
		lc.checked[n.id] = storagenode.NewLocal(node, nil)
		srv, err := newServer("storagenode "+n.id, n.addr, withProbes(node.Handler(), nil), env.logger)
		if err != nil {
			return lc, usageErr("node %s: %v (%s)", n.id, err, busy)
		}
		lc.servers = append(lc.servers, srv)
		if err := srv.useTLS(tlsCert, tlsKey); err != nil {
			return lc, err
		}
		lc.urls = append(lc.urls, srv.URL())
		addr := srv.Addr()
		if srv.scheme == "https" {
			addr = srv.URL()
		}
		lc.addrs[n.id] = addr
		lc.m.Nodes = append(lc.m.Nodes, placement.Node{ID: n.id, Addr: addr, Zone: n.zone})
	}
	lc.m = lc.m.WithDefaults()
	if err := lc.m.Validate(); err != nil {
		return lc, usageErr("%v", err)
	}
	return lc, nil
}

// close closes the nodes and any listener not yet handed to serveAll.
func (lc *localCluster) close() {
	for _, n := range lc.nodes {
		n.Close()
	}
}

// local returns the in-process client of the node n names, if this
// process runs it at n's address.
func (lc *localCluster) local(n placement.Node, trusted bool) (*storagenode.Local, bool) {
	if lc.addrs[n.ID] != n.Addr {
		return nil, false
	}
	if trusted {
		return lc.trusted[n.ID], true
	}
	return lc.checked[n.ID], true
}

// gatewayDial is the front end's objects.Config.Dial: the nodes of this
// process are called in process, with no loopback, JSON or signing, and
// any other node over HTTP. With loopback set every node is called over
// HTTP, as a cluster of separate processes calls them (to measure that).
// The store wraps either in its health tracking.
func (lc *localCluster) gatewayDial(opts *client.Options, loopback bool) func(placement.Node) client.Node {
	return func(n placement.Node) client.Node {
		if l, ok := lc.local(n, true); ok && !loopback {
			return l
		}
		return client.New(n.Addr, opts)
	}
}

// scrubberDial is the embedded scrubber's Dial: in process as the
// gateway's, but every staged frame is checked.
func (lc *localCluster) scrubberDial(opts *client.Options) func(placement.Node) client.Node {
	return func(n placement.Node) client.Node {
		if l, ok := lc.local(n, false); ok {
			return l
		}
		return client.New(n.Addr, opts)
	}
}

// probe is the heartbeat of a front end over local nodes: the node at the
// map's address must answer its health check under its id. The nodes of
// this process are asked in process, as the gateway calls them.
func (lc *localCluster) probe(opts *client.Options, loopback bool) func(context.Context, string) error {
	return func(ctx context.Context, id string) error {
		n, ok := lc.m.Node(id)
		if !ok {
			return fmt.Errorf("node %s is not in the cluster map", id)
		}
		var h client.Health
		var err error
		if l, ok := lc.local(n, true); ok && !loopback {
			h, err = l.Health(ctx)
		} else {
			h, err = client.New(n.Addr, opts).Health(ctx)
		}
		if err == nil && h.ID != id {
			err = fmt.Errorf("the node at %s says it is %q, not %q", n.Addr, h.ID, id)
		}
		return err
	}
}

// startScrubber runs the embedded scrubber's passes every interval and
// serves its /status, /metrics and /healthz on listen. stop ends the
// passes and waits for the current one, then closes the scrubber.
func startScrubber(ctx context.Context, env *environ, lc *localCluster, opts *client.Options, now func() time.Time,
	stateDir string, interval, lifecycleDay time.Duration, listen, flagName string) (srv *server, stop func(), err error) {
	s, err := scrubber.New(scrubber.Config{
		Map:           lc.m,
		Dial:          lc.scrubberDial(opts),
		ClientOptions: opts,
		StateDir:      stateDir,
		Concurrency:   2,
		LifecycleDay:  lifecycleDay,
		Logger:        env.logger.With("role", "scrubber"),
		Now:           now,
	})
	if err != nil {
		return nil, nil, err
	}
	if lc.follow != nil {
		lc.follow(s)
	}
	d := scrubber.NewDaemon(s, interval)
	srv, err = newServer("scrubber", listen, d.Handler(), env.logger)
	if err != nil {
		s.Close()
		return nil, nil, usageErr("scrubber: %v (try %s 127.0.0.1:0)", err, flagName)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(sctx)
	}()
	return srv, func() {
		cancel()
		<-done
		s.Close()
	}, nil
}
