package storagenode

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/segmentio/encoding/json"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
)

// A node whose process runs a member of the Raft group holding the map
// (package cluster) takes its map from the group's log, not from pushes:
// InstallMap stores each committed map, so the epoch fencing checks calls
// against the Raft-committed epoch, and the group's HTTP API is served
// under /v1/cluster/ behind the node's own authentication. A push of a
// newer map than the node holds is refused then: only the log may raise
// the epoch, or two admins could still make two maps of one epoch.

// raftHook is the node's side of the Raft-held map.
type raftHook struct {
	api atomic.Pointer[http.Handler] // nil: the node runs without Raft
}

// ServeCluster serves h, the Raft group's API (cluster.Handler), under
// /v1/cluster/, and from then on refuses map pushes that would raise the
// node's epoch.
func (n *Node) ServeCluster(h http.Handler) { n.raft.api.Store(&h) }

// raftHeld reports whether the node's map comes from the Raft group.
func (n *Node) raftHeld() bool { return n.raft.api.Load() != nil }

// clusterRoutes registers /v1/cluster/, answered 404 until ServeCluster.
func (n *Node) clusterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/v1/cluster/", func(w http.ResponseWriter, r *http.Request) {
		h := n.raft.api.Load()
		if h == nil {
			n.writeError(w, r, kerr.E("storagenode.cluster", kerr.NotExist, "this node runs without a Raft-held cluster map"))
			return
		}
		(*h).ServeHTTP(w, r)
	})
}

// InstallMap stores m, a map the Raft group committed, unless the node
// already holds a map of an epoch at least as high; the fencing epoch
// rises with it. Maps arrive in log order, so a lower epoch is only the
// replay of an old entry after a restart.
func (n *Node) InstallMap(m *placement.Map) error {
	const op = "storagenode.InstallMap"
	canon, err := json.Marshal(m.WithDefaults())
	if err != nil {
		return kerr.E(op, kerr.Internal, err)
	}
	var prev uint64
	err = n.db.SwapClusterMap(func(cur []byte) ([]byte, error) {
		if cur != nil {
			if prev = epochOf(cur); prev >= m.Epoch {
				return nil, nil
			}
		}
		return canon, nil
	})
	if err != nil {
		return kerr.E(op, err)
	}
	n.raiseEpoch(m.Epoch)
	if m.Epoch > prev {
		n.log.Info("stored cluster map from the Raft log", "epoch", m.Epoch, "previous", prev)
	}
	return nil
}

// refuseRaisingPush reports whether a push of m must be refused because
// the Raft group, not pushes, raises this node's epoch.
func (n *Node) refuseRaisingPush(m *placement.Map) error {
	if !n.raftHeld() || m.Epoch <= n.mapEpoch() {
		return nil
	}
	return kerr.E("storagenode.PutMap", kerr.Conflict, fmt.Errorf(
		"the cluster map is held by Raft (node at epoch %d, push of %d): change it with `kintsugi admin --endpoint`", n.mapEpoch(), m.Epoch))
}
