package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

const admSecret = "admin-test-secret"

// admCluster is a set of in-process storage nodes and a cluster file
// naming them, for admin command tests.
type admCluster struct {
	t     *testing.T
	file  string
	nodes map[string]*admNode
}

type admNode struct {
	id   string
	addr string
	srv  *httptest.Server
}

// newAdmCluster starts n nodes (one zone each) and writes a 4+2 map of the
// first active of them at epoch 1; the others run but are not in the map.
func newAdmCluster(t *testing.T, n, active int) *admCluster {
	t.Helper()
	c := &admCluster{t: t, file: filepath.Join(t.TempDir(), "cluster.yaml"), nodes: make(map[string]*admNode)}
	m := &placement.Map{Epoch: 1, DataShards: 4, ParityShards: 2}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		node, err := storagenode.Open(storagenode.Config{ID: id, Dir: t.TempDir(), Secret: []byte(admSecret), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: node.Handler()}}
		srv.Start()
		t.Cleanup(func() { srv.Close(); node.Close() })
		an := &admNode{id: id, addr: ln.Addr().String(), srv: srv}
		c.nodes[id] = an
		if i <= active {
			m.Nodes = append(m.Nodes, placement.Node{ID: id, Addr: an.addr, Zone: "z" + id})
		}
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// admin runs `kintsugi admin --cluster FILE args...` and returns its exit
// code, stdout and stderr.
func (c *admCluster) admin(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	env := &environ{
		stdout: &out, stderr: &errb,
		getenv: func(k string) string {
			if k == "KINTSUGI_CLUSTER_SECRET" {
				return admSecret
			}
			return ""
		},
		logger: slog.New(slog.DiscardHandler),
	}
	code := run(context.Background(), env, append([]string{"admin", "--cluster", c.file}, args...))
	return code, out.String(), errb.String()
}

func (c *admCluster) mustAdmin(args ...string) string {
	c.t.Helper()
	code, out, errs := c.admin(args...)
	if code != 0 {
		c.t.Fatalf("admin %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
	}
	return out
}

func (c *admCluster) fileMap() *placement.Map {
	c.t.Helper()
	m, err := placement.Load(c.file)
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

func (c *admCluster) client(id string) *client.Client {
	return client.New(c.nodes[id].addr, &client.Options{Secret: []byte(admSecret)})
}

// nodeEpoch returns the map epoch node id stores.
func (c *admCluster) nodeEpoch(id string) uint64 {
	c.t.Helper()
	h, err := c.client(id).Health(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	return h.Epoch
}

func TestAdminStatus(t *testing.T) {
	c := newAdmCluster(t, 6, 6)
	out := c.mustAdmin("status")
	for _, want := range []string{
		"epoch 1, 4+2 erasure coding, write quorum 5, 4096 partitions",
		"nodes: 6 active, 0 draining, 0 removed",
		"ID  ADDR",
		"nodes with an older map: n1 (0), n2 (0)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	for id := range c.nodes {
		if !strings.Contains(out, id+"  "+c.nodes[id].addr) {
			t.Errorf("status lacks node %s:\n%s", id, out)
		}
	}

	out = c.mustAdmin("map", "push")
	if out != "map epoch 1 stored on 6 of 6 nodes\n" {
		t.Fatalf("map push: %q", out)
	}
	c.nodes["n3"].srv.Close()
	var rep statusReport
	if err := json.Unmarshal([]byte(c.mustAdmin("status", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Epoch != 1 || len(rep.Nodes) != 6 {
		t.Fatalf("status --json: %+v", rep)
	}
	for _, n := range rep.Nodes {
		wantHealth, wantEpoch := "up", uint64(1)
		if n.ID == "n3" {
			wantHealth, wantEpoch = "down", 0
		}
		if n.Health != wantHealth || n.Epoch != wantEpoch || n.State != placement.StateActive {
			t.Errorf("node %+v: want health %s, epoch %d", n, wantHealth, wantEpoch)
		}
		if n.Health == "up" && (n.DiskTotal == 0 || n.Error != "") {
			t.Errorf("node %+v: no disk figures", n)
		}
	}
}

// TestAdminNodeLifecycle adds a node, drains one and removes it, checking
// the file, the epochs the nodes store and the refusals on the way.
func TestAdminNodeLifecycle(t *testing.T) {
	c := newAdmCluster(t, 7, 6)
	n7 := c.nodes["n7"]

	out := c.mustAdmin("nodes", "add", "--id", "n7", "--addr", n7.addr, "--zone", "z7")
	if want := "add n7: map epoch 1 -> 2\nmap epoch 2 stored on 7 of 7 nodes\n"; out != want {
		t.Fatalf("nodes add: %q, want %q", out, want)
	}
	m := c.fileMap()
	if nd, ok := m.Node("n7"); m.Epoch != 2 || !ok || nd.Addr != n7.addr || nd.Zone != "z7" || nd.State != placement.StateActive {
		t.Fatalf("map after add: %+v", m)
	}
	for id := range c.nodes {
		if e := c.nodeEpoch(id); e != 2 {
			t.Fatalf("node %s stores epoch %d, want 2", id, e)
		}
	}

	c.mustAdmin("nodes", "drain", "n2")
	if nd, _ := c.fileMap().Node("n2"); nd.State != placement.StateDraining {
		t.Fatalf("n2 is %s after drain", nd.State)
	}
	// n2 holds nothing, so it counts as drained.
	c.mustAdmin("nodes", "remove", "n2")
	m = c.fileMap()
	if nd, _ := m.Node("n2"); m.Epoch != 4 || nd.State != placement.StateRemoved {
		t.Fatalf("after remove: epoch %d, n2 %s", m.Epoch, nd.State)
	}
	if e := c.nodeEpoch("n2"); e != 3 {
		t.Fatalf("removed node was given epoch %d; it should keep the last map it was part of (3)", e)
	}

	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"nodes", "add", "--id", "n3", "--addr", "127.0.0.1:1", "--zone", "z"}, 1, "node n3 is already in the map (active)"},
		{[]string{"nodes", "add", "--id", "n2", "--addr", "127.0.0.1:1", "--zone", "z"}, 1, "belonged to a removed node"},
		{[]string{"nodes", "add", "--id", "n9", "--addr", n7.addr, "--zone", "z"}, 1, "says it is \"n7\", not \"n9\""},
		{[]string{"nodes", "drain", "n42"}, 1, "no node n42 in the map"},
		{[]string{"nodes", "drain", "n2"}, 1, "node n2 is removed, not active"},
		{[]string{"nodes", "remove", "n3"}, 1, "node n3 is active: drain it first, or use --force"},
		{[]string{"nodes", "remove", "n2"}, 1, "node n2 is already removed"},
		// Six active nodes left for 4+2: draining one more breaks the map.
		{[]string{"nodes", "drain", "n4"}, 1, "fewer than n = data_shards + parity_shards = 6"},
		{[]string{"nodes", "remove"}, 2, "want 1 argument(s), got 0"},
		{[]string{"nodes", "add", "--id", "x"}, 2, "--id, --addr and --zone are required"},
		{[]string{"nodes", "frob"}, 2, `unknown command "nodes frob"`},
	}
	for _, tt := range tests {
		code, _, stderr := c.admin(tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.msg) {
			t.Errorf("admin %v: exit %d, stderr %q; want exit %d containing %q", tt.args, code, stderr, tt.code, tt.msg)
		}
	}
	if m := c.fileMap(); m.Epoch != 4 {
		t.Fatalf("failed commands changed the map: epoch %d", m.Epoch)
	}

	// --force removes an active node (a dead one, say), flags after the id.
	c.nodes["n5"].srv.Close()
	code, out, stderr := c.admin("nodes", "add", "--id", "n8", "--addr", "127.0.0.1:1", "--zone", "z8")
	if code != 0 || !strings.Contains(stderr, "does not answer yet") || !strings.Contains(stderr, "not reachable: n5, n8") {
		t.Fatalf("add of a node not yet started: exit %d\n%s%s", code, out, stderr)
	}
	c.mustAdmin("nodes", "remove", "n5", "--force")
	if nd, _ := c.fileMap().Node("n5"); nd.State != placement.StateRemoved {
		t.Fatalf("n5 is %s after remove --force", nd.State)
	}
}

// TestAdminRemoveNeedsDrained: a draining node that still holds objects is
// removed only with --force.
func TestAdminRemoveNeedsDrained(t *testing.T) {
	c := newAdmCluster(t, 7, 7)
	ctx := context.Background()
	// One committed object on n1: shard 0 of a 4+2 object.
	cd, err := codec.New(4, 2, codec.WithBlockSize(codec.MinBlockSize))
	if err != nil {
		t.Fatal(err)
	}
	shards := make([]bytes.Buffer, 6)
	ws := make([]io.Writer, 6)
	for i := range ws {
		ws[i] = &shards[i]
	}
	enc, err := cd.Encode(strings.NewReader("hello, drained node"), ws)
	if err != nil {
		t.Fatal(err)
	}
	v := ulid.Make().String()
	cl := c.client("n1")
	if _, err := cl.Stage(ctx, "b", "k", v, 0, codec.MinBlockSize, &shards[0]); err != nil {
		t.Fatal(err)
	}
	roots := make([]string, 6)
	for i, r := range enc.Roots {
		roots[i] = r.String()
	}
	meta := client.ObjectMeta{Bucket: "b", Key: "k", Version: v, Size: enc.Size, Data: 4, Parity: 2,
		BlockSize: codec.MinBlockSize, Format: codec.FormatVersion, Roots: roots}
	if _, err := cl.Commit(ctx, meta); err != nil {
		t.Fatal(err)
	}
	c.mustAdmin("nodes", "drain", "n1")
	code, _, stderr := c.admin("nodes", "remove", "n1")
	if code != 1 || !strings.Contains(stderr, "n1 still holds 1 objects; wait for the rebalancer") {
		t.Fatalf("remove of a node with objects: exit %d, %s", code, stderr)
	}
	c.mustAdmin("nodes", "remove", "--force", "n1")
}

// TestAdminRace: two admins change the map from the same epoch at the same
// time. Exactly one wins; the other exits 3 with a clear message and
// writes nothing.
func TestAdminRace(t *testing.T) {
	for round := range 5 {
		c := newAdmCluster(t, 7, 7)
		type result struct {
			code           int
			stdout, stderr string
		}
		res := make([]result, 2)
		var wg sync.WaitGroup
		for i, id := range []string{"n1", "n2"} {
			wg.Go(func() {
				code, out, errs := c.admin("--expect-epoch", "1", "nodes", "drain", id)
				res[i] = result{code, out, errs}
			})
		}
		wg.Wait()
		winner, loser := res[0], res[1]
		if winner.code != 0 {
			winner, loser = loser, winner
		}
		if winner.code != 0 || loser.code != exitConflict {
			t.Fatalf("round %d: exits %d and %d, want 0 and 3\n%+v", round, res[0].code, res[1].code, res)
		}
		if want := "kintsugi admin: conflict: map epoch changed from 1 to 2; check the new map and run the command again\n"; loser.stderr != want {
			t.Fatalf("loser said %q, want %q", loser.stderr, want)
		}
		m := c.fileMap()
		drained := 0
		for _, n := range m.Nodes {
			if n.State == placement.StateDraining {
				drained++
			}
		}
		if m.Epoch != 2 || drained != 1 {
			t.Fatalf("round %d: epoch %d with %d nodes draining, want epoch 2 with 1", round, m.Epoch, drained)
		}
	}
}

// TestAdminConflictAtNodes: a map of the same epoch pushed to the nodes
// from another copy of the file makes the change fail with exit 3.
func TestAdminConflictAtNodes(t *testing.T) {
	c := newAdmCluster(t, 8, 7)
	other := c.fileMap()
	other.Epoch = 2
	other.Nodes = append(other.Nodes, placement.Node{ID: "x", Addr: "127.0.0.1:1", Zone: "zx"})
	if err := c.client("n1").PutMap(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := c.admin("nodes", "drain", "n6")
	if code != exitConflict || !strings.Contains(stderr, "conflict: nodes refused map epoch 2") ||
		!strings.Contains(stderr, "n1: client.PutMap: conflict: node "+c.nodes["n1"].addr+": 409 Conflict: storagenode.PutMap: conflict: map epoch 2 is already stored with different content") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	// The other nodes took it; the next change (epoch 3) wins everywhere.
	c.mustAdmin("nodes", "add", "--id", "n8", "--addr", c.nodes["n8"].addr, "--zone", "z8")
	for id := range c.nodes {
		if e := c.nodeEpoch(id); e != 3 {
			t.Fatalf("node %s at epoch %d, want 3", id, e)
		}
	}
}

func TestAdminMapShow(t *testing.T) {
	c := newAdmCluster(t, 6, 6)
	out := c.mustAdmin("map", "show")
	m, err := placement.Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := c.fileMap()
	got, _ := json.Marshal(m)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(got, wantJSON) {
		t.Fatalf("map show:\n%s\nwant %s", got, wantJSON)
	}
	var fromJSON placement.Map
	if err := json.Unmarshal([]byte(c.mustAdmin("map", "show", "--json")), &fromJSON); err != nil || fromJSON.Epoch != 1 || len(fromJSON.Nodes) != 6 {
		t.Fatalf("map show --json: %+v, %v", fromJSON, err)
	}
	if code, _, stderr := c.admin("map"); code != exitUsage || !strings.Contains(stderr, "map: missing subcommand") {
		t.Fatalf("admin map: exit %d, %s", code, stderr)
	}
	var errb bytes.Buffer
	env := &environ{stdout: &errb, stderr: &errb, getenv: func(string) string { return "" }, logger: slog.New(slog.DiscardHandler)}
	if code := run(context.Background(), env, []string{"admin", "status"}); code != exitUsage || !strings.Contains(errb.String(), "--cluster is required") {
		t.Fatalf("admin without --cluster: exit %d, %s", code, errb.String())
	}
}
