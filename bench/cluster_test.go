package bench

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/kintsugi-store/kintsugi/gateway"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/testcluster"
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
	nodes []*testcluster.Node
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
	base := storagenode.DefaultConfig()
	base.Logger = logger
	base.SweepInterval = 0 // nothing to sweep in a benchmark; keep the CPU for the data path
	base.ScrubRate = 0
	tc := testcluster.New(tb, testcluster.Options{Real: true, First: 1, Secret: secret, Node: base, WithDefaults: true})
	c := &cluster{nodes: tc.Nodes, m: tc.Map}
	if inProcess {
		for _, n := range tc.Nodes {
			locals[n.ID] = n.Local(&storagenode.LocalOptions{TrustFrames: true})
		}
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
	var dial func(placement.Node) client.Node
	if inProcess {
		dial = func(n placement.Node) client.Node { return locals[n.ID] }
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
	for _, n := range c.nodes[:k] {
		n.Stop()
	}
}
