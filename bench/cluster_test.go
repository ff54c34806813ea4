package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/kintsugi-store/kintsugi/gateway"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

const (
	testAccessKey = "benchaccesskey"
	testSecretKey = "bench-secret-key-0123456789"
	testRegion    = "us-east-1"
)

// cluster is an in-process Kintsugi cluster: 6 storage nodes (4+2), each
// behind its own loopback HTTP server, and a gateway behind another, so
// requests cross real sockets and the real node and S3 protocols.
type cluster struct {
	URL   string // S3 endpoint
	nodes []*httptest.Server
	m     *placement.Map
}

func startCluster(tb testing.TB) *cluster { return startClusterNodes(tb, false) }

// startLocalCluster is startCluster with the gateway calling its nodes in
// process, as `kintsugi dev` and `kintsugi server` do: no loopback, JSON or
// signing, and no second hash of staged blocks (TrustFrames). The nodes
// still serve HTTP, for stopNodes.
func startLocalCluster(tb testing.TB) *cluster { return startClusterNodes(tb, true) }

func startClusterNodes(tb testing.TB, inProcess bool) *cluster {
	tb.Helper()
	locals := map[string]*storagenode.Local{}
	secret := []byte("bench-cluster-secret")
	logger := slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	c := &cluster{}
	m := &placement.Map{Epoch: 1, DataShards: 4, ParityShards: 2}
	for i := 1; i <= 6; i++ {
		cfg := storagenode.DefaultConfig()
		cfg.ID = fmt.Sprintf("n%d", i)
		cfg.Dir = tb.TempDir()
		cfg.Secret = secret
		cfg.Logger = logger
		cfg.SweepInterval = 0 // nothing to sweep in a benchmark; keep the CPU for the data path
		cfg.ScrubRate = 0
		node, err := storagenode.Open(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { node.Close() })
		locals[cfg.ID] = storagenode.NewLocal(node, &storagenode.LocalOptions{TrustFrames: true})
		srv := httptest.NewServer(node.Handler())
		tb.Cleanup(srv.Close) // runs before node.Close
		c.nodes = append(c.nodes, srv)
		m.Nodes = append(m.Nodes, placement.Node{ID: cfg.ID, Addr: srv.Listener.Addr().String(), Zone: fmt.Sprintf("z%d", i)})
	}
	c.m = m.WithDefaults()
	if err := c.m.Validate(); err != nil {
		tb.Fatal(err)
	}
	// Node health as the gateway command wires it: heartbeats, breakers
	// that skip a dead node at once, hedged reads.
	opts := &client.Options{Secret: secret}
	probes := make(map[string]*client.Client)
	for _, n := range c.m.Nodes {
		probes[n.ID] = client.New(n.Addr, opts)
	}
	hcfg := health.DefaultConfig()
	hcfg.Probe = func(ctx context.Context, id string) error {
		if inProcess {
			_, err := locals[id].Health(ctx)
			return err
		}
		_, err := probes[id].Health(ctx)
		return err
	}
	hcfg.Logger = logger
	tracker, err := health.New(hcfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tracker.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	var dial func(placement.Node) objects.NodeClient
	if inProcess {
		dial = func(n placement.Node) objects.NodeClient { return locals[n.ID] }
	}
	store, err := objects.New(objects.Config{
		Map:           c.m,
		Dial:          dial,
		ClientOptions: opts,
		Logger:        logger,
		Health:        tracker,
	})
	if err != nil {
		tb.Fatal(err)
	}
	gcfg := gateway.DefaultConfig()
	gcfg.Backend = store
	gcfg.Region = testRegion
	gcfg.Logger = logger
	gcfg.Auth = &sigv4.Verifier{Creds: sigv4.StaticCredentials{testAccessKey: testSecretKey}, Region: testRegion}
	gw, err := gateway.New(gcfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	tb.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// stopNodes takes down the servers of the first k nodes: their ports
// refuse connections from now on, as a crashed node's would.
func (c *cluster) stopNodes(k int) {
	for _, s := range c.nodes[:k] {
		s.CloseClientConnections()
		s.Close()
	}
}
