package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/fanout"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/scrubber"
)

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
	m, err := a.loadMap(ctx)
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
	if a.rc != nil {
		return a.raftStatus(ctx, rep)
	}
	if a.o.json {
		return writeJSON(a.env.stdout, rep)
	}
	printStatus(a.env.stdout, rep)
	return nil
}

// probeAll asks every node that was not removed for its health.
func (a *admin) probeAll(ctx context.Context, m *placement.Map) []nodeReport {
	out := make([]nodeReport, len(m.Nodes))
	fanout.Each(len(m.Nodes), 0, func(i int) {
		n := m.Nodes[i]
		out[i] = nodeReport{ID: n.ID, Addr: n.Addr, Zone: n.Zone, State: n.State, Health: "-"}
		if n.State == placement.StateRemoved {
			return
		}
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
				disk = fmt.Sprintf("%s of %s (%.0f%%)", sizeStr(int64(used)), sizeStr(int64(n.DiskTotal)), 100*float64(used)/float64(n.DiskTotal))
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
