package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/kintsugi-store/kintsugi/cluster"
	"github.com/kintsugi-store/kintsugi/placement"
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
	endpoint   string // a node of a Raft-held map (admin_raft.go)
	secretFile string
	caFile     string
	json       bool
	timeout    time.Duration
	timeoutSet bool  // --timeout given: it bounds a whole map change too
	expect     int64 // -1: the epoch read at the start
}

func (o *adminOpts) register(fs *flag.FlagSet) {
	fs.StringVar(&o.cluster, "cluster", o.cluster, "cluster map file (YAML); once the map is Raft-held, the list of nodes to find the cluster by")
	fs.StringVar(&o.endpoint, "endpoint", o.endpoint, "HOST:PORT of any storage node of a cluster whose map is Raft-held (instead of --cluster)")
	fs.StringVar(&o.secretFile, "secret-file", o.secretFile, "file holding the cluster secret (default: $KINTSUGI_CLUSTER_SECRET)")
	fs.StringVar(&o.caFile, "ca-file", o.caFile, "PEM CA certificates to trust for nodes at https:// addresses (default: system roots)")
	fs.BoolVar(&o.json, "json", o.json, "print JSON instead of text")
	fs.Var(timeoutFlag{o}, "timeout", "deadline of each call to a node; given, also of a whole map change once the map is Raft-held (else 30s)")
	fs.Int64Var(&o.expect, "expect-epoch", o.expect, "apply a change only if the map is at this epoch (default: the epoch read when the command starts)")
}

// timeoutFlag is --timeout, noting that it was given.
type timeoutFlag struct{ o *adminOpts }

func (f timeoutFlag) String() string {
	if f.o == nil {
		return ""
	}
	return f.o.timeout.String()
}

func (f timeoutFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	f.o.timeout, f.o.timeoutSet = d, true
	return nil
}

const adminUsage = `usage: kintsugi admin (--cluster FILE | --endpoint HOST:PORT) [--json] <command> [flags]

commands:
  init --cluster FILE                    seed the Raft group of the file's nodes with its map, once
  status [--scrubber HOST:PORT]          nodes with state, health, epoch and disk
  nodes add --id ID --addr HOST:PORT --zone Z [--weight W]
  nodes drain ID                         stop placing new shards on ID; the rebalancer moves its shards off
  nodes remove ID [--force]              remove a drained node (--force: a dead one; its shards are rebuilt)
  map show                               print the cluster map
  map push                               offer the file's map to every node again

A change writes the cluster file atomically under a lock, only if its epoch
is still the one read (else exit 3, "conflict: ..."), then offers the new map
to every node; nodes keep only a higher epoch.

Once init has run, the map is held by Raft on the nodes: every command runs
against --endpoint (or the first initialised node of --cluster), a change is
committed by the group's leader to the map current then, and --expect-epoch
makes it a compare-and-set (exit 3 when another change came first). map push
then replaces the map with the --cluster file's content.
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
	case "init":
		return a.adminInit(ctx, rest)
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
	rc   *cluster.Client // the Raft group's node; nil: the map is the file's
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
	if a.o.cluster == "" && a.o.endpoint == "" {
		return nil, usageErr("--cluster is required (or --endpoint HOST:PORT, a node of a cluster whose map is Raft-held)")
	}
	secret, err := clusterSecret(a.env, a.o.secretFile)
	if err != nil {
		return nil, err
	}
	if a.opts, err = nodeClientOptions(secret, a.o.caFile); err != nil {
		return nil, err
	}
	if err := a.useRaft(); err != nil {
		return nil, err
	}
	return pos, nil
}

func (a *admin) client(n placement.Node) *client.Client {
	return client.New(n.Addr, a.opts)
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
	return a.change(ctx, placement.AddNode(node))
}

func (a *admin) nodesDrain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kintsugi admin nodes drain", flag.ContinueOnError)
	pos, err := a.parse("nodes drain", fs, args, 1, "nodes drain ID")
	if err != nil {
		return err
	}
	return a.change(ctx, placement.DrainNode(pos[0]))
}

func (a *admin) nodesRemove(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kintsugi admin nodes remove", flag.ContinueOnError)
	force := fs.Bool("force", false, "remove the node even if it is not drained (a dead node: its shards are rebuilt on the others)")
	pos, err := a.parse("nodes remove", fs, args, 1, "nodes remove ID [--force]")
	if err != nil {
		return err
	}
	id := pos[0]
	m, err := a.loadMap(ctx)
	if err != nil {
		return err
	}
	if n, ok := m.Node(id); ok && n.State == placement.StateDraining && !*force {
		// Drained means the rebalancer moved every shard off it; only the
		// node can say so.
		cctx, cancel := context.WithTimeout(ctx, a.o.timeout)
		h, err := a.client(n).Health(cctx)
		cancel()
		switch {
		case err != nil:
			return fmt.Errorf("nodes remove: cannot tell whether %s is drained: %v (use --force if it is dead)", id, err)
		case h.Objects > 0:
			return fmt.Errorf("nodes remove: %s still holds %d objects; wait for the rebalancer to move them (see status), or use --force", id, h.Objects)
		}
	}
	err = a.change(ctx, placement.RemoveNode(id, *force))
	if err == nil && *force {
		fmt.Fprintf(a.env.stderr, "%s removed without draining: the scrubber rebuilds its shards on the nodes the map now names\n", id)
	}
	return err
}
