package main

import (
	"context"
	"fmt"
	"math/rand/v2"
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

	"github.com/kintsugi-store/kintsugi/internal/proctest"
	"github.com/kintsugi-store/kintsugi/placement"
)

// TestChaos runs a verifying workload (PUT, GET, overwrite, DELETE, with
// the digest of everything acknowledged kept client-side) through two
// gateways over 8 storage node processes in 4 zones, while faults are
// injected on a seeded schedule. It asserts that no acknowledged write is
// lost, no read returns wrong bytes, and no read fails while at most p of
// the object's nodes were unavailable; it prints p50/p99 latency per phase
// and the seed.
//
// The short run (part of make test) takes about two minutes: kill -9 and
// restart, SIGSTOP/SIGCONT, and both together. KINTSUGI_CHAOS=long (make
// chaos) runs longer phases and adds wiped nodes, a full disk where a
// tmpfs can be mounted, and nodes added, drained and removed.
// KINTSUGI_CHAOS_SEED replays a schedule; KINTSUGI_CHAOS_LOGS=DIR keeps the
// process logs of a failed run there; KINTSUGI_CHAOS_PHASES replaces the
// phases (see parsePhases).
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process chaos run; run without -short")
	}
	long := os.Getenv("KINTSUGI_CHAOS") == "long"
	seed := time.Now().UnixNano()
	if s := os.Getenv("KINTSUGI_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("KINTSUGI_CHAOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("chaos seed %d (replay with KINTSUGI_CHAOS_SEED=%d)", seed, seed)
	phases := []chaosPhase{
		{name: "steady", dur: 15 * time.Second},
		{name: "kill", dur: 30 * time.Second, faults: []string{"kill"}, maxDown: 1},
		{name: "stop", dur: 30 * time.Second, faults: []string{"stop"}, maxDown: 1},
		{name: "mixed", dur: 25 * time.Second, faults: []string{"kill", "stop"}, maxDown: 2},
	}
	if long {
		phases = []chaosPhase{
			{name: "steady", dur: time.Minute},
			{name: "kill", dur: 4 * time.Minute, faults: []string{"kill"}, maxDown: 1},
			{name: "stop", dur: 4 * time.Minute, faults: []string{"stop"}, maxDown: 1},
			{name: "wipe", dur: 3 * time.Minute, faults: []string{"wipe"}, maxDown: 1},
			{name: "disk", dur: 3 * time.Minute, faults: []string{"disk"}, maxDown: 1},
			{name: "reconfigure", dur: 3 * time.Minute, faults: []string{"reconfigure"}, maxDown: 1},
			{name: "mixed", dur: 8 * time.Minute, faults: []string{"kill", "stop", "wipe"}, maxDown: 2},
		}
		t.Log("network faults (delay, loss, partition) are not injected: they need a network namespace per node, and these clusters share one loopback")
	}
	if s := os.Getenv("KINTSUGI_CHAOS_PHASES"); s != "" {
		var err error
		if phases, err = parsePhases(s); err != nil {
			t.Fatalf("KINTSUGI_CHAOS_PHASES: %v", err)
		}
	}
	runChaos(t, seed, phases)
}

// parsePhases reads a custom schedule, "name:duration,...", where name is
// steady or fault kinds joined by '+' (kill+stop); two kinds allow two
// nodes down at once.
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
			ph.maxDown = min(len(ph.faults), 2)
			for _, k := range ph.faults {
				if !slices.Contains([]string{"kill", "stop", "wipe", "disk", "reconfigure"}, k) {
					return nil, fmt.Errorf("%q: unknown fault %q", f, k)
				}
			}
		}
		out = append(out, ph)
	}
	return out, nil
}

// chaosPhase is a stretch of the run with one set of fault kinds.
type chaosPhase struct {
	name    string
	dur     time.Duration
	faults  []string // "kill", "stop", "wipe", "disk", "reconfigure"
	maxDown int      // nodes faulted at once
}

// chaos is the state of one run.
type chaos struct {
	t     *testing.T
	c     *proctest.Cluster
	gws   []*healthGateway
	cls   []*s3.Client
	start time.Time

	mu     sync.Mutex
	phase  string
	order  []string              // phases run, in order
	kinds  map[string]int        // faults injected, by kind
	maps   []*placement.Map      // every map used so far, oldest first
	faults map[string][]interval // node id -> periods it was unavailable
	wipes  map[string][]time.Time
	down   map[string]bool // faulted now
	procs  map[string]*proctest.Proc
	tmpfs  string // node on a small tmpfs, "" if none could be mounted

	keys                   map[string]*keyState
	stats                  map[string]map[string][]time.Duration // phase -> op -> latencies
	fails                  map[string]map[string]int             // phase -> op -> failures
	bad                    []string                              // violations, for the report
	badKeys                []string                              // their keys, for the logs about them
	lost, wrong, unexcused int
}

type interval struct{ from, to time.Time } // to zero: still down

// keyState is what the client knows about one key. Each key is used by one
// worker only, so operations on it never overlap.
type keyState struct {
	acked   version   // last acknowledged state
	maybe   []version // failed writes since then: each may or may not be visible
	history []version // earlier acknowledged states
}

// version is a state of a key: present with content (seed, size), or
// deleted, written during [from, to].
type version struct {
	deleted    bool
	seed, size int64
	sum        [32]byte
	from, to   time.Time
	none       bool // never written
}

func runChaos(t *testing.T, seed int64, phases []chaosPhase) {
	ctx := context.Background()
	c := proctest.StartCluster(t, testBin, proctest.Options{Nodes: 8, Zones: 4})
	ch := &chaos{
		t: t, c: c, start: time.Now(),
		maps:   []*placement.Map{c.Map},
		faults: map[string][]interval{},
		wipes:  map[string][]time.Time{},
		down:   map[string]bool{},
		kinds:  map[string]int{},
		procs:  map[string]*proctest.Proc{},
		keys:   map[string]*keyState{},
		stats:  map[string]map[string][]time.Duration{},
		fails:  map[string]map[string]int{},
	}
	for _, n := range c.Map.Nodes {
		ch.procs[n.ID] = nodeProc(c, n.ID)
	}
	ch.gws = useHealthGateways(t, c, 2)
	ch.cls = []*s3.Client{s3Client(c, 0), s3Client(c, 1)}
	defer func() {
		if !t.Failed() {
			return
		}
		t.Log(c.Logs())
		// The tails above rarely reach back to a failed key's writes.
		for _, key := range ch.badKeys[:min(len(ch.badKeys), 3)] {
			t.Logf("log lines about %s:\n%s", key, c.LogsAbout(key, 60))
		}
		if dir := os.Getenv("KINTSUGI_CHAOS_LOGS"); dir != "" {
			logs, _ := filepath.Glob(filepath.Join(c.Dir, "*.log"))
			for _, l := range logs {
				if b, err := os.ReadFile(l); err == nil {
					os.WriteFile(filepath.Join(dir, filepath.Base(l)), b, 0o644)
				}
			}
			t.Logf("process logs copied to %s", dir)
		}
	}()
	const bucket = "chaos"
	mustCreateBucket(t, ctx, ch.cls[0], bucket)

	const workers, keysPerWorker = 4, 20
	keys := make([][]string, workers)
	for w := range workers {
		for k := range keysPerWorker {
			key := fmt.Sprintf("w%d/k%02d", w, k)
			keys[w] = append(keys[w], key)
			ch.keys[key] = &keyState{acked: version{none: true}}
		}
	}
	var stop sync.WaitGroup
	done := make(chan struct{})
	for w := range workers {
		rng := rand.New(rand.NewPCG(uint64(seed), uint64(w)))
		stop.Go(func() { ch.worker(ctx, bucket, keys[w], rng, int64(w), done) })
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

	// Every node back and seen up by both gateways, then read every key
	// through both.
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
	for key, ks := range ch.keys {
		for i := range ch.cls {
			ch.check(ctx, bucket, key, ks, i)
		}
	}
	ch.report()
}

// runPhase injects the phase's faults until it ends and waits for every
// faulted node to recover.
func (ch *chaos) runPhase(ctx context.Context, ph chaosPhase, rng *rand.Rand) {
	end := time.Now().Add(ph.dur)
	var wg sync.WaitGroup
	for time.Now().Before(end) {
		time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond)
		if len(ph.faults) == 0 || !time.Now().Before(end) {
			continue
		}
		kind := ph.faults[rng.IntN(len(ph.faults))]
		id := ch.pickNode(rng, ph.maxDown)
		if id == "" {
			continue
		}
		hold := time.Duration(1000+rng.IntN(3000)) * time.Millisecond
		r := rng.Int64()
		wg.Go(func() { ch.fault(ctx, kind, id, hold, r) })
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
		if nd.State != placement.StateRemoved && !ch.down[nd.ID] {
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

// fault makes node id unavailable for about hold, then brings it back.
func (ch *chaos) fault(ctx context.Context, kind, id string, hold time.Duration, r int64) {
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
	case "reconfigure":
		ch.reconfigure(ctx, id, r)
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

// reconfigure adds a new node, drains node id and removes it (with
// --force: there is no rebalancer in this run), then stops it. The removed
// node counts as wiped from then on.
func (ch *chaos) reconfigure(ctx context.Context, id string, r int64) {
	t := ch.t
	c := ch.c
	newID := fmt.Sprintf("x%d", uint64(r)%100000)
	addr, err := proctest.FreePort()
	if err != nil {
		t.Error(err)
		return
	}
	p, err := proctest.Start(ctx, "node "+newID, c.Bin, filepath.Join(c.Dir, newID+".log"), procEnv(c),
		"storagenode", "--id", newID, "--listen", addr, "--data", filepath.Join(c.Dir, newID))
	if err != nil {
		t.Error(err)
		return
	}
	c.Nodes = append(c.Nodes, p)
	zone := fmt.Sprintf("z%d", uint64(r)%4+1)
	steps := [][]string{
		{"nodes", "add", "--id", newID, "--addr", addr, "--zone", zone},
		{"nodes", "drain", id},
		{"nodes", "remove", id, "--force"},
	}
	for _, args := range steps {
		if out, err := runAdminProc(t, c, args...); err != nil {
			t.Errorf("admin %v: %v\n%s", args, err, out)
			return
		}
		m, err := placement.Load(c.MapFile)
		if err != nil {
			t.Error(err)
			return
		}
		ch.mu.Lock()
		ch.maps = append(ch.maps, m)
		ch.procs[newID] = p
		ch.mu.Unlock()
		for _, g := range ch.gws {
			g.waitEpoch(t, m.Epoch, 15*time.Second)
		}
		time.Sleep(time.Second)
	}
	ch.procs[id].Kill()
	ch.mu.Lock()
	ch.faults[id] = append(ch.faults[id], interval{from: time.Now()})
	ch.wipes[id] = append(ch.wipes[id], time.Now())
	ch.down[id] = false // removed: never picked again
	ch.mu.Unlock()
}

func (ch *chaos) removed(id string) bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	n, ok := ch.maps[len(ch.maps)-1].Node(id)
	return ok && n.State == placement.StateRemoved
}

// worker runs operations on its keys until done is closed.
func (ch *chaos) worker(ctx context.Context, bucket string, keys []string, rng *rand.Rand, w int64, done <-chan struct{}) {
	sizes := []int64{1 << 10, 8 << 10, 64 << 10, 256 << 10, 1 << 20, 3 << 20}
	for n := int64(0); ; n++ {
		select {
		case <-done:
			return
		default:
		}
		key := keys[rng.IntN(len(keys))]
		ks := ch.keys[key]
		gw := rng.IntN(len(ch.cls))
		r := rng.Float64()
		switch {
		case r < 0.45:
			ch.check(ctx, bucket, key, ks, gw)
		case r < 0.88:
			v := version{seed: w<<40 | n, size: sizes[rng.IntN(len(sizes))]}
			v.sum = genSum(v.seed, v.size)
			ch.write(ctx, "put", ks, v, func(ctx context.Context) error {
				return putObject(ctx, ch.cls[gw], bucket, key, newGen(v.seed, v.size), v.size)
			})
		default:
			ch.write(ctx, "delete", ks, version{deleted: true}, func(ctx context.Context) error {
				_, err := ch.cls[gw].DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				return err
			})
		}
	}
}

// write runs a PUT or DELETE and records its outcome.
func (ch *chaos) write(ctx context.Context, op string, ks *keyState, v version, do func(context.Context) error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	phase := ch.currentPhase()
	v.from = time.Now()
	err := do(ctx)
	v.to = time.Now()
	ch.record(phase, op, v.to.Sub(v.from), err)
	if err != nil {
		ks.maybe = append(ks.maybe, v)
		return
	}
	ks.history = append(ks.history, ks.acked)
	// Versions are named by time: a failed write that ended just before
	// this one began, on another gateway, may carry a later name within
	// the same millisecond and win. Only older failures are ruled out.
	var keep []version
	for _, m := range ks.maybe {
		if m.to.After(v.from.Add(-10 * time.Millisecond)) {
			keep = append(keep, m)
		}
	}
	ks.acked, ks.maybe = v, keep
}

// check reads key through gateway gw and judges the answer against what
// the client knows.
func (ch *chaos) check(ctx context.Context, bucket, key string, ks *keyState, gw int) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	phase := ch.currentPhase()
	from := time.Now()
	sum, _, err := getSum(ctx, ch.cls[gw], bucket, key)
	to := time.Now()
	notFound := apiCode(err) == "NoSuchKey"
	if notFound {
		ch.record(phase, "get", to.Sub(from), nil)
	} else {
		ch.record(phase, "get", to.Sub(from), err)
	}
	allowed := append([]version{ks.acked}, ks.maybe...)
	matches := func(vs []version) bool {
		for _, v := range vs {
			switch {
			case notFound && (v.deleted || v.none):
				return true
			case err == nil && !v.deleted && !v.none && v.sum == sum:
				return true
			}
		}
		return false
	}
	switch {
	case notFound || err == nil:
		if matches(allowed) {
			return
		}
		what := "wrong bytes"
		if matches(ks.history) || notFound {
			what = "lost acknowledged write"
		}
		ch.violation(what, key, fmt.Sprintf("%s via gateway %d in phase %s: got %s, acknowledged %s", key, gw, phase, describe(notFound, sum), ks.acked))
	default:
		// A failed read is excused only when more than p of the object's
		// nodes were unavailable while it was read, or lack its shard
		// because they were unavailable (or wiped) when it was written.
		unavail := ch.unavailable(key, from, to, allowed)
		if len(unavail) <= ch.c.Map.ParityShards {
			ch.violation("read failure", key, fmt.Sprintf("%s via gateway %d in phase %s with only %v unavailable: %v", key, gw, phase, unavail, err))
		}
	}
}

func describe(notFound bool, sum [32]byte) string {
	if notFound {
		return "NoSuchKey"
	}
	return fmt.Sprintf("sha256 %x", sum[:6])
}

func (v version) String() string {
	switch {
	case v.none:
		return "nothing"
	case v.deleted:
		return "a delete"
	}
	return fmt.Sprintf("%d bytes of seed %d (sha256 %x)", v.size, v.seed, v.sum[:6])
}

// unavailable returns the nodes of key (under any map used) that were
// faulted during [from, to] or during the writing of any of vs, or wiped
// after it.
func (ch *chaos) unavailable(key string, from, to time.Time, vs []version) []string {
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
		bad := ch.faultedLocked(id, from, to)
		for _, v := range vs {
			if v.none {
				continue
			}
			bad = bad || ch.faultedLocked(id, v.from, v.to)
			for _, w := range ch.wipes[id] {
				bad = bad || w.After(v.from)
			}
		}
		if bad {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (ch *chaos) faultedLocked(id string, from, to time.Time) bool {
	for _, f := range ch.faults[id] {
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
	case "lost acknowledged write":
		ch.lost++
	default:
		ch.unexcused++
	}
	if len(ch.bad) < 20 {
		ch.bad = append(ch.bad, what+": "+detail)
	}
}

// report prints the summary and fails the test on any violation.
func (ch *chaos) report() {
	t := ch.t
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "chaos run of %v:\n", time.Since(ch.start).Round(time.Second))
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
	fmt.Fprintf(&b, "  acknowledged writes lost: %d\n", ch.lost)
	fmt.Fprintf(&b, "  reads returning wrong bytes: %d\n", ch.wrong)
	fmt.Fprintf(&b, "  read failures with at most p nodes of the object unavailable: %d\n", ch.unexcused)
	t.Log(b.String())
	for _, s := range ch.bad {
		t.Error(s)
	}
	if ch.lost+ch.wrong+ch.unexcused > 0 {
		t.Errorf("chaos run failed; replay with KINTSUGI_CHAOS_SEED (see the seed above)")
	}
}
