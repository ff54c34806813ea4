package storagenode

import (
	"fmt"
	"net/http"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Epoch fencing (docs/fencing.md). A caller that resolved placement with
// an older cluster map than the node holds may be looking for an object
// in the wrong place: the rebalancer drops a moved shard's old copy once
// every node of the old and new placement holds the new map, so such a
// caller could find nothing and answer 404 for an object that exists.
// The node therefore refuses every call that carries an older epoch
// (client.HeaderMapEpoch) than its map's, answering 409 with its map, and
// the caller installs that map and asks again.
//
// A call with a newer epoch than the node's is served: the node has not
// heard of the change yet, and its answer is what it holds. A call with no
// epoch (the admin tools, older callers) is served as before fencing.
// Health, the map itself and the verifier's status are never fenced:
// they are how a caller finds a newer map. Neither is a shard read: it
// names the exact version (and the caller checks every block against the
// version's recorded digests), so serving it cannot mislead a caller
// whatever map it resolved with, while refusing it would fail reads that
// resolved a moment before the node moved on, with every shard still in
// place. A copy the rebalancer dropped is simply not found.

// unfenced are the paths served whatever epoch a call carries.
var unfenced = map[string]bool{
	"/v1/health":       true,
	"/v1/map":          true,
	"/v1/scrub/status": true,
	"/v1/shard":        true,
}

// fence refuses calls to next made under an older map epoch than the
// node's, before they are read any further.
func (n *Node) fence(next http.Handler) http.Handler {
	const op = "storagenode.fence"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if unfenced[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		epoch, err := client.ParseEpoch(r.Header.Get(client.HeaderMapEpoch))
		if err != nil {
			n.writeError(w, r, kerr.E(op, kerr.Invalid, err))
			return
		}
		if epoch == 0 || epoch >= n.mapEpoch() {
			next.ServeHTTP(w, r)
			return
		}
		n.refuseStale(w, r, epoch)
	})
}

// refuseStale answers a call made under epoch, older than the node's, with
// 409 and the node's map.
func (n *Node) refuseStale(w http.ResponseWriter, r *http.Request, epoch uint64) {
	const op = "storagenode.fence"
	raw, err := n.db.ClusterMap()
	if err != nil || raw == nil {
		// The node had a map a moment ago: maps are never removed.
		n.writeError(w, r, kerr.E(op, kerr.Internal, fmt.Errorf("reading the stored cluster map: %v", err)))
		return
	}
	n.writeErrorBody(w, r, http.StatusConflict, client.ErrorBody{
		Kind:    kerr.Conflict.String(),
		Message: fmt.Sprintf("%s: call made under map epoch %d, node holds epoch %d", op, epoch, epochOf(raw)),
		Map:     raw,
	})
}
