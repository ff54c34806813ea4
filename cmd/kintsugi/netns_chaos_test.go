package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
	"github.com/kintsugi-store/kintsugi/placement"
)

// TestNetnsChaos is TestChaos with every process on a host of its own:
// each storage node, each gateway, the scrubber, the admin and the test's
// clients in a network namespace (internal/proctest.Net), the map held
// by Raft on the nodes (seeded with `admin init`, changed through
// --endpoint), and partitions among the faults: a node's link taken down
// (cut), a minority of the Raft voters cut off, the leader among them
// every other time (cutvoters), and a gateway cut off from half the nodes
// by a packet filter in its namespace (gwcut). During a cutvoters
// partition a map change asked on the minority's side must fail, naming
// the lost leader or quorum, and change nothing, while one asked on the
// majority's side commits; after healing every node holds the majority's
// map. The checks are TestChaos's: linearizability, no wrong bytes, no
// failed read with at most p of the object's nodes out of reach, no write
// refused with at most p of them out, and every acknowledged write made
// while some were out readable with p further down. About five minutes;
// part of make chaos (KINTSUGI_CHAOS set), with the same
// KINTSUGI_CHAOS_SEED, _PHASES, _CLOCKS, _LOGS and _REFUSALS.
func TestNetnsChaos(t *testing.T) {
	if os.Getenv("KINTSUGI_CHAOS") == "" {
		t.Skip("part of the chaos run: KINTSUGI_CHAOS=1 (make chaos)")
	}
	seed := chaosSeed(t)
	phases := []chaosPhase{
		{name: "steady", dur: 10 * time.Second},
		{name: "kill+stop", dur: 25 * time.Second, faults: []string{"kill", "stop", "gwkill"}, maxDown: 1},
		{name: "cut", dur: 25 * time.Second, faults: []string{"cut"}, maxDown: 1},
		{name: "cutvoters", dur: 35 * time.Second, faults: []string{"cutvoters"}, maxDown: 1},
		{name: "gwcut", dur: 25 * time.Second, faults: []string{"gwcut"}},
		{name: "mixed", dur: 45 * time.Second, faults: []string{"reconfigure", "cut", "cutvoters", "kill", "stop", "gwcut", "gwstop"}, maxDown: 2},
	}
	runChaos(t, chaosConfig{seed: seed, phases: chaosPhases(t, phases), clocks: chaosClocks(t), checkTime: 2 * time.Minute, netns: true})
}

// chaosNS is the hosts of a chaos run in network namespaces.
type chaosNS struct {
	net    *proctest.Net
	client *proctest.Host // the test's clients, and its reads of metrics
	admin  *proctest.Host
	hc     *http.Client // dials from client

	mu    sync.Mutex
	hosts map[string]*proctest.Host // node id -> its host
}

// Fixed ports: every process has an address of its own.
const (
	nsS3Port      = 9000
	nsMetricsPort = 9090
	nsScrubPort   = 9300
)

// startChaosNS starts 8 storage nodes in 4 zones (4+2) on hosts of their
// own, each a Raft member, seeds the group with `admin init` and waits
// for its three voters. The cluster file is only the seed: gateways and
// the scrubber follow the Raft-held map from the nodes.
func startChaosNS(t *testing.T) (*proctest.Cluster, *chaosNS) {
	ns := &chaosNS{net: proctest.NewNet(t), hosts: map[string]*proctest.Host{}}
	ns.client = ns.net.Host("client")
	ns.admin = ns.net.Host("admin")
	ns.hc = ns.client.HTTPClient()
	c := &proctest.Cluster{
		Dir:       t.TempDir(),
		Bin:       testBin,
		Secret:    "netns-chaos-secret-" + fmt.Sprint(time.Now().UnixNano()),
		AccessKey: "testaccesskey",
		SecretKey: "testsecretkey-0123456789",
	}
	t.Cleanup(c.Close) // before the Net's: processes go first
	m := &placement.Map{Epoch: 1, DataShards: 4, ParityShards: 2}
	for i := 1; i <= 8; i++ {
		id := fmt.Sprintf("n%d", i)
		h := ns.net.Host(id)
		ns.hosts[id] = h
		m.Nodes = append(m.Nodes, placement.Node{ID: id, Addr: h.Addr(nsNodePort), Zone: fmt.Sprintf("z%d", (i-1)%4+1)})
	}
	c.SetMap(t, m)
	for _, n := range c.Map.Nodes {
		p, err := ns.startNodeProc(context.Background(), c, n.ID, ns.hosts[n.ID])
		if err != nil {
			t.Fatal(err)
		}
		c.Nodes = append(c.Nodes, p)
	}
	if code, out, errs := ns.run(context.Background(), ns.admin, c, "--cluster", c.MapFile, "init"); code != 0 {
		t.Fatalf("admin init: exit %d\n%s%s", code, out, errs)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := ns.status(context.Background(), c, ns.hosts["n1"].Addr(nsNodePort))
		if err == nil && st.Quorum && len(st.Voters) == 3 {
			t.Logf("Raft group up: leader %s, voters %v", st.Leader, st.Voters)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no quorum of 3 voters: %+v %v", st, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return c, ns
}

func (ns *chaosNS) host(id string) *proctest.Host {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return ns.hosts[id]
}

func (ns *chaosNS) startNodeProc(ctx context.Context, c *proctest.Cluster, id string, h *proctest.Host) (*proctest.Proc, error) {
	return h.Start(ctx, "node "+id, c.Bin, filepath.Join(c.Dir, id+".log"), procEnv(c),
		"storagenode", "--id", id, "--listen", h.Addr(nsNodePort), "--data", filepath.Join(c.Dir, id),
		"--raft-listen", h.Addr(nsRaftPort))
}

// startNode starts a new node on a new host; the leader makes it a Raft
// non-voter once it is in the map.
func (ns *chaosNS) startNode(ctx context.Context, c *proctest.Cluster, id string) (*proctest.Proc, string, error) {
	h := ns.net.Host(id)
	ns.mu.Lock()
	ns.hosts[id] = h
	ns.mu.Unlock()
	p, err := ns.startNodeProc(ctx, c, id, h)
	return p, h.Addr(nsNodePort), err
}

// startGateways starts one gateway per clock offset, each on a host of
// its own.
func (ns *chaosNS) startGateways(ch *chaos) {
	t, c := ch.t, ch.c
	for i, off := range ch.clocks {
		name := fmt.Sprintf("gateway%d", i)
		h := ns.net.Host(name)
		args := append([]string{"gateway", "--listen", h.Addr(nsS3Port), "--cluster", c.MapFile, "--map-poll", "500ms",
			"--metrics-listen", h.Addr(nsMetricsPort)}, testHealthFlags...)
		env := append(procEnv(c), "KINTSUGI_CLOCK_OFFSET="+off.String())
		p, err := h.Start(context.Background(), name, c.Bin, filepath.Join(c.Dir, name+".log"), env, args...)
		if err != nil {
			t.Fatal(err)
		}
		ns.hosts[name] = h
		ch.gws = append(ch.gws, &healthGateway{Proc: p, metrics: h.Addr(nsMetricsPort), hc: ns.hc})
		c.Gateways = append(c.Gateways, p)
		ch.cls = append(ch.cls, s3.New(s3.Options{
			BaseEndpoint:     aws.String("http://" + h.Addr(nsS3Port)),
			Region:           "us-east-1",
			UsePathStyle:     true,
			Credentials:      credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, ""),
			RetryMaxAttempts: 1,
			HTTPClient:       ns.hc,
		}))
	}
}

// startRebalancer runs the scrubber daemon on a host of its own.
func (ns *chaosNS) startRebalancer(ch *chaos) {
	t, c := ch.t, ch.c
	h := ns.net.Host("scrubber")
	p, err := h.Start(context.Background(), "scrubber", c.Bin, filepath.Join(c.Dir, "scrubber.log"), procEnv(c),
		"scrubber", "--cluster", c.MapFile, "--state", filepath.Join(c.Dir, "scrub-state"), "--listen", h.Addr(nsScrubPort),
		"--interval", "1h", "--map-poll", "200ms")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ch.scrub = h.Addr(nsScrubPort)
}

// run runs `kintsugi admin args...` on host h and returns its exit code
// and output.
func (ns *chaosNS) run(ctx context.Context, h *proctest.Host, c *proctest.Cluster, args ...string) (int, string, string) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := h.Command(ctx, c.Bin, append([]string{"admin"}, args...)...)
	cmd.Env = append(os.Environ(), procEnv(c)...)
	code, out, errs, err := runOutput(cmd)
	if err != nil {
		return -1, out, err.Error()
	}
	return code, out, errs
}

// mapShow returns the map of the node at endpoint, asked from the admin
// host.
func (ns *chaosNS) mapShow(ctx context.Context, c *proctest.Cluster, endpoint string) (*placement.Map, error) {
	code, out, errs := ns.run(ctx, ns.admin, c, "--endpoint", endpoint, "--timeout", "2s", "--json", "map", "show")
	if code != 0 {
		return nil, fmt.Errorf("map show on %s: exit %d: %s", endpoint, code, strings.TrimSpace(errs))
	}
	var m placement.Map
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		return nil, fmt.Errorf("map show on %s: %v", endpoint, err)
	}
	return &m, nil
}

// status returns the Raft group's status as the node at endpoint sees it.
func (ns *chaosNS) status(ctx context.Context, c *proctest.Cluster, endpoint string) (raftStatusJSON, error) {
	var st raftStatusJSON
	code, out, errs := ns.run(ctx, ns.admin, c, "--endpoint", endpoint, "--timeout", "2s", "--json", "status")
	if code != 0 {
		return st, fmt.Errorf("status on %s: exit %d: %s", endpoint, code, strings.TrimSpace(errs))
	}
	return st, json.Unmarshal([]byte(out), &st)
}

// reachable returns the addresses of the nodes of the current map that
// no fault holds now, in a fixed order.
func (ch *chaos) reachable() []string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var out []string
	for _, n := range ch.maps[len(ch.maps)-1].Nodes {
		if n.State != placement.StateRemoved && !ch.down[n.ID] && ch.procs[n.ID].Running() {
			out = append(out, n.Addr)
		}
	}
	return out
}

// change runs a map change through a node no fault holds and returns the
// map it made.
func (ns *chaosNS) change(ctx context.Context, ch *chaos, args ...string) (*placement.Map, error) {
	eps := ch.reachable()
	if len(eps) == 0 {
		return nil, fmt.Errorf("no node to ask")
	}
	ep := eps[0]
	code, out, errs := ns.run(ctx, ns.admin, ch.c, append([]string{"--endpoint", ep}, args...)...)
	if code != 0 {
		return nil, fmt.Errorf("via %s: exit %d\n%s%s", ep, code, out, errs)
	}
	// A fault may take ep away meanwhile: any node that has the change
	// will do.
	var err error
	for _, ep := range append([]string{ep}, ch.reachable()...) {
		var m *placement.Map
		if m, err = ns.mapShow(ctx, ch.c, ep); err == nil {
			return m, nil
		}
	}
	return nil, err
}

// gatewayCut drops gateway gw's packets to and from half the nodes of
// the current map for hold; r picks them.
func (ch *chaos) gatewayCut(gw int, hold time.Duration, r int64) {
	t := ch.t
	rng := rand.New(rand.NewPCG(uint64(r), 7))
	ch.mu.Lock()
	var ids []string
	for _, n := range ch.maps[len(ch.maps)-1].Nodes {
		if n.State != placement.StateRemoved {
			ids = append(ids, n.ID)
		}
	}
	ch.mu.Unlock()
	slices.Sort(ids)
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	ids = ids[:len(ids)/2]
	slices.Sort(ids)
	var ips []string
	for _, id := range ids {
		ips = append(ips, ch.ns.host(id).IP)
	}
	h := ch.ns.host(fmt.Sprintf("gateway%d", gw))
	ch.mu.Lock()
	for _, id := range ids {
		ch.gwCuts[gw][id] = append(ch.gwCuts[gw][id], interval{from: time.Now()})
	}
	ch.mu.Unlock()
	if err := h.Block(ips...); err != nil {
		t.Errorf("gwcut: %v", err)
	}
	time.Sleep(hold)
	if err := h.Unblock(); err != nil {
		t.Errorf("gwcut: %v", err)
	}
	ch.mu.Lock()
	for _, id := range ids {
		f := ch.gwCuts[gw][id]
		f[len(f)-1].to = time.Now()
	}
	ch.mu.Unlock()
}

// cutVoters cuts a minority of the Raft voters off (the leader among
// them every other time) for a few seconds. Meanwhile an admin on a cut
// host asks its own node to drain another node, which must fail with an
// error naming the lost leader or quorum, and an admin on the majority's
// side replaces the map by itself (map push), which must commit. Once
// healed, every node must hold the majority's map. It holds the admin
// (beginAdmin) and counts its hosts among the nodes down.
func (ch *chaos) cutVoters(ctx context.Context, r int64, maxDown int) {
	t, c, ns := ch.t, ch.c, ch.ns
	defer ch.endAdmin()
	eps := ch.reachable()
	if len(eps) == 0 {
		return
	}
	st, err := ns.status(ctx, c, eps[0])
	if err != nil || !st.Quorum || st.Leader == "" {
		ch.notePartition(fmt.Sprintf("skipped: no quorum to cut from (%+v, %v)", st, err))
		return
	}
	rng := rand.New(rand.NewPCG(uint64(r), 11))
	voters := slices.Clone(st.Voters)
	slices.Sort(voters)
	rng.Shuffle(len(voters), func(i, j int) { voters[i], voters[j] = voters[j], voters[i] })
	ch.mu.Lock()
	withLeader := ch.kinds["cutvoters"]%2 == 0 // the first, third, ... cut the leader
	ch.mu.Unlock()
	if withLeader { // the leader first
		i := slices.Index(voters, st.Leader)
		voters[0], voters[i] = voters[i], voters[0]
	} else if voters[0] == st.Leader {
		voters[0], voters[1] = voters[1], voters[0]
	}
	cut, rest := voters[:(len(voters)-1)/2], voters[(len(voters)-1)/2:]
	// Reserve the cut voters as faulted nodes.
	ch.mu.Lock()
	n := 0
	for _, d := range ch.down {
		if d {
			n++
		}
	}
	busy := n+len(cut) > maxDown
	for _, id := range cut {
		busy = busy || ch.down[id]
	}
	// The majority's side must be whole: with one of its voters down as
	// well, the cut would leave no quorum anywhere, and its admin would
	// find the host it asks stopped.
	for _, id := range rest {
		busy = busy || ch.down[id]
	}
	if busy {
		ch.mu.Unlock()
		return
	}
	for _, id := range cut {
		ch.down[id] = true
	}
	// Nor may another fault take a voter of the majority's side while
	// the cut lasts: the majority's change needs every one of them.
	for _, id := range rest {
		ch.spared[id] = true
	}
	defer func() {
		ch.mu.Lock()
		for _, id := range rest {
			ch.spared[id] = false
		}
		ch.mu.Unlock()
	}()
	ch.kinds["cutvoters"]++
	var victim string // what the minority tries to drain
	for _, nd := range ch.maps[len(ch.maps)-1].Nodes {
		if nd.State == placement.StateActive && !slices.Contains(cut, nd.ID) && victim == "" {
			victim = nd.ID
		}
	}
	ch.mu.Unlock()
	// The majority's admin asks a voter of its side that serves the map:
	// one just restarted with its disk wiped answers "not initialised"
	// until it has caught up from the log.
	majority := ns.host(rest[0]).Addr(nsNodePort)
	var before *placement.Map
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		for _, id := range rest {
			ep := ns.host(id).Addr(nsNodePort)
			if before, err = ns.mapShow(ctx, c, ep); err == nil {
				majority = ep
				break
			}
		}
		if before != nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		t.Errorf("cutvoters: no voter of the majority's side %v served the map: %v", rest, err)
	}
	leaderCut := slices.Contains(cut, st.Leader)
	hold := time.Duration(4000+rng.IntN(4000)) * time.Millisecond
	start := time.Now()
	ch.mu.Lock()
	for _, id := range cut {
		ch.faults[id] = append(ch.faults[id], interval{from: start})
	}
	ch.mu.Unlock()
	for _, id := range cut {
		if err := ns.host(id).Cut(); err != nil {
			t.Errorf("cutvoters: %v", err)
		}
	}
	var wg sync.WaitGroup
	var minCode int
	var minErr string
	var minTook time.Duration
	wg.Go(func() {
		h := ns.host(cut[0])
		code, _, errs := ns.run(ctx, h, c, "--endpoint", h.Addr(nsNodePort), "--timeout", "3s", "nodes", "drain", victim)
		minCode, minErr, minTook = code, strings.TrimSpace(errs), time.Since(start)
	})
	var after *placement.Map
	var majTook time.Duration
	if before != nil {
		file := filepath.Join(c.Dir, fmt.Sprintf("push-%d.json", before.Epoch))
		b, _ := json.Marshal(before)
		done := ch.changing()
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Error(err)
		} else if code, out, errs := ns.run(ctx, ns.admin, c, "--endpoint", majority, "map", "push", "--file", file); code != 0 {
			t.Errorf("cutvoters: a map change on the majority's side (%v cut): exit %d\n%s%s", cut, code, out, errs)
		} else if after, err = ns.mapShow(ctx, c, majority); err != nil {
			t.Errorf("cutvoters: %v", err)
		} else {
			majTook = time.Since(start)
			done()
			ch.mu.Lock()
			ch.maps = append(ch.maps, after)
			ch.mu.Unlock()
		}
	}
	wg.Wait()
	low := strings.ToLower(minErr)
	switch {
	case minCode == 0:
		t.Errorf("cutvoters: a drain of %s asked on cut-off %s succeeded", victim, cut[0])
	case !strings.Contains(low, "quorum") && !strings.Contains(low, "leader") && !strings.Contains(low, "raft"):
		t.Errorf("cutvoters: a drain of %s asked on cut-off %s: exit %d with an unclear error: %s", victim, cut[0], minCode, minErr)
	}
	time.Sleep(time.Until(start.Add(hold)))
	for _, id := range cut {
		if err := ns.host(id).Heal(); err != nil {
			t.Errorf("cutvoters: %v", err)
		}
	}
	healed := time.Now()
	ch.mu.Lock()
	for _, id := range cut {
		f := ch.faults[id]
		f[len(f)-1].to = healed
		ch.down[id] = false
	}
	ch.mu.Unlock()
	what := fmt.Sprintf("cut %v of voters %v (leader %s cut: %v) for %v; the minority's drain of %s failed after %v, exit %d: %q",
		cut, st.Voters, st.Leader, leaderCut, hold.Round(100*time.Millisecond), victim, minTook.Round(100*time.Millisecond), minCode, minErr)
	if after == nil {
		ch.notePartition(what)
		return
	}
	if after.Epoch != before.Epoch+1 {
		t.Errorf("cutvoters: the majority's push moved the epoch %d -> %d", before.Epoch, after.Epoch)
	}
	took, err := ch.converge(ctx, after)
	if err != nil {
		t.Errorf("cutvoters: after healing %v: %v", cut, err)
	}
	ch.waitEpoch(ctx, after.Epoch, 30*time.Second)
	ch.notePartition(fmt.Sprintf("%s; the majority's change committed epoch %d after %v; every node held it %v after healing",
		what, after.Epoch, majTook.Round(100*time.Millisecond), took.Round(100*time.Millisecond)))
}

// converge waits until every node of m that no fault holds holds m
// itself, and returns how long that took.
func (ch *chaos) converge(ctx context.Context, m *placement.Map) (time.Duration, error) {
	want, _ := m.Marshal()
	start := time.Now()
	var last string
	for time.Since(start) < 30*time.Second {
		same := true
		for _, ep := range ch.reachable() {
			got, err := ch.ns.mapShow(ctx, ch.c, ep)
			if err != nil {
				same, last = false, err.Error()
				break
			}
			if b, _ := got.Marshal(); !bytes.Equal(b, want) {
				same, last = false, fmt.Sprintf("%s holds epoch %d", ep, got.Epoch)
				break
			}
		}
		if same {
			return time.Since(start), nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	return 0, fmt.Errorf("the nodes do not all hold the map of epoch %d within 30s (last: %s)", m.Epoch, last)
}

func (ch *chaos) notePartition(s string) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.partitions = append(ch.partitions, s)
}
