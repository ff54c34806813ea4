package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kintsugi-store/kintsugi/gateway"
	"github.com/kintsugi-store/kintsugi/internal/proctest"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/scrubber"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// TestChaos runs a workload of PUT, GET, overwrite and DELETE from several
// clients on a small set of shared keys (a few hot ones), through three
// gateways whose clocks are 10 s apart, over 8 storage node processes in 4
// zones, while faults are injected on a seeded schedule: kill -9 and
// SIGSTOP of nodes and of gateways, and a node added and another drained
// while a scrubber daemon rebalances. A client whose gateway fails or
// stalls gives up on it after a timeout and moves to another.
//
// Every operation is recorded with its start, end and outcome, and the
// whole history is checked with porcupine against one register per key:
// the store must be linearizable, a failed write counting as one that may
// take effect at any later time. It also fails at once if a read returns
// bytes no PUT of the key sent, and if a read fails while its gateway was
// up and at most p of the object's nodes were unavailable. It counts the
// writes refused while at most p of their object's nodes were out (apart:
// those that spanned a map change, and those a concurrent write of the key
// won), and once the faults end reads back every object whose current
// value an acknowledged write wrote while some of its nodes were out, with
// p further nodes down (checkFurtherDown); either failing fails the long
// runs (see strictRefusals), and is logged in the short one. It prints the
// seed, p50/p99 latency per phase, the operations checked and the
// checker's time; on a violation, the shortest stretch of each bad key's
// history that shows it, and porcupine's HTML view of those keys next to
// the process logs.
//
// The short run (part of make test) takes about two minutes.
// KINTSUGI_CHAOS=long (make chaos) runs longer phases and adds wiped
// nodes, a full disk where a tmpfs can be mounted, and more nodes added,
// drained and removed. KINTSUGI_CHAOS_SEED replays a schedule;
// KINTSUGI_CHAOS_LOGS=DIR keeps the process logs and the history of a
// failed run there (else they are kept in a new temporary directory,
// whose path is logged); KINTSUGI_CHAOS_PHASES replaces the phases (see
// parsePhases); KINTSUGI_CHAOS_CLOCKS replaces the gateways' clock
// offsets, one per gateway ("-10s,0,10s").
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process chaos run; run without -short")
	}
	long := os.Getenv("KINTSUGI_CHAOS") == "long"
	seed := chaosSeed(t)
	phases := []chaosPhase{
		{name: "steady", dur: 10 * time.Second},
		{name: "kill", dur: 25 * time.Second, faults: []string{"kill", "gwkill"}, maxDown: 1},
		{name: "stop", dur: 25 * time.Second, faults: []string{"stop", "gwstop"}, maxDown: 1},
		{name: "mixed", dur: 35 * time.Second, faults: []string{"reconfigure", "kill", "stop", "gwkill", "gwstop"}, maxDown: 2},
	}
	checkTime := 2 * time.Minute
	if long {
		phases = []chaosPhase{
			{name: "steady", dur: time.Minute},
			{name: "kill", dur: 4 * time.Minute, faults: []string{"kill", "gwkill"}, maxDown: 1},
			{name: "stop", dur: 4 * time.Minute, faults: []string{"stop", "gwstop"}, maxDown: 1},
			{name: "wipe", dur: 3 * time.Minute, faults: []string{"wipe"}, maxDown: 1},
			{name: "disk", dur: 3 * time.Minute, faults: []string{"disk"}, maxDown: 1},
			{name: "reconfigure", dur: 3 * time.Minute, faults: []string{"reconfigure"}, maxDown: 1},
			{name: "mixed", dur: 8 * time.Minute, faults: []string{"reconfigure", "kill", "stop", "wipe", "gwkill", "gwstop"}, maxDown: 2},
		}
		checkTime = 10 * time.Minute
		t.Log("network faults are not injected here: these processes share one loopback (partitions are TestNetnsChaos's)")
	}
	runChaos(t, chaosConfig{seed: seed, phases: chaosPhases(t, phases), clocks: chaosClocks(t), checkTime: checkTime})
}

// chaosSeed returns KINTSUGI_CHAOS_SEED, or a new seed, and logs it.
func chaosSeed(t *testing.T) int64 {
	seed := time.Now().UnixNano()
	if s := os.Getenv("KINTSUGI_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("KINTSUGI_CHAOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("chaos seed %d (replay with KINTSUGI_CHAOS_SEED=%d)", seed, seed)
	return seed
}

// chaosPhases returns KINTSUGI_CHAOS_PHASES parsed, or def.
func chaosPhases(t *testing.T, def []chaosPhase) []chaosPhase {
	s := os.Getenv("KINTSUGI_CHAOS_PHASES")
	if s == "" {
		return def
	}
	phases, err := parsePhases(s)
	if err != nil {
		t.Fatalf("KINTSUGI_CHAOS_PHASES: %v", err)
	}
	return phases
}

// chaosClocks returns the gateways' clock offsets: KINTSUGI_CHAOS_CLOCKS,
// or 10 s apart.
func chaosClocks(t *testing.T) []time.Duration {
	clocks := []time.Duration{-10 * time.Second, 0, 10 * time.Second}
	if s := os.Getenv("KINTSUGI_CHAOS_CLOCKS"); s != "" {
		clocks = nil
		for _, f := range strings.Split(s, ",") {
			d, err := time.ParseDuration(f)
			if err != nil {
				t.Fatalf("KINTSUGI_CHAOS_CLOCKS: %q: %v", f, err)
			}
			clocks = append(clocks, d)
		}
	}
	return clocks
}

// chaosConfig is what a chaos run is given.
type chaosConfig struct {
	seed      int64
	phases    []chaosPhase
	clocks    []time.Duration
	checkTime time.Duration // the linearizability checker's budget
	// netns puts every process on a host of its own (a network
	// namespace), the map in Raft, and allows the partition faults.
	netns bool
}

// nodeFaults and gatewayFaults are the fault kinds, by what they hit;
// partitionFaults need hosts of their own (TestNetnsChaos): cut takes a
// node's link down, cutvoters a minority of the Raft voters' (the leader
// among them every other time), gwcut drops a gateway's packets to and
// from half the nodes.
var (
	nodeFaults      = []string{"kill", "stop", "wipe", "disk", "reconfigure", "cut", "cutvoters"}
	gatewayFaults   = []string{"gwkill", "gwstop", "gwcut"}
	partitionFaults = []string{"cut", "cutvoters", "gwcut"}
)

// parsePhases reads a custom schedule, "name:duration,...", where name is
// steady or fault kinds joined by '+' (kill+stop+gwstop); two node fault
// kinds allow two nodes down at once. A gateway fault takes one gateway
// down at a time; reconfigure happens once, at the phase's start.
func parsePhases(s string) ([]chaosPhase, error) {
	var out []chaosPhase
	for _, f := range strings.Split(s, ",") {
		name, d, ok := strings.Cut(f, ":")
		dur, err := time.ParseDuration(d)
		if !ok || err != nil {
			return nil, fmt.Errorf("%q: want name:duration", f)
		}
		ph := chaosPhase{name: name, dur: dur}
		if name != "steady" {
			ph.faults = strings.Split(name, "+")
			for _, k := range ph.faults {
				switch {
				case slices.Contains(nodeFaults, k):
					ph.maxDown = min(ph.maxDown+1, 2)
				case !slices.Contains(gatewayFaults, k):
					return nil, fmt.Errorf("%q: unknown fault %q", f, k)
				}
			}
		}
		out = append(out, ph)
	}
	return out, nil
}

func TestParsePhases(t *testing.T) {
	got, err := parsePhases("steady:5s,kill+gwstop:30s,gwkill+gwstop:10s,kill+stop+wipe+reconfigure:1m")
	if err != nil {
		t.Fatal(err)
	}
	want := []chaosPhase{
		{name: "steady", dur: 5 * time.Second},
		{name: "kill+gwstop", dur: 30 * time.Second, faults: []string{"kill", "gwstop"}, maxDown: 1},
		{name: "gwkill+gwstop", dur: 10 * time.Second, faults: []string{"gwkill", "gwstop"}},
		{name: "kill+stop+wipe+reconfigure", dur: time.Minute, faults: []string{"kill", "stop", "wipe", "reconfigure"}, maxDown: 2},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parsePhases:\n got %v\nwant %v", got, want)
	}
	for _, bad := range []string{"kill", "kill:soon", "steady:1s,partition:1s"} {
		if _, err := parsePhases(bad); err == nil {
			t.Errorf("parsePhases(%q) accepted", bad)
		}
	}
}

// chaosPhase is a stretch of the run with one set of fault kinds.
type chaosPhase struct {
	name    string
	dur     time.Duration
	faults  []string // nodeFaults and gatewayFaults
	maxDown int      // nodes faulted at once
}

// The workload's shape: clients share keys, a few hot ones take half the
// operations, so that several clients often work on one key at once while
// porcupine still decides the history in seconds.
const (
	chaosClients  = 6
	chaosHotKeys  = 4
	chaosColdKeys = 20
	// opTimeout is how long a client waits for an answer before it
	// counts the operation as failed and moves to another gateway;
	// shorter than the longest gateway SIGSTOP.
	opTimeout = 10 * time.Second
	// avoidFor is how long a client keeps off a gateway that failed it.
	avoidFor = 10 * time.Second
)

// chaos is the state of one run.
type chaos struct {
	t      *testing.T
	c      *proctest.Cluster
	gws    []*healthGateway
	clocks []time.Duration // of gws
	cls    []*s3.Client
	start  time.Time
	hist   *proctest.History
	keys   []string
	scrub  string   // the rebalancing scrubber's /status address
	ns     *chaosNS // hosts of the processes; nil: all on loopback

	mu            sync.Mutex
	phase         string
	order         []string                // phases run, in order
	kinds         map[string]int          // faults injected, by kind
	maps          []*placement.Map        // every map used so far, oldest first
	faults        map[string][]interval   // node id -> periods it was unavailable
	gwFaults      [][]interval            // per gateway
	gwCuts        []map[string][]interval // per gateway: node id -> periods cut off from it
	wipes         map[string][]time.Time
	down          map[string]bool // faulted now
	spared        map[string]bool // no fault may pick them now (pickNode)
	gwDown        []bool
	procs         map[string]*proctest.Proc
	reconfiguring bool
	reconfigs     []string // what each reconfiguration did, for the report

	stats            map[string]map[string][]time.Duration // phase -> op -> latencies
	fails            map[string]map[string]int             // phase -> op -> failures
	bad              []string                              // violations, for the report
	badKeys          []string                              // their keys, for the logs about them
	wrong, unexcused int
	excusedByGateway int
	excusedByNodes   int
	readFailures     int
	refused          []string // writes that failed with at most p of their nodes out
	refusedByChange  []string // the same, but a map change ran meanwhile
	refusedByRace    []string // the same, but a concurrent write of the key won
	furtherDown      furtherDownResult
	partitions       []string   // what each cutvoters fault saw, for the report
	changes          []interval // when admin map changes ran
}

type interval struct{ from, to time.Time } // to zero: still down

func runChaos(t *testing.T, cfg chaosConfig) {
	ctx := context.Background()
	seed, phases, clocks := cfg.seed, cfg.phases, cfg.clocks
	for _, ph := range phases {
		for _, k := range ph.faults {
			if slices.Contains(partitionFaults, k) && !cfg.netns {
				t.Fatalf("phase %s: fault %s needs hosts of their own (TestNetnsChaos)", ph.name, k)
			}
		}
	}
	var c *proctest.Cluster
	var ns *chaosNS
	if cfg.netns {
		c, ns = startChaosNS(t)
	} else {
		c = proctest.StartCluster(t, testBin, proctest.Options{Nodes: 8, Zones: 4})
	}
	ch := &chaos{
		t: t, c: c, ns: ns, start: time.Now(),
		hist:     proctest.NewHistory(),
		clocks:   clocks,
		maps:     []*placement.Map{c.Map},
		faults:   map[string][]interval{},
		gwFaults: make([][]interval, len(clocks)),
		gwDown:   make([]bool, len(clocks)),
		gwCuts:   make([]map[string][]interval, len(clocks)),
		wipes:    map[string][]time.Time{},
		down:     map[string]bool{},
		spared:   map[string]bool{},
		kinds:    map[string]int{},
		procs:    map[string]*proctest.Proc{},
		stats:    map[string]map[string][]time.Duration{},
		fails:    map[string]map[string]int{},
	}
	for i := range ch.gwCuts {
		ch.gwCuts[i] = map[string][]interval{}
	}
	for _, n := range c.Map.Nodes {
		ch.procs[n.ID] = nodeProc(c, n.ID)
	}
	ch.startGateways()
	ch.startRebalancer(ctx)
	t.Logf("gateways %v with clocks offset by %v; cluster under %s", gatewayAddrs(c), clocks, c.Dir)
	const bucket = "chaos"
	mustCreateBucket(t, ctx, ch.cls[0], bucket)
	for i := range chaosHotKeys {
		ch.keys = append(ch.keys, fmt.Sprintf("hot-%d", i))
	}
	for i := range chaosColdKeys {
		ch.keys = append(ch.keys, fmt.Sprintf("key-%02d", i))
	}

	var stop sync.WaitGroup
	done := make(chan struct{})
	for id := range chaosClients {
		rng := rand.New(rand.NewPCG(uint64(seed), uint64(id)))
		stop.Go(func() { ch.client(ctx, bucket, id, rng, done) })
	}
	frng := rand.New(rand.NewPCG(uint64(seed), 1<<32))
	for _, ph := range phases {
		ch.mu.Lock()
		ch.phase = ph.name
		ch.order = append(ch.order, ph.name)
		ch.mu.Unlock()
		t.Logf("phase %s (%v): faults %v", ph.name, ph.dur, ph.faults)
		ch.runPhase(ctx, ph, frng)
	}
	close(done)
	stop.Wait()

	// Every node back and seen up by every gateway, then read every key
	// through each: these reads go into the history too.
	ch.mu.Lock()
	ch.phase = "verify"
	ch.order = append(ch.order, "verify")
	ch.mu.Unlock()
	for _, g := range ch.gws {
		for id := range ch.procs {
			if ch.procs[id].Running() && !ch.removed(id) {
				g.waitNodeState(t, id, "up", 30*time.Second)
			}
		}
	}
	for _, key := range ch.keys {
		for gw := range ch.gws {
			ch.get(ctx, bucket, key, chaosClients+gw, gw)
		}
	}
	ch.checkFurtherDown(ctx, bucket)
	verdict := ch.hist.Check(cfg.checkTime)
	ch.report(verdict)
}

// startGateways replaces the cluster's gateway by one gateway per clock
// offset, each on fixed ports so that a restart keeps its address.
func (ch *chaos) startGateways() {
	if ch.ns != nil {
		ch.ns.startGateways(ch)
		return
	}
	t, c := ch.t, ch.c
	for _, g := range c.Gateways {
		g.Close()
	}
	c.Gateways = nil
	for i, off := range ch.clocks {
		addr, err := proctest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		maddr, err := proctest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		args := append([]string{"gateway", "--listen", addr, "--cluster", c.MapFile, "--map-poll", "500ms",
			"--metrics-listen", maddr}, testHealthFlags...)
		env := append(procEnv(c), "KINTSUGI_CLOCK_OFFSET="+off.String())
		name := fmt.Sprintf("gateway%d", i)
		p, err := proctest.Start(context.Background(), name, c.Bin, filepath.Join(c.Dir, name+".log"), env, args...)
		if err != nil {
			t.Fatal(err)
		}
		ch.gws = append(ch.gws, &healthGateway{Proc: p, metrics: maddr})
		c.Gateways = append(c.Gateways, p)
		ch.cls = append(ch.cls, s3Client(c, i))
	}
}

func gatewayAddrs(c *proctest.Cluster) []string {
	var out []string
	for _, g := range c.Gateways {
		out = append(out, g.Addr)
	}
	return out
}

// startRebalancer runs a scrubber daemon that follows the cluster file:
// each new map starts a pass that moves shards to where it places them.
// Its interval is long, so it runs only on map changes.
func (ch *chaos) startRebalancer(ctx context.Context) {
	if ch.ns != nil {
		ch.ns.startRebalancer(ch)
		return
	}
	t, c := ch.t, ch.c
	addr, err := proctest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p, err := proctest.Start(ctx, "scrubber", c.Bin, filepath.Join(c.Dir, "scrubber.log"), procEnv(c),
		"scrubber", "--cluster", c.MapFile, "--state", filepath.Join(c.Dir, "scrub-state"), "--listen", addr,
		"--interval", "1h", "--map-poll", "200ms")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ch.scrub = addr
}

// runPhase injects the phase's faults until it ends and waits for every
// faulted node and gateway to recover. A phase with reconfigure starts
// with one, and the other kinds are drawn every one to three seconds.
func (ch *chaos) runPhase(ctx context.Context, ph chaosPhase, rng *rand.Rand) {
	end := time.Now().Add(ph.dur)
	var wg sync.WaitGroup
	kinds := slices.DeleteFunc(slices.Clone(ph.faults), func(k string) bool { return k == "reconfigure" })
	reconf := len(kinds) < len(ph.faults)
	for time.Now().Before(end) {
		kind := "reconfigure"
		if !reconf {
			time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond)
			if len(kinds) == 0 || !time.Now().Before(end) {
				continue
			}
			kind = kinds[rng.IntN(len(kinds))]
		}
		reconf = false
		r := rng.Int64()
		if slices.Contains(gatewayFaults, kind) {
			gw := ch.pickGateway(rng)
			if gw < 0 {
				continue
			}
			// Stops often outlast opTimeout, so that clients give up.
			hold := time.Duration(1000+rng.IntN(13000)) * time.Millisecond
			wg.Go(func() { ch.gatewayFault(ctx, kind, gw, hold, r) })
			continue
		}
		if kind == "cutvoters" {
			if ch.beginAdmin() {
				wg.Go(func() { ch.cutVoters(ctx, r, ph.maxDown) })
			}
			continue
		}
		if kind == "reconfigure" {
			id := ch.pickDrain(rng)
			if id == "" {
				continue
			}
			wg.Go(func() { ch.reconfigure(ctx, id, r, end) })
			continue
		}
		id := ch.pickNode(rng, ph.maxDown)
		if id == "" {
			continue
		}
		hold := time.Duration(1000+rng.IntN(3000)) * time.Millisecond
		if kind == "cut" {
			hold *= 2 // long enough for a Raft election when it cuts the leader
		}
		wg.Go(func() { ch.fault(ctx, kind, id, hold) })
	}
	wg.Wait()
}

// pickNode returns a node to fault, or "" if maxDown are faulted already.
func (ch *chaos) pickNode(rng *rand.Rand, maxDown int) string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	n := 0
	for _, d := range ch.down {
		if d {
			n++
		}
	}
	if n >= maxDown {
		return ""
	}
	var ids []string
	for _, nd := range ch.maps[len(ch.maps)-1].Nodes {
		if nd.State != placement.StateRemoved && !ch.down[nd.ID] && !ch.spared[nd.ID] {
			ids = append(ids, nd.ID)
		}
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return ""
	}
	id := ids[rng.IntN(len(ids))]
	ch.down[id] = true
	return id
}

// pickDrain returns an active node to drain, or "" while another
// reconfiguration runs: admin changes are made one at a time.
func (ch *chaos) pickDrain(rng *rand.Rand) string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.reconfiguring {
		return ""
	}
	var ids []string
	for _, nd := range ch.maps[len(ch.maps)-1].Nodes {
		if nd.State == placement.StateActive {
			ids = append(ids, nd.ID)
		}
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return ""
	}
	ch.reconfiguring = true
	return ids[rng.IntN(len(ids))]
}

// beginAdmin reserves the admin for one map change at a time; the
// change's goroutine ends it with endAdmin.
func (ch *chaos) beginAdmin() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.reconfiguring {
		return false
	}
	ch.reconfiguring = true
	return true
}

func (ch *chaos) endAdmin() {
	ch.mu.Lock()
	ch.reconfiguring = false
	ch.mu.Unlock()
}

// pickGateway returns a gateway to fault, or -1 if one is down already:
// clients always have two to move to.
func (ch *chaos) pickGateway(rng *rand.Rand) int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if slices.Contains(ch.gwDown, true) || len(ch.gws) < 2 {
		return -1
	}
	gw := rng.IntN(len(ch.gws))
	ch.gwDown[gw] = true
	return gw
}

// gatewayFault kills, stops or cuts gateway gw for about hold. A cut
// gateway keeps running and serving; only its packets to and from half
// the nodes are dropped, so what it cannot do is judged by those nodes.
func (ch *chaos) gatewayFault(ctx context.Context, kind string, gw int, hold time.Duration, r int64) {
	g := ch.gws[gw]
	ch.mu.Lock()
	ch.kinds[kind]++
	if kind != "gwcut" {
		ch.gwFaults[gw] = append(ch.gwFaults[gw], interval{from: time.Now()})
	}
	ch.mu.Unlock()
	if kind == "gwcut" {
		ch.gatewayCut(gw, hold, r)
		ch.mu.Lock()
		ch.gwDown[gw] = false
		ch.mu.Unlock()
		return
	}
	switch kind {
	case "gwkill":
		g.Kill()
		time.Sleep(hold)
		if err := g.Restart(ctx); err != nil {
			ch.t.Errorf("restart gateway %d: %v", gw, err)
		}
	case "gwstop":
		g.Signal(syscall.SIGSTOP)
		time.Sleep(hold)
		g.Signal(syscall.SIGCONT)
	}
	ch.mu.Lock()
	f := ch.gwFaults[gw]
	f[len(f)-1].to = time.Now()
	ch.gwDown[gw] = false
	ch.mu.Unlock()
}

// fault makes node id unavailable for about hold, then brings it back.
func (ch *chaos) fault(ctx context.Context, kind, id string, hold time.Duration) {
	t := ch.t
	ch.mu.Lock()
	p := ch.procs[id]
	ch.kinds[kind]++
	ch.mu.Unlock()
	begin := func() {
		ch.mu.Lock()
		ch.faults[id] = append(ch.faults[id], interval{from: time.Now()})
		ch.mu.Unlock()
	}
	end := func() {
		ch.mu.Lock()
		f := ch.faults[id]
		f[len(f)-1].to = time.Now()
		ch.down[id] = false
		ch.mu.Unlock()
	}
	restart := func() {
		if err := p.Restart(ctx); err != nil {
			t.Errorf("restart %s: %v", id, err)
		}
	}
	wipe := func() {
		ch.mu.Lock()
		ch.wipes[id] = append(ch.wipes[id], time.Now())
		ch.mu.Unlock()
		dir := filepath.Join(ch.c.Dir, id)
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	switch kind {
	case "cut":
		h := ch.ns.host(id)
		begin()
		if err := h.Cut(); err != nil {
			t.Errorf("cut %s: %v", id, err)
		}
		time.Sleep(hold)
		if err := h.Heal(); err != nil {
			t.Errorf("heal %s: %v", id, err)
		}
		end()
	case "kill":
		begin()
		p.Kill()
		time.Sleep(hold)
		restart()
		end()
	case "stop":
		begin()
		p.Signal(syscall.SIGSTOP)
		time.Sleep(hold)
		p.Signal(syscall.SIGCONT)
		end()
	case "wipe":
		begin()
		p.Kill()
		wipe()
		time.Sleep(hold)
		restart()
		end()
	case "disk":
		ch.fullDisk(ctx, id, hold)
	}
}

// fullDisk puts node id on a 32 MiB tmpfs for a while: it keeps serving
// reads of what it stores there and fails writes once the disk is full.
// What it held before is hidden meanwhile, and what it got meanwhile is
// gone afterwards, so both edges count as wipes.
func (ch *chaos) fullDisk(ctx context.Context, id string, hold time.Duration) {
	t := ch.t
	p := ch.procs[id]
	dir := filepath.Join(ch.c.Dir, id)
	p.Kill()
	ch.mu.Lock()
	ch.faults[id] = append(ch.faults[id], interval{from: time.Now()})
	ch.wipes[id] = append(ch.wipes[id], time.Now())
	ch.mu.Unlock()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", dir).CombinedOutput()
	mounted := err == nil
	if !mounted {
		t.Logf("full-disk fault skipped on %s: cannot mount a tmpfs: %v %s", id, err, strings.TrimSpace(string(out)))
	} else if err := p.Restart(ctx); err != nil {
		t.Errorf("restart %s on a tmpfs: %v", id, err)
	}
	ch.mu.Lock()
	f := ch.faults[id]
	f[len(f)-1].to = time.Now()
	ch.mu.Unlock()
	if mounted {
		time.Sleep(4 * hold)
		p.Kill()
		ch.mu.Lock()
		ch.faults[id] = append(ch.faults[id], interval{from: time.Now()})
		ch.wipes[id] = append(ch.wipes[id], time.Now())
		ch.mu.Unlock()
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	}
	if err := p.Restart(ctx); err != nil {
		t.Errorf("restart %s: %v", id, err)
	}
	ch.mu.Lock()
	f = ch.faults[id]
	f[len(f)-1].to = time.Now()
	ch.down[id] = false
	ch.mu.Unlock()
}

// reconfigure adds a new node and drains node id while the workload and
// the other faults go on; the scrubber daemon moves the shards. Once its
// pass under the new map is done (waiting until the phase ends, at
// least 30 s), a drained node that holds nothing more is removed and
// stopped, and counts as wiped from then on; one that still holds shards
// (rewritten while the pass ran, or not moved because of a fault) stays
// draining.
func (ch *chaos) reconfigure(ctx context.Context, id string, r int64, phaseEnd time.Time) {
	t := ch.t
	c := ch.c
	defer ch.endAdmin()
	ch.mu.Lock()
	ch.kinds["reconfigure"]++
	ch.mu.Unlock()
	newID := fmt.Sprintf("x%d", uint64(r)%100000)
	p, addr, err := ch.startNode(ctx, newID)
	if err != nil {
		t.Error(err)
		return
	}
	ch.mu.Lock()
	c.Nodes = append(c.Nodes, p)
	ch.procs[newID] = p
	ch.mu.Unlock()
	zone := fmt.Sprintf("z%d", uint64(r)%4+1)
	admin := func(args ...string) (*placement.Map, bool) {
		m, err := ch.adminChange(ctx, args...)
		if err != nil {
			t.Errorf("admin %v: %v", args, err)
			return nil, false
		}
		ch.mu.Lock()
		ch.maps = append(ch.maps, m)
		ch.mu.Unlock()
		ch.waitEpoch(ctx, m.Epoch, 30*time.Second)
		return m, true
	}
	if _, ok := admin("nodes", "add", "--id", newID, "--addr", addr, "--zone", zone); !ok {
		return
	}
	m, ok := admin("nodes", "drain", id)
	if !ok {
		return
	}
	what := fmt.Sprintf("added %s in %s, drained %s", newID, zone, id)
	deadline := time.Now().Add(max(time.Until(phaseEnd), 30*time.Second))
	lp := ch.waitRebalance(ctx, m.Epoch, deadline)
	if lp == nil {
		ch.note(what + "; its rebalance pass did not finish in time")
		return
	}
	what += fmt.Sprintf("; the rebalance moved %d shards (%d failed)", lp.MovesDone, lp.MovesFailed)
	n, _ := m.Node(id)
	h, err := client.New(n.Addr, &client.Options{Secret: []byte(c.Secret), HTTPClient: ch.httpClient()}).Health(ctx)
	if err != nil || h.Objects != 0 {
		ch.note(fmt.Sprintf("%s; %s still holds shards (%d objects, %v), left draining", what, id, h.Objects, err))
		return
	}
	// No fault may restart the node while it goes.
	ch.mu.Lock()
	busy := ch.down[id]
	ch.down[id] = true
	ch.mu.Unlock()
	defer func() {
		ch.mu.Lock()
		ch.down[id] = busy
		ch.mu.Unlock()
	}()
	if busy {
		ch.note(fmt.Sprintf("%s; %s is empty but faulted, left draining", what, id))
		return
	}
	if _, ok := admin("nodes", "remove", id); !ok {
		return
	}
	ch.mu.Lock()
	old := ch.procs[id]
	ch.mu.Unlock()
	old.Kill()
	ch.mu.Lock()
	ch.faults[id] = append(ch.faults[id], interval{from: time.Now()})
	ch.wipes[id] = append(ch.wipes[id], time.Now())
	ch.mu.Unlock()
	ch.note(what + "; removed " + id)
}

// startNode starts a new storage node id and returns it with its address.
func (ch *chaos) startNode(ctx context.Context, id string) (*proctest.Proc, string, error) {
	if ch.ns != nil {
		return ch.ns.startNode(ctx, ch.c, id)
	}
	c := ch.c
	addr, err := proctest.FreePort()
	if err != nil {
		return nil, "", err
	}
	p, err := proctest.Start(ctx, "node "+id, c.Bin, filepath.Join(c.Dir, id+".log"), procEnv(c),
		"storagenode", "--id", id, "--listen", addr, "--data", filepath.Join(c.Dir, id))
	return p, addr, err
}

// adminChange runs a map change (`kintsugi admin args...`) and returns
// the map it made.
func (ch *chaos) adminChange(ctx context.Context, args ...string) (*placement.Map, error) {
	defer ch.changing()()
	if ch.ns != nil {
		return ch.ns.change(ctx, ch, args...)
	}
	if out, err := runAdminProc(ch.t, ch.c, args...); err != nil {
		return nil, fmt.Errorf("%v\n%s", err, out)
	}
	return placement.Load(ch.c.MapFile)
}

// changing records a map change from now until the returned func runs:
// a write that spans one may be refused by the epoch fencing.
func (ch *chaos) changing() func() {
	from := time.Now()
	return func() {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		// Gateways install the new map a moment after it commits.
		ch.changes = append(ch.changes, interval{from: from, to: time.Now().Add(2 * time.Second)})
	}
}

// httpClient reaches the gateways' metrics, the scrubber and the nodes
// from the test process.
func (ch *chaos) httpClient() *http.Client {
	if ch.ns != nil {
		return ch.ns.hc
	}
	return http.DefaultClient
}

// waitEpoch waits until every gateway uses map epoch e or later. It
// runs beside the test's goroutine, so it reports with Errorf.
func (ch *chaos) waitEpoch(ctx context.Context, e uint64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, g := range ch.gws {
		for {
			v, err := g.nodes(ctx)
			if err == nil && v.Epoch >= e {
				break
			}
			if time.Now().After(deadline) {
				ch.t.Errorf("%s: not at epoch %d within %v: %+v, %v", g.Name, e, timeout, v.Epoch, err)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// waitRebalance waits until the scrubber daemon finished a pass under
// epoch or later, and returns its report; nil at the deadline.
func (ch *chaos) waitRebalance(ctx context.Context, epoch uint64, deadline time.Time) *scrubber.Report {
	for time.Now().Before(deadline) {
		st, err := scrubberStatusVia(ctx, ch.httpClient(), ch.scrub)
		if lp := st.LastPass; err == nil && lp != nil && !st.Running && lp.MapEpoch >= epoch && !lp.MapChanged {
			return lp
		}
		time.Sleep(250 * time.Millisecond)
	}
	return nil
}

func (ch *chaos) note(s string) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.reconfigs = append(ch.reconfigs, s)
}

func (ch *chaos) removed(id string) bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	n, ok := ch.maps[len(ch.maps)-1].Node(id)
	return ok && n.State == placement.StateRemoved
}

// client runs operations on random keys, half of them on the hot ones,
// through random gateways until done is closed. A gateway that failed it
// is avoided for a while.
func (ch *chaos) client(ctx context.Context, bucket string, id int, rng *rand.Rand, done <-chan struct{}) {
	sizes := []int64{1 << 10, 8 << 10, 64 << 10, 256 << 10, 1 << 20, 3 << 20}
	avoid := make([]time.Time, len(ch.gws))
	for n := int64(0); ; n++ {
		select {
		case <-done:
			return
		default:
		}
		key := ch.keys[chaosHotKeys+rng.IntN(chaosColdKeys)]
		if rng.IntN(2) == 0 {
			key = ch.keys[rng.IntN(chaosHotKeys)]
		}
		var ok []int
		for gw, until := range avoid {
			if time.Now().After(until) {
				ok = append(ok, gw)
			}
		}
		if len(ok) == 0 {
			ok = []int{rng.IntN(len(ch.gws))}
		}
		gw := ok[rng.IntN(len(ok))]
		var err error
		switch r := rng.Float64(); {
		case r < 0.45:
			err = ch.get(ctx, bucket, key, id, gw)
		case r < 0.88:
			seed, size := int64(id)<<40|n, sizes[rng.IntN(len(sizes))]
			err = ch.write(ctx, "put", key, gw, ch.hist.Put(id, key, genSum(seed, size), ch.gwName(gw)), func(ctx context.Context) error {
				return putObject(ctx, ch.cls[gw], bucket, key, newGen(seed, size), size)
			})
		default:
			err = ch.write(ctx, "delete", key, gw, ch.hist.Delete(id, key, ch.gwName(gw)), func(ctx context.Context) error {
				_, err := ch.cls[gw].DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				return err
			})
		}
		if err != nil {
			avoid[gw] = time.Now().Add(avoidFor)
		}
	}
}

// gwName names gateway gw and its clock for reports: "gw2(+10s)".
func (ch *chaos) gwName(gw int) string {
	off := ch.clocks[gw]
	if off > 0 {
		return fmt.Sprintf("gw%d(+%v)", gw, off)
	}
	return fmt.Sprintf("gw%d(%v)", gw, off)
}

// write runs a PUT or DELETE of key through gateway gw, recorded as call.
func (ch *chaos) write(ctx context.Context, op, key string, gw int, call *proctest.Call, do func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	phase := ch.currentPhase()
	from := time.Now()
	err := do(ctx)
	to := time.Now()
	ch.record(phase, op, to.Sub(from), err)
	if err != nil {
		call.Fail()
		ch.writeFailed(op, key, gw, phase, from, to, err)
		return err
	}
	call.Ack()
	return nil
}

// strictRefusals makes writes refused with at most p of their object's
// nodes out, and objects written while nodes were out that do not read
// back with p further nodes down, fail the run: in the long runs of make
// chaos (KINTSUGI_CHAOS set), or with KINTSUGI_CHAOS_REFUSALS=strict. The
// short run in make test only counts and logs them (as
// KINTSUGI_CHAOS_REFUSALS=log does anywhere): a write whose commit loses
// two nodes killed after its stage is still refused, about one short run
// in three, and make test must not fail on what is an open limitation
// rather than a wrong answer (docs/operations.md).
func strictRefusals() bool {
	switch os.Getenv("KINTSUGI_CHAOS_REFUSALS") {
	case "strict":
		return true
	case "log":
		return false
	}
	return os.Getenv("KINTSUGI_CHAOS") != ""
}

// writeFailed counts a write of key through gateway gw that failed during
// [from, to] as refused when the gateway was not faulted meanwhile and at
// most p of the object's nodes (under any map used) were out: the store
// promises to take it then. A refusal that says a concurrent write of the
// key with a newer version won (gateway.SupersededMessage, which the
// gateway answers only when the nodes' "newer version" refusals alone
// cost the quorum) is listed apart: linearizability lets one of two
// concurrent writes fail, and nodes being out did not cause it. One that
// says the cluster map changed during the write (gateway.MapChangedMessage,
// answered only when the nodes' stale-map refusals alone cost the quorum)
// is listed with those made while a map change ran: a gateway cut off
// from the cluster learns a new map late, well after the change's window.
func (ch *chaos) writeFailed(op, key string, gw int, phase string, from, to time.Time, err error) {
	ch.mu.Lock()
	byGateway := faulted(ch.gwFaults[gw], from, to)
	ch.mu.Unlock()
	if byGateway {
		return
	}
	out := ch.unavailable(key, gw, from, to, nil)
	if len(out) > ch.c.Map.ParityShards {
		return
	}
	code := apiCode(err)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = "timeout"
	case code == "":
		code = err.Error()
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	r := fmt.Sprintf("%s %s via %s in phase %s with %v out: %s", op, key, ch.gwName(gw), phase, out, code)
	if apiMessage(err) == gateway.SupersededMessage {
		ch.refusedByRace = append(ch.refusedByRace, r)
		return
	}
	if apiMessage(err) == gateway.MapChangedMessage {
		ch.refusedByChange = append(ch.refusedByChange, r+" (the nodes held a newer map)")
		return
	}
	if faulted(ch.changes, from, to) {
		ch.refusedByChange = append(ch.refusedByChange, r+" (a map change meanwhile)")
		return
	}
	ch.refused = append(ch.refused, r)
}

// get reads key through gateway gw into the history. Wrong bytes fail the
// run at once; a failed read must be excused by faults.
func (ch *chaos) get(ctx context.Context, bucket, key string, client, gw int) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	phase := ch.currentPhase()
	call := ch.hist.Get(client, key, ch.gwName(gw))
	from := time.Now()
	sum, _, err := getSum(ctx, ch.cls[gw], bucket, key)
	to := time.Now()
	switch {
	case apiCode(err) == "NoSuchKey":
		ch.record(phase, "get", to.Sub(from), nil)
		call.Absent()
		return nil
	case err == nil:
		ch.record(phase, "get", to.Sub(from), nil)
		if err := call.Read(sum); err != nil {
			ch.violation("wrong bytes", key, fmt.Sprintf("via %s in phase %s: %v", ch.gwName(gw), phase, err))
		}
		return nil
	}
	ch.record(phase, "get", to.Sub(from), err)
	call.Fail()
	ch.readFailed(key, gw, phase, from, to, err)
	return err
}

// readFailed judges a failed read of key through gateway gw during
// [from, to]. It is excused when the gateway was faulted meanwhile, or
// when more than p of the object's nodes were unavailable while it was
// read, or lack its shard because they were unavailable (or wiped) while
// a version it might have served was written.
func (ch *chaos) readFailed(key string, gw int, phase string, from, to time.Time, err error) {
	ch.mu.Lock()
	ch.readFailures++
	byGateway := faulted(ch.gwFaults[gw], from, to)
	if byGateway {
		ch.excusedByGateway++
	}
	ch.mu.Unlock()
	if byGateway {
		return
	}
	unavail := ch.unavailable(key, gw, from, to, ch.candidates(key, from))
	if len(unavail) > ch.c.Map.ParityShards {
		ch.mu.Lock()
		ch.excusedByNodes++
		ch.mu.Unlock()
		return
	}
	ch.violation("read failure", key, fmt.Sprintf("%s via %s in phase %s with only %v unavailable: %v", key, ch.gwName(gw), phase, unavail, err))
}

// candidates returns the write periods of the versions of key a read
// starting at from might find newest: every write not followed, before
// from, by an acknowledged write that started after it ended. Versions
// are named by the gateways' clocks, which are up to the clocks' spread
// apart, so a write only counts as followed once that much later.
func (ch *chaos) candidates(key string, from time.Time) []interval {
	spread := slices.Max(ch.clocks) - slices.Min(ch.clocks) + time.Second
	ws := ch.hist.Writes(key)
	var lastAcked time.Time
	for _, w := range ws {
		if c := ch.hist.Time(w.Call); w.Outcome == proctest.OK && ch.hist.Time(w.Return).Before(from) && c.After(lastAcked) {
			lastAcked = c
		}
	}
	var out []interval
	for _, w := range ws {
		end := ch.hist.Time(w.Return)
		if w.Outcome != proctest.OK && end.Before(from) {
			end = from // a failed write may still be going on
		}
		if end.Add(spread).Before(lastAcked) {
			continue
		}
		out = append(out, interval{from: ch.hist.Time(w.Call), to: end})
	}
	return out
}

// unavailable returns the nodes of key (under any map used) that were
// faulted or cut off from gateway gw during [from, to], or faulted or cut
// off from any gateway during any of the writes, or wiped after one of
// them began.
func (ch *chaos) unavailable(key string, gw int, from, to time.Time, writes []interval) []string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	placed := map[string]bool{}
	for _, m := range ch.maps {
		for _, id := range placedIDs(m, "chaos", key) {
			placed[id] = true
		}
	}
	var out []string
	for id := range placed {
		bad := faulted(ch.faults[id], from, to) || faulted(ch.gwCuts[gw][id], from, to)
		for _, w := range writes {
			bad = bad || faulted(ch.faults[id], w.from, w.to)
			for _, cuts := range ch.gwCuts {
				bad = bad || faulted(cuts[id], w.from, w.to)
			}
			for _, wt := range ch.wipes[id] {
				bad = bad || wt.After(w.from)
			}
		}
		if bad {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// furtherDownResult is what checkFurtherDown found.
type furtherDownResult struct {
	objects, rounds int
	lost            []string
}

// checkFurtherDown reads back, through gateway 0, every object whose
// current version was written by an acknowledged write while some of its
// nodes were out, with p
// further nodes of it down: nodes that were up during that write and so
// hold its shards. Objects that share those p nodes are read in one
// round; each round kills the nodes, reads, and restarts them. The reads
// are not part of the history: every node is back before the history is
// judged.
func (ch *chaos) checkFurtherDown(ctx context.Context, bucket string) {
	t := ch.t
	p := ch.c.Map.ParityShards
	ch.mu.Lock()
	final := ch.maps[len(ch.maps)-1]
	ch.mu.Unlock()
	last := map[string]int{} // key -> value its verify reads found
	for _, op := range ch.hist.Ops() {
		if op.Kind == proctest.Get && op.Outcome == proctest.OK && op.Note != "" {
			last[op.Key] = op.Value
		}
	}
	rounds := map[string][]string{} // "n2,n5" -> keys
	for _, key := range ch.keys {
		v := last[key]
		if v == proctest.Absent {
			continue
		}
		var w interval
		acked := false
		for _, op := range ch.hist.Writes(key) {
			if op.Kind == proctest.Put && op.Value == v {
				w = interval{from: ch.hist.Time(op.Call), to: ch.hist.Time(op.Return)}
				acked = op.Outcome == proctest.OK
			}
		}
		// Only an acknowledged write promises to survive p further
		// failures: it committed on its quorum. A write the client
		// gave up on (timed out, or answered with an error) may have
		// committed, then or later, on fewer nodes than its quorum and
		// still be read as current (readers serve a plain version from
		// d holders); it never carried that promise, so it is not
		// checked.
		if !acked {
			continue
		}
		out := ch.unavailable(key, 0, w.from, w.to, []interval{w})
		if len(out) == 0 {
			continue
		}
		var holders []string
		for _, id := range placedIDs(final, bucket, key) {
			if !slices.Contains(out, id) && ch.procs[id].Running() {
				holders = append(holders, id)
			}
		}
		if len(holders) < p {
			continue
		}
		down := strings.Join(holders[len(holders)-p:], ",")
		rounds[down] = append(rounds[down], key)
	}
	var order []string
	for down := range rounds {
		order = append(order, down)
	}
	slices.Sort(order)
	g, cl := ch.gws[0], ch.cls[0]
	for _, down := range order {
		keys := rounds[down]
		ids := strings.Split(down, ",")
		want := map[string][32]byte{}
		for _, key := range keys {
			sum, _, err := getSum(ctx, cl, bucket, key)
			if err != nil {
				t.Errorf("further-down check: %s with every node up: %v", key, err)
				continue
			}
			want[key] = sum
		}
		for _, id := range ids {
			ch.procs[id].Kill()
		}
		for _, key := range keys {
			sum, _, err := getSum(ctx, cl, bucket, key)
			if err == nil && sum != want[key] {
				err = fmt.Errorf("wrong bytes")
			}
			if err != nil {
				ch.furtherDown.lost = append(ch.furtherDown.lost, fmt.Sprintf("%s with %s down: %v", key, down, err))
			}
		}
		for _, id := range ids {
			if err := ch.procs[id].Restart(ctx); err != nil {
				t.Errorf("further-down check: restart %s: %v", id, err)
			}
		}
		for _, id := range ids {
			g.waitNodeState(t, id, "up", 30*time.Second)
		}
		ch.furtherDown.objects += len(keys)
		ch.furtherDown.rounds++
	}
}

// faulted reports whether any of fs overlaps [from, to].
func faulted(fs []interval, from, to time.Time) bool {
	for _, f := range fs {
		if f.from.Before(to) && (f.to.IsZero() || f.to.After(from)) {
			return true
		}
	}
	return false
}

func (ch *chaos) currentPhase() string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.phase
}

func (ch *chaos) record(phase, op string, d time.Duration, err error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.stats[phase] == nil {
		ch.stats[phase] = map[string][]time.Duration{}
		ch.fails[phase] = map[string]int{}
	}
	if err != nil {
		ch.fails[phase][op]++
		return
	}
	ch.stats[phase][op] = append(ch.stats[phase][op], d)
}

func (ch *chaos) violation(what, key, detail string) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if !slices.Contains(ch.badKeys, key) {
		ch.badKeys = append(ch.badKeys, key)
	}
	switch what {
	case "wrong bytes":
		ch.wrong++
		// At once: nothing later can excuse it.
		ch.t.Errorf("wrong bytes: %s", detail)
	default:
		ch.unexcused++
	}
	if len(ch.bad) < 20 {
		ch.bad = append(ch.bad, what+": "+detail)
	}
}

// report prints the summary and fails the test on any violation; on a
// failure it keeps the process logs, the history and porcupine's view of
// it.
func (ch *chaos) report(v proctest.Verdict) {
	t := ch.t
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "chaos run of %v, %d clients on %d keys through %d gateways with clocks offset by %v:\n",
		time.Since(ch.start).Round(time.Second), chaosClients, len(ch.keys), len(ch.gws), ch.clocks)
	fmt.Fprintf(&b, "  %-12s %-7s %7s %7s %9s %9s\n", "phase", "op", "ok", "failed", "p50", "p99")
	for _, ph := range ch.order {
		for _, op := range []string{"get", "put", "delete"} {
			ds, nf := ch.stats[ph][op], ch.fails[ph][op]
			if len(ds) == 0 && nf == 0 {
				continue
			}
			fmt.Fprintf(&b, "  %-12s %-7s %7d %7d %9v %9v\n", ph, op, len(ds), nf,
				percentile(ds, 0.5).Round(time.Millisecond), percentile(ds, 0.99).Round(time.Millisecond))
		}
	}
	var kinds []string
	for k, n := range ch.kinds {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(kinds)
	fmt.Fprintf(&b, "  faults injected: %s\n", strings.Join(kinds, ", "))
	for _, r := range ch.reconfigs {
		fmt.Fprintf(&b, "  reconfiguration: %s\n", r)
	}
	fmt.Fprintf(&b, "  reads returning wrong bytes: %d\n", ch.wrong)
	fmt.Fprintf(&b, "  failed reads: %d (%d while their gateway was faulted, %d with more than p nodes of the object unavailable), %d with at most p\n",
		ch.readFailures, ch.excusedByGateway, ch.excusedByNodes, ch.unexcused)
	fmt.Fprintf(&b, "  writes refused with at most p=%d of their nodes out: %d\n", ch.c.Map.ParityShards, len(ch.refused))
	for _, r := range ch.refused[:min(len(ch.refused), 10)] {
		fmt.Fprintf(&b, "    %s\n", r)
	}
	fmt.Fprintf(&b, "  and while a map change ran (the epoch fencing refuses a write that spans one): %d\n", len(ch.refusedByChange))
	for _, r := range ch.refusedByChange[:min(len(ch.refusedByChange), 5)] {
		fmt.Fprintf(&b, "    %s\n", r)
	}
	fmt.Fprintf(&b, "  and refused because a concurrent write of the key won: %d\n", len(ch.refusedByRace))
	for _, r := range ch.refusedByRace[:min(len(ch.refusedByRace), 5)] {
		fmt.Fprintf(&b, "    %s\n", r)
	}
	fd := ch.furtherDown
	fmt.Fprintf(&b, "  objects written while nodes were out, read with p further nodes down: %d in %d rounds, %d unreadable\n",
		fd.objects, fd.rounds, len(fd.lost))
	for _, l := range fd.lost[:min(len(fd.lost), 10)] {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	for _, r := range ch.partitions {
		fmt.Fprintf(&b, "  partition: %s\n", r)
	}
	fmt.Fprintf(&b, "  %s\n", v.Summary())
	t.Log(b.String())
	if strictRefusals() && len(ch.refused)+len(fd.lost) > 0 {
		t.Errorf("%d writes refused with at most p nodes out, %d objects unreadable with p further nodes down (KINTSUGI_CHAOS_REFUSALS=log only logs them)",
			len(ch.refused), len(fd.lost))
	}
	for _, s := range ch.bad {
		if !strings.HasPrefix(s, "wrong bytes") {
			t.Error(s)
		}
	}
	if !v.OK() {
		t.Errorf("the history is not linearizable (%s):\n%s", v.Result, v.Explain(3))
		for _, k := range v.Bad {
			if !slices.Contains(ch.badKeys, k) {
				ch.badKeys = append(ch.badKeys, k)
			}
		}
	}
	if ch.wrong+ch.unexcused > 0 || !v.OK() {
		t.Errorf("chaos run failed; replay with KINTSUGI_CHAOS_SEED (see the seed above)")
	}
	if !t.Failed() {
		return
	}
	ch.keepEvidence(v)
}

// keepEvidence copies the process logs of a failed run, the history and
// porcupine's view of it to KINTSUGI_CHAOS_LOGS, or to a new temporary
// directory that outlives the test, and logs the log tails about the bad
// keys.
func (ch *chaos) keepEvidence(v proctest.Verdict) {
	t, c := ch.t, ch.c
	t.Log(c.Logs())
	// The tails above rarely reach back to a failed key's writes.
	for _, key := range ch.badKeys[:min(len(ch.badKeys), 3)] {
		t.Logf("log lines about %s:\n%s", key, c.LogsAbout(key, 60))
	}
	dir := os.Getenv("KINTSUGI_CHAOS_LOGS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "kintsugi-chaos-"); err != nil {
			t.Log(err)
			return
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Log(err)
		return
	}
	logs, _ := filepath.Glob(filepath.Join(c.Dir, "*.log"))
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil {
			os.WriteFile(filepath.Join(dir, filepath.Base(l)), b, 0o644)
		}
	}
	if f, err := os.Create(filepath.Join(dir, "history.txt")); err == nil {
		ch.hist.Dump(f)
		f.Close()
	}
	if !v.OK() {
		if err := v.Visualize(filepath.Join(dir, "history.html")); err != nil {
			t.Logf("visualization: %v", err)
		}
	}
	t.Logf("process logs, history.txt and history.html (porcupine's view of the bad keys) kept in %s", dir)
}
