package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/kintsugi-store/kintsugi/internal/fanout"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
)

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

// push offers m to every node of m that was not removed, concurrently.
func (a *admin) push(ctx context.Context, m *placement.Map) []pushResult {
	var nodes []placement.Node
	for _, n := range m.Nodes {
		if n.State != placement.StateRemoved {
			nodes = append(nodes, n)
		}
	}
	out := make([]pushResult, len(nodes))
	fanout.Each(len(nodes), 0, func(i int) {
		n := nodes[i]
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
		catchUp := "they get the map from the gateways' heartbeats or `kintsugi admin map push`"
		if a.rc != nil {
			catchUp = "they catch up from the Raft log when they are back"
		}
		fmt.Fprintf(a.env.stderr, "warning: not reachable: %s; %s\n", strings.Join(unreachable, ", "), catchUp)
	}
	if len(conflicts) > 0 {
		slices.Sort(conflicts)
		return exitError{code: exitConflict, err: fmt.Errorf("conflict: nodes refused map epoch %d (another admin changed the cluster from another copy of the map; make the next change from the map that won):\n  %s",
			r.Epoch, strings.Join(conflicts, "\n  "))}
	}
	return nil
}

func (a *admin) mapShow(args []string) error {
	fs := flag.NewFlagSet("kintsugi admin map show", flag.ContinueOnError)
	if _, err := a.parse("map show", fs, args, 0, "map show"); err != nil {
		return err
	}
	m, err := a.loadMap(context.Background())
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
	file := fs.String("file", "", "with a Raft-held map: the edited map (YAML) to install as the next epoch")
	if _, err := a.parse("map push", fs, args, 0, "map push [--file EDITED.yaml]"); err != nil {
		return err
	}
	if a.rc != nil {
		return a.raftPushFile(ctx, *file)
	}
	m, _, err := readClusterFile(a.o.cluster)
	if err != nil {
		return err
	}
	return a.report(changeResult{Change: "push", Epoch: m.Epoch, Previous: m.Epoch, Push: a.push(ctx, m)})
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
