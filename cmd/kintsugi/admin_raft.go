package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/kintsugi-store/kintsugi/cluster"
	"github.com/kintsugi-store/kintsugi/placement"
)

// The admin against a Raft-held map (docs/raft.md). Once `admin init` has
// seeded the group, the map lives in the nodes' Raft log and every command
// runs against one node: --endpoint HOST:PORT, or the first node of the
// --cluster file whose group is initialised. A change is one log entry,
// applied by the leader to the map current then; --expect-epoch makes it a
// compare-and-set that exits 3 when another change came first. Before
// init, --cluster FILE works as it always did.

// raftFindWait bounds the search for an initialised group among the
// --cluster file's nodes.
const raftFindWait = 3 * time.Second

// useRaft points a at the Raft group: the --endpoint node, or a node of
// the cluster file whose group holds a map. It leaves a.rc nil for a
// cluster not yet initialised (file mode).
func (a *admin) useRaft() error {
	if a.o.endpoint != "" {
		a.rc = cluster.NewClient(a.o.endpoint, a.opts)
		return nil
	}
	m, _, err := readClusterFile(a.o.cluster)
	if err != nil {
		return nil // the command reports the file's problem itself
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(a.o.timeout, raftFindWait))
	defer cancel()
	found := make(chan *cluster.Client, len(m.Nodes))
	var wg sync.WaitGroup
	for _, n := range m.Nodes {
		if n.State == placement.StateRemoved {
			continue
		}
		wg.Go(func() {
			c := cluster.NewClient(n.Addr, a.opts)
			if st, err := c.LocalStatus(ctx); err == nil && st.Epoch > 0 {
				found <- c
			}
		})
	}
	go func() { wg.Wait(); close(found) }()
	if c, ok := <-found; ok {
		a.rc = c
	}
	return nil
}

// loadMap returns the cluster map: the group's, or the file's.
func (a *admin) loadMap(ctx context.Context) (*placement.Map, error) {
	if a.rc == nil {
		m, _, err := readClusterFile(a.o.cluster)
		return m, err
	}
	ctx, cancel := context.WithTimeout(ctx, a.o.timeout)
	defer cancel()
	m, err := a.rc.Map(ctx, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("reading the map from %s: %w", a.rc.Addr(), err)
	}
	return m, nil
}

// raftChange commits c through the group and reports when the nodes hold
// the new map.
func (a *admin) raftChange(ctx context.Context, c placement.Change) error {
	if a.o.expect >= 0 {
		c = c.Expecting(uint64(a.o.expect))
	}
	// --timeout bounds the whole change, the wait for a leader included;
	// without it, long enough for the node asked to wait out an election.
	limit := 30 * time.Second
	if a.o.timeoutSet {
		limit = a.o.timeout
	}
	cctx, cancel := context.WithTimeout(ctx, limit)
	m, err := a.rc.Apply(cctx, c)
	cancel()
	var ce *placement.ConflictError
	var nl *cluster.NotLeaderError
	var ou *cluster.OutcomeUnknownError
	switch {
	case errors.As(err, &ce):
		return conflictErr(ce.Expected, ce.Current)
	case errors.As(err, &nl):
		return fmt.Errorf("%s: %v; a map change needs a quorum of the voters, and nothing was changed", c, err)
	case errors.As(err, &ou):
		return err
	case errors.Is(err, placement.ErrInvalidChange), errors.Is(err, cluster.ErrNotInitialised),
		errors.Is(err, cluster.ErrNoRaft), errors.Is(err, cluster.ErrExpired):
		return fmt.Errorf("%s: %w", c, err)
	case err != nil:
		// No answer, or one that does not say: the change may have been
		// committed.
		return &cluster.OutcomeUnknownError{Change: c.String(), Err: err}
	}
	return a.report(changeResult{Change: c.String(), Epoch: m.Epoch, Previous: m.Epoch - 1, Push: a.awaitEpoch(ctx, m)})
}

// awaitEpoch waits (up to the call timeout) for every node of m that was
// not removed to report m's epoch, and reports each as a push would.
func (a *admin) awaitEpoch(ctx context.Context, m *placement.Map) []pushResult {
	var out []pushResult
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(ctx, a.o.timeout)
	defer cancel()
	for _, n := range m.Nodes {
		if n.State == placement.StateRemoved {
			continue
		}
		wg.Go(func() {
			r := pushResult{Node: n.ID, Result: "stored"}
			for {
				h, err := a.client(n).Health(ctx)
				if err == nil && h.Epoch >= m.Epoch {
					break
				}
				if ctx.Err() != nil {
					r.Result = "unreachable"
					if r.Error = fmt.Sprintf("node at epoch %d", h.Epoch); err != nil {
						r.Error = err.Error()
					}
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			mu.Lock()
			out = append(out, r)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(out, func(x, y pushResult) int { return strings.Compare(x.Node, y.Node) })
	return out
}

// raftReport is status's answer with a Raft-held map: the usual report
// and the group's state.
type raftReport struct {
	statusReport
	Endpoint  string           `json:"endpoint"`
	Leader    string           `json:"leader"`
	Term      uint64           `json:"term"`
	Voters    []string         `json:"voters"`
	Nonvoters []string         `json:"nonvoters"`
	Members   []cluster.Member `json:"voter_status"`
	Quorum    bool             `json:"quorum"`
}

// raftStatus prints rep with the group's state.
func (a *admin) raftStatus(ctx context.Context, rep statusReport) error {
	cctx, cancel := context.WithTimeout(ctx, a.o.timeout)
	st, err := a.rc.Status(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("raft status from %s: %w", a.rc.Addr(), err)
	}
	rep.File = "raft via " + a.rc.Addr()
	r := raftReport{statusReport: rep, Endpoint: a.rc.Addr(), Leader: st.Leader, Term: st.Term,
		Voters: st.Voters, Nonvoters: st.Nonvoters, Members: st.Members, Quorum: st.Quorum}
	if a.o.json {
		return writeJSON(a.env.stdout, r)
	}
	printStatus(a.env.stdout, rep)
	printRaft(a.env.stdout, r)
	return nil
}

func printRaft(w io.Writer, r raftReport) {
	leader, quorum := r.Leader, "up"
	if leader == "" {
		leader = "NONE"
	}
	if !r.Quorum {
		quorum = "LOST: map changes fail until a majority of the voters is back"
	}
	fmt.Fprintf(w, "\nraft: leader %s, term %d, quorum %s\n", leader, r.Term, quorum)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VOTER\tSTATE\tLAST INDEX\tAPPLIED\tEPOCH")
	for _, m := range r.Members {
		if !m.Reachable {
			fmt.Fprintf(tw, "%s\tunreachable\t-\t-\t-\n", m.ID)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", m.ID, m.State, m.LastIndex, m.Applied, m.Epoch)
	}
	tw.Flush()
	if len(r.Nonvoters) > 0 {
		fmt.Fprintf(w, "non-voters: %s\n", strings.Join(r.Nonvoters, ", "))
	}
}

// raftPushFile replaces the group's map with the content of path, as one
// change: the way to make an edit no other command makes. The file's
// epoch is ignored; --expect-epoch applies. The --cluster file is never
// pushed on its own: it is only the list of nodes to find the cluster by,
// and pushing an old copy would undo every change since.
func (a *admin) raftPushFile(ctx context.Context, path string) error {
	if path == "" {
		return usageErr("map push: the map is held by Raft; name the edited map with --file (see `kintsugi admin map show`)")
	}
	m, _, err := readClusterFile(path)
	if err != nil {
		return err
	}
	return a.raftChange(ctx, placement.ReplaceMap(m))
}

// adminInit is `admin init --cluster FILE`: seed a new group with the
// file's map, once, on the map's cluster.Seed node.
func (a *admin) adminInit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kintsugi admin init", flag.ContinueOnError)
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the voters to join")
	if _, err := a.parse("init", fs, args, 0, "init --cluster FILE"); err != nil {
		return err
	}
	if a.o.cluster == "" {
		return usageErr("init: --cluster FILE is required")
	}
	m, _, err := readClusterFile(a.o.cluster)
	if err != nil {
		return err
	}
	// The group is seeded on one node chosen from the map alone, so that
	// two inits of the map, from any hosts and whatever the order of its
	// file, both go to it and its Bootstrap lets only one of them win.
	// Seeding elsewhere when it does not answer could start a second group.
	sn, ok := cluster.Seed(m)
	if !ok {
		return errors.New("init: the map has no active or draining node to seed the group on")
	}
	var seed *cluster.Client
	// Every node answering must be an empty member: one that holds a map
	// belongs to a group already, and seeding another would split the
	// cluster in two.
	for _, n := range m.Nodes {
		if n.State == placement.StateRemoved {
			continue
		}
		c := cluster.NewClient(n.Addr, a.opts)
		cctx, cancel := context.WithTimeout(ctx, a.o.timeout)
		st, err := c.LocalStatus(cctx)
		cancel()
		switch {
		case errors.Is(err, cluster.ErrNoRaft):
			return fmt.Errorf("init: node %s runs without a Raft member (start it with --raft-listen)", n.ID)
		case err != nil && n.ID == sn.ID:
			return fmt.Errorf("init: node %s, which seeds the group (the lowest id among the map's active nodes, so that every init of this map picks the same node), does not answer: %v; start it (or, if it is gone for good, mark it removed in the file) and run init again; nothing was changed", n.ID, err)
		case err != nil:
			fmt.Fprintf(a.env.stderr, "warning: %s does not answer (%v); the leader adds it when it does\n", n.ID, err)
			continue
		case st.Epoch > 0 || st.Leader != "":
			return fmt.Errorf("init: %w (node %s is at map epoch %d, leader %q); use `kintsugi admin --endpoint %s`", cluster.ErrInitialised, n.ID, st.Epoch, st.Leader, n.Addr)
		case n.ID == sn.ID && st.ID != n.ID:
			return fmt.Errorf("init: the node at %s, which should be %s and seed the group, says it is %q; fix the file; nothing was changed", n.Addr, n.ID, st.ID)
		}
		if n.ID == sn.ID {
			seed = c
		}
	}
	cctx, cancel := context.WithTimeout(ctx, max(a.o.timeout, 10*time.Second))
	got, err := seed.Init(cctx, m)
	cancel()
	if errors.Is(err, cluster.ErrInitialised) {
		return fmt.Errorf("init: %w: node %s, the seed, already belongs to a group (another init came first); use `kintsugi admin --endpoint %s`", err, sn.ID, seed.Addr())
	}
	if err != nil {
		return fmt.Errorf("init via %s: %w", seed.Addr(), err)
	}
	want := min(cluster.DefaultVoters, len(cluster.PickVoters(got, nil, cluster.DefaultVoters)))
	deadline := time.Now().Add(*wait)
	var st cluster.ClusterStatus
	for {
		sctx, cancel := context.WithTimeout(ctx, a.o.timeout)
		st, err = seed.Status(sctx)
		cancel()
		if err == nil && len(st.Voters) >= want && st.Quorum {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(a.env.stderr, "warning: after %v the group has voters %v (want %d); see `kintsugi admin status`\n", *wait, st.Voters, want)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if a.o.json {
		return writeJSON(a.env.stdout, st)
	}
	fmt.Fprintf(a.env.stdout, "initialised the cluster map at epoch %d via %s; leader %s, voters %s\n",
		got.Epoch, seed.Addr(), st.Leader, strings.Join(st.Voters, ", "))
	return nil
}
