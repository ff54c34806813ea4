package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/scrubber"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// exitConflict is the exit code of an admin change that lost a race: the
// map changed after it was read, or a node holds a conflicting map.
const exitConflict = 3

// adminLockWait bounds how long a change waits for another admin's lock.
const adminLockWait = 30 * time.Second

// adminOpts are the flags every admin command takes, before or after its
// name.
type adminOpts struct {
	cluster    string
	secretFile string
	caFile     string
	json       bool
	timeout    time.Duration
	expect     int64 // -1: the epoch read at the start
}

func (o *adminOpts) register(fs *flag.FlagSet) {
	fs.StringVar(&o.cluster, "cluster", o.cluster, "cluster map file (YAML, required)")
	fs.StringVar(&o.secretFile, "secret-file", o.secretFile, "file holding the cluster secret (default: $KINTSUGI_CLUSTER_SECRET)")
	fs.StringVar(&o.caFile, "ca-file", o.caFile, "PEM CA certificates to trust for nodes at https:// addresses (default: system roots)")
	fs.BoolVar(&o.json, "json", o.json, "print JSON instead of text")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "deadline of each call to a node")
	fs.Int64Var(&o.expect, "expect-epoch", o.expect, "apply a change only if the map is at this epoch (default: the epoch read when the command starts)")
}

const adminUsage = `usage: kintsugi admin --cluster FILE [--json] <command> [flags]

commands:
  status [--scrubber HOST:PORT]          nodes with state, health, epoch and disk
  nodes add --id ID --addr HOST:PORT --zone Z [--weight W]
  nodes drain ID                         stop placing new shards on ID; the rebalancer moves its shards off
  nodes remove ID [--force]              remove a drained node (--force: a dead one; its shards are rebuilt)
  map show                               print the cluster map
  map push                               offer the file's map to every node again

A change writes the cluster file atomically under a lock, only if its epoch
is still the one read (else exit 3, "conflict: ..."), then offers the new map
to every node; nodes keep only a higher epoch.
`

// runAdmin is `kintsugi admin`: cluster status and map changes.
func runAdmin(ctx context.Context, env *environ, args []string) error {
	o := &adminOpts{timeout: 5 * time.Second, expect: -1}
	fs := flag.NewFlagSet("kintsugi admin", flag.ContinueOnError)
	o.register(fs)
	fs.Usage = func() { fmt.Fprint(fs.Output(), adminUsage); fs.PrintDefaults() }
	fs.SetOutput(env.stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitError{code: exitUsage}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return exitError{code: exitUsage}
	}
	cmd, rest := rest[0], rest[1:]
	if cmd == "nodes" || cmd == "map" {
		if len(rest) == 0 {
			return usageErr("%s: missing subcommand", cmd)
		}
		cmd, rest = cmd+" "+rest[0], rest[1:]
	}
	a := &admin{env: env, o: o}
	switch cmd {
	case "status":
		return a.status(ctx, rest)
	case "nodes add":
		return a.nodesAdd(ctx, rest)
	case "nodes drain":
		return a.nodesDrain(ctx, rest)
	case "nodes remove":
		return a.nodesRemove(ctx, rest)
	case "map show":
		return a.mapShow(rest)
	case "map push":
		return a.mapPush(ctx, rest)
	}
	return usageErr("unknown command %q (see kintsugi admin -h)", cmd)
}

// admin runs one admin command.
type admin struct {
	env  *environ
	o    *adminOpts
	opts *client.Options // for node clients
}

// parse parses a subcommand's flags (the shared ones included) and returns
// its positional arguments, checking there are want of them.
func (a *admin) parse(name string, fs *flag.FlagSet, args []string, want int, usage string) ([]string, error) {
	a.o.register(fs)
	fs.SetOutput(a.env.stderr)
	fs.Usage = func() { fmt.Fprintf(fs.Output(), "usage: kintsugi admin %s\n", usage); fs.PrintDefaults() }
	// Flags may follow the positional arguments too (nodes remove ID --force).
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, exitError{code: exitUsage}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != want {
		return nil, usageErr("%s: want %d argument(s), got %d (usage: kintsugi admin %s)", name, want, len(pos), usage)
	}
	if a.o.cluster == "" {
		return nil, usageErr("--cluster is required")
	}
	secret, err := clusterSecret(a.env, a.o.secretFile)
	if err != nil {
		return nil, err
	}
	if a.opts, err = nodeClientOptions(secret, a.o.caFile); err != nil {
		return nil, err
	}
	return pos, nil
}

func (a *admin) client(n placement.Node) *client.Client {
	return client.New(n.Addr, a.opts)
}

// nodeReport is one node as status shows it.
type nodeReport struct {
	ID        string `json:"id"`
	Addr      string `json:"addr"`
	Zone      string `json:"zone"`
	State     string `json:"state"`  // in the map
	Health    string `json:"health"` // "up", "down", "wrong node", "-" (removed: not asked)
	Epoch     uint64 `json:"epoch"`  // the map epoch the node stores
	Objects   int64  `json:"objects"`
	DiskFree  uint64 `json:"disk_free"`
	DiskTotal uint64 `json:"disk_total"`
	Error     string `json:"error,omitempty"`
}

// statusReport is the output of status.
type statusReport struct {
	File         string          `json:"file"`
	Epoch        uint64          `json:"epoch"`
	DataShards   int             `json:"data_shards"`
	ParityShards int             `json:"parity_shards"`
	WriteQuorum  int             `json:"write_quorum"`
	Partitions   int             `json:"partitions"`
	Nodes        []nodeReport    `json:"nodes"`
	Scrubber     json.RawMessage `json:"scrubber,omitempty"`
	ScrubberErr  string          `json:"scrubber_error,omitempty"`
	BelowFull    belowFull       `json:"below_full_redundancy"`
}

// belowFull is how many objects are below full redundancy (fewer than
// d+p healthy shards) and why, from the last scrub report available.
type belowFull struct {
	Objects *int64   `json:"objects"` // nil: unknown
	Source  string   `json:"source"`  // where the figure comes from, or why it is unknown
	Why     []string `json:"why,omitempty"`
}

// belowFullOf reads the figure from a scrubber daemon's /status (raw, or
// the error fetching it), the only place a cluster-wide scrub report
// lives: a cron `kintsugi scrub` leaves its report in its own log and
// state directory, which may be on another host.
func belowFullOf(addr string, raw json.RawMessage, fetchErr string, n int) belowFull {
	switch {
	case addr == "":
		return belowFull{Source: "unknown: no scrub report (name a scrubber daemon with --scrubber HOST:PORT)"}
	case fetchErr != "":
		return belowFull{Source: "unknown: " + fetchErr}
	}
	var st scrubber.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return belowFull{Source: fmt.Sprintf("unknown: scrubber %s: %v", addr, err)}
	}
	lp := st.LastPass
	if lp == nil {
		return belowFull{Source: fmt.Sprintf("unknown: scrubber %s has finished no pass yet", addr)}
	}
	objects, why := lp.BelowFull(n)
	return belowFull{
		Objects: &objects,
		Source:  fmt.Sprintf("scrubber %s, pass finished %s", addr, lp.Finished.UTC().Format(time.RFC3339)),
		Why:     why,
	}
}

func (a *admin) status(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kintsugi admin status", flag.ContinueOnError)
	scrub := fs.String("scrubber", "", "HOST:PORT of a `kintsugi scrubber` whose /status to include")
	if _, err := a.parse("status", fs, args, 0, "status [--scrubber HOST:PORT]"); err != nil {
		return err
	}
	m, _, err := readClusterFile(a.o.cluster)
	if err != nil {
		return err
	}
	rep := statusReport{
		File: a.o.cluster, Epoch: m.Epoch, DataShards: m.DataShards, ParityShards: m.ParityShards,
		WriteQuorum: m.WriteQuorum, Partitions: m.Partitions, Nodes: a.probeAll(ctx, m),
	}
	if *scrub != "" {
		rep.Scrubber, err = a.scrubberStatus(ctx, *scrub)
		if err != nil {
			rep.ScrubberErr = err.Error()
		}
	}
	rep.BelowFull = belowFullOf(*scrub, rep.Scrubber, rep.ScrubberErr, m.N())
	if a.o.json {
		return writeJSON(a.env.stdout, rep)
	}
	printStatus(a.env.stdout, rep)
	return nil
}

// probeAll asks every node that was not removed for its health.
func (a *admin) probeAll(ctx context.Context, m *placement.Map) []nodeReport {
	out := make([]nodeReport, len(m.Nodes))
	var wg sync.WaitGroup
	for i, n := range m.Nodes {
		out[i] = nodeReport{ID: n.ID, Addr: n.Addr, Zone: n.Zone, State: n.State, Health: "-"}
		if n.State == placement.StateRemoved {
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, a.o.timeout)
			defer cancel()
			h, err := a.client(n).Health(cctx)
			r := &out[i]
			switch {
			case err != nil:
				r.Health, r.Error = "down", err.Error()
			case h.ID != n.ID:
				r.Health, r.Error = "wrong node", fmt.Sprintf("the node at %s says it is %q", n.Addr, h.ID)
			default:
				r.Health = "up"
				r.Epoch, r.Objects, r.DiskFree, r.DiskTotal = h.Epoch, h.Objects, h.DiskFree, h.DiskTotal
			}
		})
	}
	wg.Wait()
	return out
}

// scrubberStatus fetches a scrubber daemon's /status as it is.
func (a *admin) scrubberStatus(ctx context.Context, addr string) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, a.o.timeout)
	defer cancel()
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(addr, "/")+"/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !json.Valid(body) {
		return nil, fmt.Errorf("scrubber %s: %s", addr, resp.Status)
	}
	return body, nil
}

func printStatus(w io.Writer, r statusReport) {
	states := map[string]int{}
	for _, n := range r.Nodes {
		states[n.State]++
	}
	fmt.Fprintf(w, "cluster map %s: epoch %d, %d+%d erasure coding, write quorum %d, %d partitions\n",
		r.File, r.Epoch, r.DataShards, r.ParityShards, r.WriteQuorum, r.Partitions)
	fmt.Fprintf(w, "nodes: %d active, %d draining, %d removed\n\n",
		states[placement.StateActive], states[placement.StateDraining], states[placement.StateRemoved])
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDR\tZONE\tSTATE\tHEALTH\tEPOCH\tOBJECTS\tDISK USED")
	var behind, problems []string
	for _, n := range r.Nodes {
		epoch, objects, disk := "-", "-", "-"
		if n.Health == "up" {
			epoch, objects = fmt.Sprint(n.Epoch), fmt.Sprint(n.Objects)
			if n.DiskTotal > 0 {
				used := n.DiskTotal - n.DiskFree
				disk = fmt.Sprintf("%s of %s (%.0f%%)", bytesHuman(used), bytesHuman(n.DiskTotal), 100*float64(used)/float64(n.DiskTotal))
			}
			if n.Epoch < r.Epoch {
				behind = append(behind, fmt.Sprintf("%s (%d)", n.ID, n.Epoch))
			}
		}
		if n.Error != "" {
			problems = append(problems, n.ID+": "+n.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.Addr, n.Zone, n.State, n.Health, epoch, objects, disk)
	}
	tw.Flush()
	if len(behind) > 0 {
		fmt.Fprintf(w, "\nnodes with an older map: %s (gateways' heartbeats or `kintsugi admin map push` bring them up to date)\n", strings.Join(behind, ", "))
	}
	for _, p := range problems {
		fmt.Fprintf(w, "\n%s", p)
	}
	if len(problems) > 0 {
		fmt.Fprintln(w)
	}
	switch {
	case r.ScrubberErr != "":
		fmt.Fprintf(w, "\nscrubber: %s\n", r.ScrubberErr)
	case r.Scrubber != nil:
		printScrubber(w, r.Scrubber, r.Epoch)
	}
	fmt.Fprintln(w)
	printBelowFull(w, r.BelowFull)
}

// printBelowFull writes the line of objects below full redundancy.
func printBelowFull(w io.Writer, b belowFull) {
	switch {
	case b.Objects == nil:
		fmt.Fprintf(w, "below full redundancy: %s\n", b.Source)
	case len(b.Why) == 0:
		fmt.Fprintf(w, "below full redundancy: %d objects (%s)\n", *b.Objects, b.Source)
	default:
		fmt.Fprintf(w, "below full redundancy: %d objects (%s): %s\n", *b.Objects, b.Source, strings.Join(b.Why, "; "))
	}
}

// printScrubber summarises a scrubber daemon's /status: its pass, the
// rebalance in flight and the last pass.
func printScrubber(w io.Writer, raw json.RawMessage, epoch uint64) {
	var st scrubber.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		fmt.Fprintf(w, "\nscrubber:\n%s\n", indentJSON(raw))
		return
	}
	fmt.Fprintf(w, "\nscrubber: map epoch %d", st.MapEpoch)
	if st.MapEpoch < epoch {
		fmt.Fprintf(w, " (behind the file's %d; it re-reads its cluster file)", epoch)
	}
	fmt.Fprintln(w)
	moves := func(planned, done, failed, bytes int64) string {
		return fmt.Sprintf("%d of %d shard moves done (%s moved), %d failed", done, planned, sizeStr(bytes), failed)
	}
	if p := st.Progress; st.Running && p != nil {
		fmt.Fprintf(w, "  pass running:  phase %s, %d of about %d objects checked, %d queued for repair or moves\n",
			p.Phase, p.Objects, max(p.Estimated, p.Objects), p.Queue)
		fmt.Fprintf(w, "  rebalance:     %s, %d in flight\n", moves(p.MovesPlanned, p.MovesDone, p.MovesFailed, p.BytesMoved), st.MovesInFlight)
	} else {
		fmt.Fprintln(w, "  pass running:  none")
	}
	if lp := st.LastPass; lp != nil {
		state := "complete"
		switch {
		case lp.UnrecoverableCount > 0:
			state = fmt.Sprintf("%d objects CANNOT BE REPAIRED", lp.UnrecoverableCount)
		case lp.IncompleteCount > 0:
			state = fmt.Sprintf("incomplete (%d problems)", lp.IncompleteCount)
		}
		fmt.Fprintf(w, "  last pass:     %s, finished %s, %d objects, epoch %d\n",
			state, lp.Finished.Local().Format(time.DateTime), lp.Objects, lp.MapEpoch)
		fmt.Fprintf(w, "  its rebalance: %s, %d old copies dropped\n", moves(lp.MovesPlanned, lp.MovesDone, lp.MovesFailed, lp.BytesMoved), lp.CopiesDropped)
	}
	var levels []string
	for _, l := range st.Redundancy {
		levels = append(levels, fmt.Sprintf("%s: %d", l.Level, l.Objects))
	}
	fmt.Fprintf(w, "  redundancy:    %s\n", strings.Join(levels, ", "))
	if !st.NextPass.IsZero() {
		fmt.Fprintf(w, "  next pass:     %s\n", st.NextPass.Local().Format(time.DateTime))
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "  last error:    %s\n", st.LastError)
	}
}

func indentJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "  ", "  "); err != nil {
		return string(raw)
	}
	return "  " + b.String()
}

func bytesHuman(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func (a *admin) nodesAdd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kintsugi admin nodes add", flag.ContinueOnError)
	id := fs.String("id", "", "node id (required)")
	addr := fs.String("addr", "", "HOST:PORT the node serves on (required)")
	zone := fs.String("zone", "", "failure domain (required)")
	weight := fs.Float64("weight", 1, "relative share of placements")
	if _, err := a.parse("nodes add", fs, args, 0, "nodes add --id ID --addr HOST:PORT --zone Z [--weight W]"); err != nil {
		return err
	}
	if *id == "" || *addr == "" || *zone == "" {
		return usageErr("nodes add: --id, --addr and --zone are required")
	}
	node := placement.Node{ID: *id, Addr: *addr, Zone: *zone, Weight: *weight, State: placement.StateActive}
	// A node that answers must be the one named: adding the wrong address
	// would place shards on a stranger.
	cctx, cancel := context.WithTimeout(ctx, a.o.timeout)
	h, err := a.client(node).Health(cctx)
	cancel()
	switch {
	case err == nil && h.ID != node.ID:
		return fmt.Errorf("nodes add: the node at %s says it is %q, not %q", node.Addr, h.ID, node.ID)
	case err != nil:
		fmt.Fprintf(a.env.stderr, "warning: %s does not answer yet (%v); adding it anyway\n", node.Addr, err)
	}
	return a.change(ctx, "add "+node.ID, func(m *placement.Map) error {
		if old, ok := m.Node(node.ID); ok {
			if old.State == placement.StateRemoved {
				return fmt.Errorf("node id %s belonged to a removed node; give the new node another id", node.ID)
			}
			return fmt.Errorf("node %s is already in the map (%s)", node.ID, old.State)
		}
		m.Nodes = append(m.Nodes, node)
		return nil
	})
}

func (a *admin) nodesDrain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kintsugi admin nodes drain", flag.ContinueOnError)
	pos, err := a.parse("nodes drain", fs, args, 1, "nodes drain ID")
	if err != nil {
		return err
	}
	id := pos[0]
	return a.change(ctx, "drain "+id, func(m *placement.Map) error {
		n := mapNode(m, id)
		switch {
		case n == nil:
			return fmt.Errorf("no node %s in the map", id)
		case n.State != placement.StateActive:
			return fmt.Errorf("node %s is %s, not active", id, n.State)
		}
		n.State = placement.StateDraining
		return nil
	})
}

func (a *admin) nodesRemove(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kintsugi admin nodes remove", flag.ContinueOnError)
	force := fs.Bool("force", false, "remove the node even if it is not drained (a dead node: its shards are rebuilt on the others)")
	pos, err := a.parse("nodes remove", fs, args, 1, "nodes remove ID [--force]")
	if err != nil {
		return err
	}
	id := pos[0]
	m, _, err := readClusterFile(a.o.cluster)
	if err != nil {
		return err
	}
	n := mapNode(m, id)
	if n != nil && n.State == placement.StateDraining && !*force {
		// Drained means the rebalancer moved every shard off it.
		cctx, cancel := context.WithTimeout(ctx, a.o.timeout)
		h, err := a.client(*n).Health(cctx)
		cancel()
		switch {
		case err != nil:
			return fmt.Errorf("nodes remove: cannot tell whether %s is drained: %v (use --force if it is dead)", id, err)
		case h.Objects > 0:
			return fmt.Errorf("nodes remove: %s still holds %d objects; wait for the rebalancer to move them (see status), or use --force", id, h.Objects)
		}
	}
	err = a.change(ctx, "remove "+id, func(m *placement.Map) error {
		n := mapNode(m, id)
		switch {
		case n == nil:
			return fmt.Errorf("no node %s in the map", id)
		case n.State == placement.StateRemoved:
			return fmt.Errorf("node %s is already removed", id)
		case n.State == placement.StateActive && !*force:
			return fmt.Errorf("node %s is active: drain it first, or use --force if it is dead", id)
		}
		n.State = placement.StateRemoved
		return nil
	})
	if err == nil && *force {
		fmt.Fprintf(a.env.stderr, "%s removed without draining: the scrubber rebuilds its shards on the nodes the map now names\n", id)
	}
	return err
}

func (a *admin) mapShow(args []string) error {
	fs := flag.NewFlagSet("kintsugi admin map show", flag.ContinueOnError)
	if _, err := a.parse("map show", fs, args, 0, "map show"); err != nil {
		return err
	}
	m, _, err := readClusterFile(a.o.cluster)
	if err != nil {
		return err
	}
	if a.o.json {
		return writeJSON(a.env.stdout, m)
	}
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	_, err = a.env.stdout.Write(b)
	return err
}

func (a *admin) mapPush(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kintsugi admin map push", flag.ContinueOnError)
	if _, err := a.parse("map push", fs, args, 0, "map push"); err != nil {
		return err
	}
	m, _, err := readClusterFile(a.o.cluster)
	if err != nil {
		return err
	}
	return a.report(changeResult{Change: "push", Epoch: m.Epoch, Previous: m.Epoch, Push: a.push(ctx, m)})
}

func mapNode(m *placement.Map, id string) *placement.Node {
	for i := range m.Nodes {
		if m.Nodes[i].ID == id {
			return &m.Nodes[i]
		}
	}
	return nil
}

// changeResult is the outcome of a map change.
type changeResult struct {
	Change   string       `json:"change"`
	Epoch    uint64       `json:"epoch"`
	Previous uint64       `json:"previous"`
	Push     []pushResult `json:"push"`
}

// pushResult is one node's answer to the new map.
type pushResult struct {
	Node     string `json:"node"`
	Result   string `json:"result"` // "stored", "conflict", "unreachable"
	Error    string `json:"error,omitempty"`
	conflict bool
}

// change applies edit to the cluster map as one compare-and-set:
//
//  1. read the file and note its epoch E (or require --expect-epoch);
//  2. apply edit to a copy, set epoch E+1 and validate it;
//  3. take the exclusive lock (FILE.lock) and read the file again: if it
//     is no longer the map read in step 1, another change won, and this one
//     fails with exit code 3 without writing anything;
//  4. write the new map to a temporary file, fsync it, rename it over the
//     file and fsync the directory, then release the lock;
//  5. offer the new map to every node that was not removed; a node that
//     holds a map of the same epoch with other content, or a newer one,
//     refuses it (exit code 3 as well).
func (a *admin) change(ctx context.Context, what string, edit func(m *placement.Map) error) error {
	m0, raw0, err := readClusterFile(a.o.cluster)
	if err != nil {
		return err
	}
	if a.o.expect >= 0 && uint64(a.o.expect) != m0.Epoch {
		return conflictErr(uint64(a.o.expect), m0.Epoch)
	}
	m := m0.WithDefaults()
	if err := edit(m); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	m.Epoch = m0.Epoch + 1
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%s: the new map would be invalid: %w", what, err)
	}
	data, err := m.Marshal()
	if err != nil {
		return err
	}
	unlock, err := lockFile(ctx, a.o.cluster+".lock", adminLockWait)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	cur, raw, err := readClusterFile(a.o.cluster)
	if err == nil && (cur.Epoch != m0.Epoch || !bytes.Equal(raw, raw0)) {
		err = conflictErr(m0.Epoch, cur.Epoch)
	}
	if err == nil {
		err = writeFileAtomic(a.o.cluster, data)
	}
	unlock()
	if err != nil {
		return err
	}
	return a.report(changeResult{Change: what, Epoch: m.Epoch, Previous: m0.Epoch, Push: a.push(ctx, m)})
}

func conflictErr(read, now uint64) error {
	if read == now {
		return exitError{code: exitConflict, err: fmt.Errorf("conflict: the cluster file changed at epoch %d while this change was prepared; check it and run the command again", now)}
	}
	return exitError{code: exitConflict, err: fmt.Errorf("conflict: map epoch changed from %d to %d; check the new map and run the command again", read, now)}
}

// push offers m to every node of m that was not removed, concurrently.
func (a *admin) push(ctx context.Context, m *placement.Map) []pushResult {
	var nodes []placement.Node
	for _, n := range m.Nodes {
		if n.State != placement.StateRemoved {
			nodes = append(nodes, n)
		}
	}
	out := make([]pushResult, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, a.o.timeout)
			defer cancel()
			err := a.client(n).PutMap(cctx, m)
			r := pushResult{Node: n.ID, Result: "stored"}
			switch {
			case err == nil:
			case kerr.Is(kerr.Conflict, err):
				r.Result, r.Error, r.conflict = "conflict", err.Error(), true
			default:
				r.Result, r.Error = "unreachable", err.Error()
			}
			out[i] = r
		})
	}
	wg.Wait()
	return out
}

// report prints a change's outcome and turns node conflicts into exit 3.
func (a *admin) report(r changeResult) error {
	var conflicts, unreachable []string
	stored := 0
	for _, p := range r.Push {
		switch {
		case p.conflict:
			conflicts = append(conflicts, p.Node+": "+p.Error)
		case p.Error != "":
			unreachable = append(unreachable, p.Node)
		default:
			stored++
		}
	}
	if a.o.json {
		if err := writeJSON(a.env.stdout, r); err != nil {
			return err
		}
	} else {
		if r.Epoch != r.Previous {
			fmt.Fprintf(a.env.stdout, "%s: map epoch %d -> %d\n", r.Change, r.Previous, r.Epoch)
		}
		fmt.Fprintf(a.env.stdout, "map epoch %d stored on %d of %d nodes\n", r.Epoch, stored, len(r.Push))
	}
	if len(unreachable) > 0 {
		slices.Sort(unreachable)
		fmt.Fprintf(a.env.stderr, "warning: not reachable: %s; they get the map from the gateways' heartbeats or `kintsugi admin map push`\n", strings.Join(unreachable, ", "))
	}
	if len(conflicts) > 0 {
		slices.Sort(conflicts)
		return exitError{code: exitConflict, err: fmt.Errorf("conflict: nodes refused map epoch %d (another admin changed the cluster from another copy of the map; make the next change from the map that won):\n  %s",
			r.Epoch, strings.Join(conflicts, "\n  "))}
	}
	return nil
}

// readClusterFile reads and parses the cluster map file, returning its raw
// bytes too.
func readClusterFile(path string) (*placement.Map, []byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, usageErr("--cluster: %v", err)
	}
	m, err := placement.Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, raw, nil
}

// writeFileAtomic replaces path with data: a reader sees the old file or
// the new one, and after a crash one of them is on disk whole.
func writeFileAtomic(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
