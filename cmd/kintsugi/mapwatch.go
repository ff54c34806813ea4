package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/kintsugi-store/kintsugi/cluster"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Timings of watchRaftMap.
const (
	raftWatchWait  = 30 * time.Second // one long poll
	raftWatchRetry = time.Second      // after a node failed to answer
	raftWatchIdle  = time.Minute      // after a node said it runs without Raft
)

// watchRaftMap follows the Raft-held cluster map by long polls
// (GET /v1/cluster/map?after=EPOCH&wait=30s) to the nodes of the current
// map, one at a time, moving on to the next when one fails. A new epoch
// reaches a gateway or scrubber within a round trip of its commit,
// instead of at the next heartbeat that notices it (mapSync stays as the
// fallback). Against nodes that run without Raft it idles.
func watchRaftMap(ctx context.Context, logger *slog.Logger, s mapSetter, opts *client.Options) {
	next := 0
	for ctx.Err() == nil {
		cur := s.Map()
		var nodes []placement.Node
		for _, n := range cur.Nodes {
			if n.State != placement.StateRemoved {
				nodes = append(nodes, n)
			}
		}
		if len(nodes) == 0 {
			return
		}
		n := nodes[next%len(nodes)]
		pctx, cancel := context.WithTimeout(ctx, raftWatchWait+5*time.Second)
		m, err := cluster.NewClient(n.Addr, opts).Map(pctx, cur.Epoch, raftWatchWait)
		cancel()
		pause := time.Duration(0)
		switch {
		case errors.Is(err, cluster.ErrNoRaft), errors.Is(err, cluster.ErrNotInitialised):
			next++
			pause = raftWatchIdle
		case err != nil:
			next++
			pause = raftWatchRetry
		case m.Epoch > cur.Epoch:
			if err := m.Validate(); err != nil {
				logger.Warn("a node's cluster map does not validate", "node", n.ID, "err", err)
				next++
				break
			}
			s.SetMap(m)
			logger.Info("installed new cluster map from the Raft log", "node", n.ID, "epoch", m.Epoch, "previous", cur.Epoch)
		}
		if pause > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(pause):
			}
		}
	}
}
