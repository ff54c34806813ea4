package storagenode

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/segmentio/encoding/json"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// The node keeps the newest cluster map it was given in its index, so that
// gateways on other hosts can learn a new epoch from any node (the epoch
// travels in every health answer) and fetch the map from it. Besides
// that, the node only fences calls with its epoch (fence.go): it never
// places or moves data.
//
// A stored map only ever gets replaced by one with a higher epoch: this is
// the compare-and-set that makes concurrent map changes safe. The same
// epoch with the same content is accepted again (pushes are retried); the
// same epoch with different content, or a lower epoch, is refused with
// 409 Conflict.

// mapRoutes registers GET and PUT /v1/map.
func (n *Node) mapRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/map", n.handleGetMap)
	mux.HandleFunc("PUT /v1/map", n.handlePutMap)
}

func (n *Node) handleGetMap(w http.ResponseWriter, r *http.Request) {
	const op = "storagenode.GetMap"
	b, err := n.db.ClusterMap()
	if err != nil {
		n.writeError(w, r, kerr.E(op, err))
		return
	}
	if b == nil {
		n.writeError(w, r, kerr.E(op, kerr.NotExist, "no cluster map stored"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func (n *Node) handlePutMap(w http.ResponseWriter, r *http.Request) {
	const op = "storagenode.PutMap"
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, client.MaxSignedBody))
	if err != nil {
		n.writeError(w, r, kerr.E(op, kerr.TooLarge, err))
		return
	}
	m, err := placement.Parse(body)
	if err != nil {
		n.writeError(w, r, kerr.E(op, kerr.Invalid, err))
		return
	}
	if err := n.refuseRaisingPush(m); err != nil {
		n.writeError(w, r, err)
		return
	}
	// Stored in one canonical encoding, so that "same content" is a byte
	// comparison whatever formatting the sender used.
	canon, err := json.Marshal(m)
	if err != nil {
		n.writeError(w, r, kerr.E(op, kerr.Internal, err))
		return
	}
	var prev uint64
	err = n.db.SwapClusterMap(func(cur []byte) ([]byte, error) {
		if cur == nil {
			return canon, nil
		}
		prev = epochOf(cur)
		switch {
		case m.Epoch > prev:
			return canon, nil
		case m.Epoch == prev && bytes.Equal(cur, canon):
			return nil, nil
		case m.Epoch == prev:
			return nil, kerr.E(op, kerr.Conflict, fmt.Errorf("map epoch %d is already stored with different content", prev))
		}
		return nil, kerr.E(op, kerr.Conflict, fmt.Errorf("node has map epoch %d, newer than %d", prev, m.Epoch))
	})
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	n.raiseEpoch(m.Epoch)
	if m.Epoch != prev {
		n.log.Info("stored cluster map", "epoch", m.Epoch, "previous", prev)
	}
	n.writeJSON(w, r, struct {
		Epoch uint64 `json:"epoch"`
	}{m.Epoch})
}

// mapEpoch returns the epoch of the stored cluster map, 0 if none. Every
// fenced call asks, so it is kept in memory (Node.epoch), not read from
// the index.
func (n *Node) mapEpoch() uint64 { return n.epoch.Load() }

// raiseEpoch sets Node.epoch to e unless it is already higher: concurrent
// pushes may finish in any order, the stored epoch only rises, and so must
// the cached one.
func (n *Node) raiseEpoch(e uint64) {
	for {
		cur := n.epoch.Load()
		if cur >= e || n.epoch.CompareAndSwap(cur, e) {
			return
		}
	}
}

// loadEpoch reads the epoch of the stored cluster map into Node.epoch.
func (n *Node) loadEpoch() error {
	b, err := n.db.ClusterMap()
	if err != nil {
		return err
	}
	if b != nil {
		n.epoch.Store(epochOf(b))
	}
	return nil
}

// epochOf reads the epoch of a stored map without parsing the rest.
func epochOf(b []byte) uint64 {
	var v struct {
		Epoch uint64 `json:"epoch"`
	}
	json.Unmarshal(b, &v)
	return v.Epoch
}
