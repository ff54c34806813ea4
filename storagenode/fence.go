package storagenode

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Epoch fencing (docs/fencing.md). A caller that resolved placement with
// an older cluster map than the node holds may be looking for an object
// in the wrong place: the rebalancer drops a moved shard's old copy once
// every node of the old and new placement holds the new map, so such a
// caller could find nothing and answer 404 for an object that exists.
// The node therefore refuses every call that carries an older epoch than
// its map's, with kerr.Conflict and its map, and the caller installs that
// map and asks again. Over HTTP the epoch travels in
// client.HeaderMapEpoch and the refusal is a 409 whose ErrorBody carries
// the map; called in process, the epoch is that of the client.Fence in
// the call's context (client.WithFence), the refusal a
// *client.StaleMapError, and the Fence learns the map, as it does from a
// Client.
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
		if err := n.checkEpoch(epoch); err != nil {
			n.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// admit is what every method checks before it runs: that the node has not
// stopped after a failed fsync and, for a fenced call, that ctx's Fence
// (if any) is not older than the node's map. A refusal of a fenced call
// tells the Fence the node's map.
func (n *Node) admit(ctx context.Context, fenced bool) error {
	if err := n.failure(); err != nil {
		return err
	}
	if !fenced {
		return nil
	}
	f := client.FenceOf(ctx)
	if f == nil {
		return nil
	}
	err := n.checkEpoch(f.Epoch())
	var stale *client.StaleMapError
	if errors.As(err, &stale) {
		f.Refused(stale.Map)
	}
	return err
}

// checkEpoch returns nil if a call made under epoch (0: none) may be
// served, else the refusal (see staleMap).
func (n *Node) checkEpoch(epoch uint64) error {
	const op = "storagenode.fence"
	if epoch == 0 || epoch >= n.mapEpoch() {
		return nil
	}
	raw, err := n.db.ClusterMap()
	if err != nil || raw == nil {
		// The node had a map a moment ago: maps are never removed.
		return kerr.E(op, kerr.Internal, fmt.Errorf("reading the stored cluster map: %v", err))
	}
	m, err := placement.Parse(raw)
	if err != nil {
		return kerr.E(op, kerr.Internal, fmt.Errorf("parsing the stored cluster map: %v", err))
	}
	return kerr.E(op, kerr.Conflict, &staleMap{
		msg:   fmt.Sprintf("%s: call made under map epoch %d, node holds epoch %d", op, epoch, epochOf(raw)),
		raw:   raw,
		stale: &client.StaleMapError{Epoch: epoch, Map: m},
	})
}

// staleMap is the refusal of a call made under an older epoch than the
// node's. It unwraps to the *client.StaleMapError a Client would return;
// writeError sends raw, the map as stored, in ErrorBody.Map and msg as
// the message.
type staleMap struct {
	msg   string
	raw   []byte
	stale *client.StaleMapError
}

func (e *staleMap) Error() string { return e.msg }
func (e *staleMap) Unwrap() error { return e.stale }
