package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/kintsugi-store/kintsugi/cluster"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// devRaft is the dev cluster's Raft group: one voter in the process,
// holding the map as a multi-host cluster's group does, so that the admin
// commands (--endpoint any dev node) and the nodes' fencing work the same
// way in both. Every committed map goes to every node and to whatever
// follows the map in the process (the gateway's store, the scrubber).
type devRaft struct {
	g     *cluster.Group
	nodes []*storagenode.Node
	log   *slog.Logger

	mu        sync.Mutex
	followers []mapSetter
}

// startDevRaft opens the group in dataDir/raft and returns it with the map
// it holds: m on the first run; on later runs the map it kept, with the
// addresses of this run's nodes (they listen on new ports) and any node
// this run has that it lacks, so that admin changes outlive a restart.
func startDevRaft(ctx context.Context, logger *slog.Logger, dataDir string, secret []byte, m *placement.Map, nodes []*storagenode.Node, opts *client.Options) (*devRaft, *placement.Map, error) {
	d := &devRaft{nodes: nodes, log: logger}
	g, err := cluster.Open(cluster.Config{
		ID: m.Nodes[0].ID, Dir: filepath.Join(dataDir, "raft"), Bind: "127.0.0.1:0", Secret: secret,
		Voters: 1, Logger: logger, OnMap: d.install,
	})
	if err != nil {
		return nil, nil, err
	}
	d.g = g
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// A group that ran before has its map in its log, applied once its
	// leader is elected again: Bootstrap then answers ErrInitialised.
	_, err = g.Bootstrap(ctx, m)
	if errors.Is(err, cluster.ErrInitialised) {
		err = d.refresh(ctx, m)
	}
	if err != nil {
		g.Close()
		return nil, nil, fmt.Errorf("the dev cluster's map: %w", err)
	}
	h := cluster.Handler(g, opts)
	for _, n := range nodes {
		n.ServeCluster(h)
	}
	return d, g.Map(), nil
}

// refresh makes the kept map name this run's nodes where they listen now.
func (d *devRaft) refresh(ctx context.Context, run *placement.Map) error {
	for d.g.Status().State != "Leader" || d.g.Map() == nil {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the dev cluster's Raft member did not become leader: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	cur := d.g.Map()
	next := cur.WithDefaults()
	for _, n := range run.Nodes {
		if old := devMapNode(next, n.ID); old != nil {
			old.Addr = n.Addr
		} else {
			next.Nodes = append(next.Nodes, n)
		}
	}
	a, _ := cur.Marshal()
	if b, _ := next.Marshal(); string(a) == string(b) {
		return nil
	}
	if _, err := d.g.Apply(ctx, placement.ReplaceMap(next).Expecting(cur.Epoch)); err != nil {
		return fmt.Errorf("updating the dev cluster's map for this run (remove %s to start afresh): %w", filepath.Join("DATA", "raft"), err)
	}
	return nil
}

func devMapNode(m *placement.Map, id string) *placement.Node {
	for i := range m.Nodes {
		if m.Nodes[i].ID == id {
			return &m.Nodes[i]
		}
	}
	return nil
}

// follow makes s receive every map committed from now on.
func (d *devRaft) follow(s mapSetter) {
	d.mu.Lock()
	d.followers = append(d.followers, s)
	d.mu.Unlock()
}

func (d *devRaft) install(m *placement.Map) {
	for _, n := range d.nodes {
		if err := n.InstallMap(m); err != nil {
			d.log.Error("storing the committed cluster map", "epoch", m.Epoch, "err", err)
		}
	}
	d.mu.Lock()
	fs := d.followers
	d.mu.Unlock()
	for _, s := range fs {
		if s.Map().Epoch < m.Epoch {
			s.SetMap(m)
		}
	}
}

// Close stops the group.
func (d *devRaft) Close() error { return d.g.Close() }
