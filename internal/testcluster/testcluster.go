// Package testcluster runs a cluster of storage nodes inside a test: N
// nodes, either in-memory fakes (nodetest.Node) or real nodes served over
// loopback HTTP, a placement.Map naming them, and hooks to stop, hang,
// slow, wipe and corrupt a node. It is the one in-process harness of the
// gateway, scrubber and bench tests; internal/proctest runs nodes as
// processes.
//
// It owns nothing but test plumbing and must never be imported by
// non-test code.
package testcluster

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// Options configure a Cluster. Zero values mean defaults.
type Options struct {
	Nodes        int  // default 6
	Data, Parity int  // default 4+2
	Real         bool // real nodes over HTTP; false: in-memory fakes
	Epoch        uint64
	Partitions   int // 0: the map's default
	BlockSize    int // 0: the map's default
	// IDs names node i; nil: "n<i+First>".
	IDs   func(i int) string
	First int
	// Zone names node i's zone; nil: "z<i+First>".
	Zone func(i int) string
	// Secret signs the real nodes' requests; nil: none.
	Secret []byte
	// Node is the base configuration of the real nodes (ID, Dir and
	// Secret are set per node; a nil Logger is quiet).
	Node storagenode.Config
	// WithDefaults makes Map carry its defaults filled in.
	WithDefaults bool
}

// Cluster is a set of in-process nodes and the map naming them.
type Cluster struct {
	t     testing.TB
	o     Options
	Map   *placement.Map
	Nodes []*Node
	byID  map[string]*Node
}

// Node is one node of a Cluster.
type Node struct {
	ID   string
	Addr string // the map's address: host:port for real nodes

	// Fake is the node, for a fake cluster; nil for a real one.
	Fake *nodetest.Node

	// Real nodes: the data directory, the running node, its server and a
	// client for it.
	Dir    string
	Server *httptest.Server
	Client *client.Client
	base   storagenode.Config // as started
	cfg    storagenode.Config // as last opened
	t      testing.TB

	mu   sync.Mutex
	node *storagenode.Node
	h    http.Handler // what the server serves now
}

// New starts a cluster; it is shut down when the test ends.
func New(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Nodes == 0 {
		o.Nodes = 6
	}
	if o.Data == 0 {
		o.Data, o.Parity = 4, 2
	}
	if o.Epoch == 0 {
		o.Epoch = 1
	}
	c := &Cluster{t: t, o: o, byID: make(map[string]*Node)}
	m := &placement.Map{Epoch: o.Epoch, DataShards: o.Data, ParityShards: o.Parity, Partitions: o.Partitions, BlockSize: o.BlockSize}
	for i := range o.Nodes {
		id := fmt.Sprintf("n%d", i+o.First)
		if o.IDs != nil {
			id = o.IDs(i)
		}
		zone := fmt.Sprintf("z%d", i+o.First)
		if o.Zone != nil {
			zone = o.Zone(i)
		}
		n := c.start(id, i)
		m.Nodes = append(m.Nodes, placement.Node{ID: id, Addr: n.Addr, Zone: zone})
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.WithDefaults {
		m = m.WithDefaults()
	}
	c.Map = m
	return c
}

// start starts node id, the i-th, and adds it to c.Nodes.
func (c *Cluster) start(id string, i int) *Node {
	n := &Node{ID: id, t: c.t}
	if c.o.Real {
		n.startReal(c.t, c.o)
	} else {
		n.Fake = nodetest.New(id)
		n.Addr = fmt.Sprintf("127.0.0.1:%d", 7000+i)
	}
	c.Nodes = append(c.Nodes, n)
	c.byID[id] = n
	return n
}

// Add starts one more node, of the cluster's kind, that the map does not
// name, and returns its map entry.
func (c *Cluster) Add(id, zone string) placement.Node {
	c.t.Helper()
	n := c.start(id, len(c.Nodes))
	return placement.Node{ID: id, Addr: n.Addr, Zone: zone}
}

func (n *Node) startReal(t testing.TB, o Options) {
	t.Helper()
	n.cfg = o.Node
	n.cfg.ID, n.cfg.Dir, n.cfg.Secret = n.ID, t.TempDir(), o.Secret
	if n.cfg.Logger == nil {
		n.cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n.Dir = n.cfg.Dir
	n.base = n.cfg
	n.open()
	n.Server = httptest.NewServer(http.HandlerFunc(n.serve))
	n.Addr = n.Server.Listener.Addr().String()
	n.Client = client.New(n.Server.URL, &client.Options{Secret: o.Secret})
	t.Cleanup(func() {
		n.Server.Close()
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.node != nil {
			n.node.Close()
		}
	})
}

// open opens the real node on its directory and serves it.
func (n *Node) open() {
	n.t.Helper()
	nd, err := storagenode.Open(n.cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	n.mu.Lock()
	n.node, n.h = nd, nd.Handler()
	n.mu.Unlock()
}

func (n *Node) serve(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	h := n.h
	n.mu.Unlock()
	h.ServeHTTP(w, r)
}

// Node returns the node named id.
func (c *Cluster) Node(id string) *Node {
	n, ok := c.byID[id]
	if !ok {
		c.t.Fatalf("testcluster: no node %s", id)
	}
	return n
}

// API returns what callers use to talk to node id: the fake itself, or a
// client of the real node.
func (c *Cluster) API(id string) nodetest.Client { return c.Node(id).API() }

// API is the node as its callers see it.
func (n *Node) API() nodetest.Client {
	if n.Fake != nil {
		return n.Fake
	}
	return n.Client
}

// Holder returns the node the map places shard i of bucket/key on.
func (c *Cluster) Holder(bucket, key string, i int) *Node {
	return c.byID[c.Map.PlaceKey(bucket, key)[i].ID]
}

// CreateBucket puts a new bucket record on every node.
func (c *Cluster) CreateBucket(name, version string) {
	c.t.Helper()
	b := client.BucketRecord{Name: name, Version: version, Created: time.Now().UTC()}
	for _, n := range c.Nodes {
		if err := n.API().PutBucket(context.Background(), b); err != nil {
			c.t.Fatal(err)
		}
	}
}

// PutMap gives m to every node.
func (c *Cluster) PutMap(m *placement.Map) {
	c.t.Helper()
	for _, n := range c.Nodes {
		if err := n.API().PutMap(context.Background(), m); err != nil {
			c.t.Fatalf("giving %s map epoch %d: %v", n.ID, m.Epoch, err)
		}
	}
}

// setHandler makes a real node's server serve h; nil: the node again.
func (n *Node) setHandler(h http.Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h == nil {
		h = n.node.Handler()
	}
	n.h = h
}

// Storage returns the running real node, for what only the node itself
// offers (Sweep, ...); nil for a fake.
func (n *Node) Storage() *storagenode.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.node
}

// Wrap makes a real node's server serve wrap(the node's handler) until
// the returned func is called: for faults the other hooks do not cover.
func (n *Node) Wrap(wrap func(http.Handler) http.Handler) (restore func()) {
	if n.Fake != nil {
		n.t.Fatal("testcluster: Wrap of a fake node")
	}
	n.mu.Lock()
	h := n.node.Handler()
	n.mu.Unlock()
	n.setHandler(wrap(h))
	return func() { n.setHandler(nil) }
}

// Down makes every call to the node fail with 503 (a fake: kerr.Unavailable)
// until the returned func is called.
func (n *Node) Down() (up func()) {
	if n.Fake != nil {
		n.Fake.SetDown("*", true)
		return func() { n.Fake.SetDown("*", false) }
	}
	n.setHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for the test", http.StatusServiceUnavailable)
	}))
	return func() { n.setHandler(nil) }
}

// Hang makes the node hold every call until its caller gives up,
// counting them in calls (if not nil), until the returned func is called.
func (n *Node) Hang(calls func()) (up func()) {
	if n.Fake != nil {
		n.Fake.SetStall("*", true)
		return func() { n.Fake.SetStall("*", false) }
	}
	n.setHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls != nil {
			calls()
		}
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-t.C:
		}
	}))
	return func() { n.setHandler(nil) }
}

// Slow delays every call to the node by d until the returned func is
// called.
func (n *Node) Slow(d time.Duration) (fast func()) {
	if n.Fake != nil {
		n.Fake.Edit(func(st *nodetest.State) { st.Slow["*"] = d })
		return func() { n.Fake.Edit(func(st *nodetest.State) { delete(st.Slow, "*") }) }
	}
	return n.Wrap(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
			}
			h.ServeHTTP(w, r)
		})
	})
}

// Local returns an in-process client of the running real node (nil for a
// fake), calling it as kintsugi dev does, with no HTTP between; opts as
// for storagenode.NewLocal.
func (n *Node) Local(opts *storagenode.LocalOptions) *storagenode.Local {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.node == nil {
		return nil
	}
	return storagenode.NewLocal(n.node, opts)
}

// Stop takes the node down for good: a real node's port refuses
// connections from now on, as a crashed node's would.
func (n *Node) Stop() {
	if n.Fake != nil {
		n.Fake.SetDown("*", true)
		return
	}
	n.Server.CloseClientConnections()
	n.Server.Close()
}

// Reopen closes a real node and opens it again on the same directory
// and address, with edit (if not nil) applied to the configuration it
// was started with (not to that of an earlier Reopen).
func (n *Node) Reopen(edit func(*storagenode.Config)) {
	n.t.Helper()
	if n.Fake != nil {
		n.t.Fatal("testcluster: Reopen of a fake node")
	}
	n.mu.Lock()
	n.node.Close()
	n.mu.Unlock()
	n.cfg = n.base
	if edit != nil {
		edit(&n.cfg)
	}
	n.open()
}

// Wipe replaces the node by an empty one at the same address, as after a
// disk replacement.
func (n *Node) Wipe() {
	n.t.Helper()
	if n.Fake != nil {
		n.Fake.Wipe()
		return
	}
	n.mu.Lock()
	n.node.Close()
	n.mu.Unlock()
	if err := os.RemoveAll(n.Dir); err != nil {
		n.t.Fatal(err)
	}
	n.open()
}

// ShardPath is where a real node keeps shard i of a version as a file (the
// node's documented layout: shards/ab/cd/<hex blake3(bucket NUL key NUL
// version)>.<i>).
func (n *Node) ShardPath(bucket, key, version string, shard int) string {
	h := blake3.New()
	h.WriteString(bucket + "\x00" + key + "\x00" + version)
	base := hex.EncodeToString(h.Sum(nil)) + "." + strconv.Itoa(shard)
	return filepath.Join(n.Dir, "shards", base[:2], base[2:4], base)
}

// CorruptShard flips one byte (at off, modulo its length) of the node's
// committed shard of a version where it lies.
func (n *Node) CorruptShard(bucket, key, version string, shard int, off int64) error {
	if n.Fake != nil {
		return n.Fake.CorruptShard(bucket, key, version, shard, off)
	}
	path := n.ShardPath(bucket, key, version, shard)
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return fmt.Errorf("testcluster: shard file %s is empty", path)
	}
	b[off%int64(len(b))] ^= 0x5a
	return os.WriteFile(path, b, 0o644)
}
