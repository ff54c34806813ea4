package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// healthFlags are a gateway's node health settings.
type healthFlags struct {
	interval, timeout, openFor, hedgeFloor, hedgeCap *time.Duration
	trip                                             *int
}

func addHealthFlags(fs *flag.FlagSet) *healthFlags {
	d := health.DefaultConfig()
	return &healthFlags{
		interval:   fs.Duration("heartbeat-interval", d.Interval, "how often every storage node is probed"),
		timeout:    fs.Duration("heartbeat-timeout", d.Timeout, "deadline of one probe"),
		trip:       fs.Int("breaker-failures", d.TripAfter, "consecutive failed calls or probes that mark a node down (open its breaker)"),
		openFor:    fs.Duration("breaker-open", d.OpenFor, "how long a down node is skipped before a probe may bring it back"),
		hedgeFloor: fs.Duration("hedge-floor", d.HedgeFloor, "shortest wait for a data shard before a parity shard is also asked for"),
		hedgeCap:   fs.Duration("hedge-cap", d.HedgeCap, "longest such wait, however slow the node usually is"),
	}
}

// config returns the health.Config the flags describe, or a usage error.
func (f *healthFlags) config(env *environ, probe func(context.Context, string) error, reg prometheus.Registerer) (health.Config, error) {
	cfg := health.Config{
		Probe:      probe,
		Interval:   *f.interval,
		Timeout:    *f.timeout,
		TripAfter:  *f.trip,
		OpenFor:    *f.openFor,
		HedgeFloor: *f.hedgeFloor,
		HedgeCap:   *f.hedgeCap,
		Logger:     env.logger,
		Registerer: reg,
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageErr("health flags: %v", err)
	}
	return cfg, nil
}

// mapSync keeps nodes and gateways on the newest cluster map through the
// heartbeats: every probe learns the epoch the node stores. A node with a
// newer map than the gateway's is asked for it (so gateways whose cluster
// file is on another host converge without a restart); a node with an
// older one, or none, is given the gateway's (so a node that was down
// during `kintsugi admin` catches up). Nodes accept only a higher epoch, so
// neither direction can roll the cluster back.
type mapSync struct {
	store mapSetter
	opts  *client.Options
	log   *slog.Logger
	learn chan string // id of a node that has a newer map

	mu     sync.Mutex
	pushed map[string]uint64 // node id -> epoch last offered to it
}

func newMapSync(store mapSetter, opts *client.Options, logger *slog.Logger) *mapSync {
	return &mapSync{store: store, opts: opts, log: logger, learn: make(chan string, 1), pushed: make(map[string]uint64)}
}

// probe is the gateway's heartbeat: the node must answer its health check
// under the id the map gives it.
func (ms *mapSync) probe(ctx context.Context, id string) error {
	m := ms.store.Map()
	n, ok := m.Node(id)
	if !ok {
		return fmt.Errorf("node %s is not in the cluster map (epoch %d)", id, m.Epoch)
	}
	h, err := client.New(n.Addr, ms.opts).Health(ctx)
	if err != nil {
		return err
	}
	if h.ID != id {
		return fmt.Errorf("the node at %s says it is %q, not %q", n.Addr, h.ID, id)
	}
	switch {
	case h.Epoch > m.Epoch:
		select {
		case ms.learn <- id:
		default: // a fetch is already due
		}
	case h.Epoch < m.Epoch:
		ms.offer(n, m)
	}
	return nil
}

// offer pushes m to node n in the background, once per epoch.
func (ms *mapSync) offer(n placement.Node, m *placement.Map) {
	ms.mu.Lock()
	if ms.pushed[n.ID] >= m.Epoch {
		ms.mu.Unlock()
		return
	}
	ms.pushed[n.ID] = m.Epoch
	ms.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := client.New(n.Addr, ms.opts).PutMap(ctx, m); err != nil {
			ms.log.Warn("could not give node the current cluster map", "node", n.ID, "epoch", m.Epoch, "err", err)
			return
		}
		ms.log.Info("gave node the current cluster map", "node", n.ID, "epoch", m.Epoch)
	}()
}

// run fetches the map from nodes that reported a newer epoch until ctx is
// done.
func (ms *mapSync) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-ms.learn:
			ms.fetch(ctx, id)
		}
	}
}

func (ms *mapSync) fetch(ctx context.Context, id string) {
	cur := ms.store.Map()
	n, ok := cur.Node(id)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := client.New(n.Addr, ms.opts).GetMap(ctx)
	if err != nil {
		ms.log.Warn("could not fetch a newer cluster map", "node", id, "err", err)
		return
	}
	if m.Epoch > cur.Epoch {
		ms.store.SetMap(m)
		ms.log.Info("installed new cluster map from a node", "node", id, "epoch", m.Epoch, "previous", cur.Epoch, "nodes", len(m.Nodes))
	}
}

// nodesView is the answer of a gateway's GET /nodes.
type nodesView struct {
	Epoch uint64     `json:"epoch"` // of the map the gateway uses
	Nodes []nodeView `json:"nodes"`
}

type nodeView struct {
	ID      string    `json:"id"`
	State   string    `json:"state"` // up, suspect, down
	Breaker string    `json:"breaker"`
	Since   time.Time `json:"since"`
	P95Ms   float64   `json:"p95_ms"`
	LastErr string    `json:"last_error,omitempty"`
}

// metricsHandler serves /metrics from reg and /nodes, the map epoch in use
// and the tracker's view of every node, as JSON.
func metricsHandler(reg *prometheus.Registry, tr *health.Tracker, maps mapSetter) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /nodes", func(w http.ResponseWriter, r *http.Request) {
		out := nodesView{Epoch: maps.Map().Epoch, Nodes: []nodeView{}}
		for _, st := range tr.Status() {
			out.Nodes = append(out.Nodes, nodeView{st.ID, st.State.String(), st.Breaker, st.Since, float64(st.P95) / 1e6, st.LastErr})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
	return mux
}

// promHandler serves GET /metrics from reg.
func promHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// nodeRegisterer is the registerer of storage node id: every series it
// takes carries node=id, so that a process holding several nodes (kintsugi
// dev) serves them from one registry, and a lone node's series look the
// same.
func nodeRegisterer(reg prometheus.Registerer, id string) prometheus.Registerer {
	return prometheus.WrapRegistererWith(prometheus.Labels{"node": id}, reg)
}

// mapEpochGauge reports the epoch of maps' current map at scrape time.
func mapEpochGauge(name, help string, maps interface{ Map() *placement.Map }) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
		if m := maps.Map(); m != nil {
			return float64(m.Epoch)
		}
		return 0
	})
}

// newRegistry returns a registry with the Go runtime and process metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
