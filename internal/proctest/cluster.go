package proctest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/placement"
)

// Options shapes a test cluster. Zero values mean: 6 nodes, 4+2, one zone
// per node, one gateway.
type Options struct {
	Nodes     int
	Data      int
	Parity    int
	Zones     int // 0 = one zone per node
	BlockSize int // 0 = default
	Gateways  int
	Env       []string // extra environment for every process
	// GatewayArgs are extra flags for every gateway.
	GatewayArgs []string
	// NodeArgs are extra flags for every storage node.
	NodeArgs []string
	// TLSCert and TLSKey, if set, are PEM files of a certificate valid for
	// 127.0.0.1: every node and gateway then serves HTTPS with it, nodes
	// are named https://... in the map, and gateways trust it for them.
	TLSCert, TLSKey string
}

// Cluster is a running multi-process cluster.
type Cluster struct {
	Dir       string
	Bin       string
	MapFile   string
	Map       *placement.Map
	Secret    string
	AccessKey string
	SecretKey string
	Nodes     []*Proc
	Gateways  []*Proc
	env       []string
	gwArgs    []string
	tls       bool
}

// StartCluster starts opt.Nodes storage node processes and opt.Gateways
// gateway processes from bin, all on loopback, and registers cleanup with t.
func StartCluster(t testing.TB, bin string, opt Options) *Cluster {
	t.Helper()
	if opt.Nodes == 0 {
		opt.Nodes = 6
	}
	if opt.Data == 0 {
		opt.Data, opt.Parity = 4, 2
	}
	if opt.Zones == 0 {
		opt.Zones = opt.Nodes
	}
	if opt.Gateways == 0 {
		opt.Gateways = 1
	}
	c := &Cluster{
		gwArgs:    opt.GatewayArgs,
		tls:       opt.TLSCert != "",
		Dir:       t.TempDir(),
		Bin:       bin,
		Secret:    "test-cluster-secret-" + fmt.Sprint(time.Now().UnixNano()),
		AccessKey: "testaccesskey",
		SecretKey: "testsecretkey-0123456789",
	}
	c.env = append([]string{
		"KINTSUGI_CLUSTER_SECRET=" + c.Secret,
		"KINTSUGI_ACCESS_KEY=" + c.AccessKey,
		"KINTSUGI_SECRET_KEY=" + c.SecretKey,
	}, opt.Env...)
	t.Cleanup(c.Close)

	m := &placement.Map{Epoch: 1, DataShards: opt.Data, ParityShards: opt.Parity, BlockSize: opt.BlockSize}
	for i := 0; i < opt.Nodes; i++ {
		addr, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if c.tls {
			addr = "https://" + addr
		}
		m.Nodes = append(m.Nodes, placement.Node{
			ID:   fmt.Sprintf("n%d", i+1),
			Addr: addr,
			Zone: fmt.Sprintf("z%d", i%opt.Zones+1),
		})
	}
	c.SetMap(t, m)

	ctx := context.Background()
	if c.tls {
		c.gwArgs = append([]string{"--tls-cert", opt.TLSCert, "--tls-key", opt.TLSKey, "--ca-file", opt.TLSCert}, c.gwArgs...)
	}
	for _, n := range c.Map.Nodes {
		args := []string{"storagenode", "--id", n.ID, "--listen", strings.TrimPrefix(n.Addr, "https://"), "--data", filepath.Join(c.Dir, n.ID)}
		if c.tls {
			args = append(args, "--tls-cert", opt.TLSCert, "--tls-key", opt.TLSKey)
		}
		args = append(args, opt.NodeArgs...)
		p, err := Start(ctx, "node "+n.ID, bin, filepath.Join(c.Dir, n.ID+".log"), c.env, args...)
		if err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, p)
	}
	for i := 0; i < opt.Gateways; i++ {
		p, err := c.StartGateway(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		c.Gateways = append(c.Gateways, p)
	}
	return c
}

// SetMap makes m, with its defaults, the cluster's map, and writes it to
// MapFile (cluster.yaml in Dir), the file processes are started with.
func (c *Cluster) SetMap(t testing.TB, m *placement.Map) {
	t.Helper()
	c.Map = m.WithDefaults()
	if err := c.Map.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := c.Map.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c.MapFile = filepath.Join(c.Dir, "cluster.yaml")
	if err := os.WriteFile(c.MapFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// StartGateway starts gateway number i on a free port.
func (c *Cluster) StartGateway(ctx context.Context, i int) (*Proc, error) {
	args := append([]string{"gateway", "--listen", "127.0.0.1:0", "--cluster", c.MapFile, "--map-poll", "500ms"}, c.gwArgs...)
	return Start(ctx, fmt.Sprintf("gateway %d", i), c.Bin, filepath.Join(c.Dir, fmt.Sprintf("gateway%d.log", i)), c.env, args...)
}

// Endpoint is the S3 URL of gateway i.
func (c *Cluster) Endpoint(i int) string {
	if c.tls {
		return "https://" + c.Gateways[i].Addr
	}
	return "http://" + c.Gateways[i].Addr
}

// NodeDir is node i's data directory.
func (c *Cluster) NodeDir(i int) string { return filepath.Join(c.Dir, c.Map.Nodes[i].ID) }

// Close kills every process.
func (c *Cluster) Close() {
	for _, p := range append(c.Gateways, c.Nodes...) {
		p.Close()
	}
}

// LogsAbout returns, for every process, the last n log lines that
// contain s.
func (c *Cluster) LogsAbout(s string, n int) string {
	var b strings.Builder
	for _, p := range append(c.Gateways, c.Nodes...) {
		if lines := p.LogGrep(s, n); len(lines) > 0 {
			fmt.Fprintf(&b, "--- %s ---\n%s\n", p.Name, strings.Join(lines, "\n"))
		}
	}
	return b.String()
}

// Logs returns the tails of every process log, for failure messages.
func (c *Cluster) Logs() string {
	var s string
	for _, p := range append(c.Gateways, c.Nodes...) {
		s += fmt.Sprintf("--- %s ---\n%s\n", p.Name, p.LogTail(3000))
	}
	return s
}
