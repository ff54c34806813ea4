package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
	"github.com/kintsugi-store/kintsugi/placement"
)

// Heartbeat settings of the test gateways: fast enough that a failure is
// detected in a second or two, slow enough for a loaded machine.
var testHealthFlags = []string{
	"--heartbeat-interval", "250ms",
	"--heartbeat-timeout", "750ms",
	"--breaker-open", "1s",
}

// healthGateway is a gateway process with its metrics listener.
type healthGateway struct {
	*proctest.Proc
	metrics string       // host:port of /metrics and /nodes
	hc      *http.Client // reaches metrics; nil: http.DefaultClient
}

// procEnv is the environment every process of c runs with.
func procEnv(c *proctest.Cluster) []string {
	return []string{
		"KINTSUGI_CLUSTER_SECRET=" + c.Secret,
		"KINTSUGI_ACCESS_KEY=" + c.AccessKey,
		"KINTSUGI_SECRET_KEY=" + c.SecretKey,
	}
}

// startHealthGateway starts a gateway on mapFile with a metrics listener
// and the test health flags (plus extra flags).
func startHealthGateway(t *testing.T, c *proctest.Cluster, name, mapFile string, extra ...string) *healthGateway {
	t.Helper()
	maddr, err := proctest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"gateway", "--listen", "127.0.0.1:0", "--cluster", mapFile, "--map-poll", "500ms",
		"--metrics-listen", maddr}, testHealthFlags...)
	args = append(args, extra...)
	p, err := proctest.Start(context.Background(), name, c.Bin, filepath.Join(c.Dir, name+".log"), procEnv(c), args...)
	if err != nil {
		t.Fatal(err)
	}
	return &healthGateway{Proc: p, metrics: maddr}
}

// useHealthGateways replaces c's gateways by n gateways with metrics; the
// i-th reads mapFiles[i] if given, else c.MapFile. c.Endpoint(i) and
// s3Client(c, i) then address them.
func useHealthGateways(t *testing.T, c *proctest.Cluster, n int, mapFiles ...string) []*healthGateway {
	t.Helper()
	for _, g := range c.Gateways {
		g.Close()
	}
	var out []*healthGateway
	c.Gateways = nil
	for i := range n {
		file := c.MapFile
		if i < len(mapFiles) {
			file = mapFiles[i]
		}
		g := startHealthGateway(t, c, fmt.Sprintf("hgateway%d", i), file)
		out = append(out, g)
		c.Gateways = append(c.Gateways, g.Proc)
	}
	return out
}

// nodes returns the gateway's view of the cluster.
func (g *healthGateway) nodes(ctx context.Context) (nodesView, error) {
	var v nodesView
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.metrics+"/nodes", nil)
	if err != nil {
		return v, err
	}
	hc := g.hc
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&v)
	return v, err
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (last: %s)", what, timeout, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitNodeState waits until gateway g sees node id in state.
func (g *healthGateway) waitNodeState(t *testing.T, id, state string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%s: node %s %s", g.Name, id, state), func() (bool, string) {
		v, err := g.nodes(context.Background())
		if err != nil {
			return false, err.Error()
		}
		for _, n := range v.Nodes {
			if n.ID == id {
				return n.State == state, fmt.Sprintf("%+v", n)
			}
		}
		return false, fmt.Sprintf("node %s not tracked: %+v", id, v)
	})
}

// waitEpoch waits until gateway g uses map epoch e or later.
func (g *healthGateway) waitEpoch(t *testing.T, e uint64, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%s: epoch %d", g.Name, e), func() (bool, string) {
		v, err := g.nodes(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return v.Epoch >= e, fmt.Sprintf("epoch %d", v.Epoch)
	})
}

// nodeProc returns the process of node id.
func nodeProc(c *proctest.Cluster, id string) *proctest.Proc {
	for _, p := range c.Nodes {
		if p.Name == "node "+id {
			return p
		}
	}
	panic("no node process " + id)
}

// placedIDs returns the node ids of bucket/key's placement under c.Map.
func placedIDs(m *placement.Map, bucket, key string) []string {
	var ids []string
	for _, n := range m.PlaceKey(bucket, key) {
		ids = append(ids, n.ID)
	}
	return ids
}

// keyWithShard returns the first key "prefix-N" whose shard i (in [lo,
// hi)) sits on node id.
func keyWithShard(m *placement.Map, bucket, prefix, id string, lo, hi int) string {
	for k := 0; ; k++ {
		key := fmt.Sprintf("%s-%d", prefix, k)
		ids := placedIDs(m, bucket, key)
		if i := slices.Index(ids, id); i >= lo && i < hi {
			return key
		}
	}
}

// admin runs `kintsugi admin` as a process against c.
func runAdminProc(t *testing.T, c *proctest.Cluster, args ...string) (string, error) {
	t.Helper()
	out, err := execKintsugi(c, append([]string{"admin", "--cluster", c.MapFile}, args...)...)
	return out, err
}

// execKintsugi runs the kintsugi binary of c with args and returns its
// combined output.
func execKintsugi(c *proctest.Cluster, args ...string) (string, error) {
	cmd := exec.Command(c.Bin, args...)
	cmd.Env = append(os.Environ(), procEnv(c)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// copyFile copies src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// percentile returns the q-quantile (0..1) of ds, nearest rank.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
