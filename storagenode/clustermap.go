package storagenode

import (
	"bytes"
	"context"
	"fmt"

	"github.com/segmentio/encoding/json"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
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

// GetMap returns the newest cluster map the node was given, parsed and
// validated; kerr.NotExist if it has none. Never fenced.
func (n *Node) GetMap(ctx context.Context) (*placement.Map, error) {
	const op = "storagenode.GetMap"
	raw, err := n.mapJSON(ctx)
	if err != nil {
		return nil, err
	}
	m, err := placement.Parse(raw)
	if err != nil {
		return nil, kerr.E(op, kerr.Corrupt, err)
	}
	return m, nil
}

// mapJSON returns the stored map as stored.
func (n *Node) mapJSON(ctx context.Context) ([]byte, error) {
	const op = "storagenode.GetMap"
	if err := n.admit(ctx, false); err != nil {
		return nil, err
	}
	b, err := n.db.ClusterMap()
	if err != nil {
		return nil, n.settle(kerr.E(op, err))
	}
	if b == nil {
		return nil, kerr.E(op, kerr.NotExist, "no cluster map stored")
	}
	return b, nil
}

// PutMap offers m to the node, which keeps it only if its epoch is higher
// than that of the map it has (see the comment at the top of this file).
// Errors are those of client.Client.PutMap. Never fenced.
func (n *Node) PutMap(ctx context.Context, m *placement.Map) error {
	const op = "storagenode.PutMap"
	// Through the same JSON as a Client sends, so that the stored
	// canonical bytes, which "same content" compares, are the same
	// whichever way the map came.
	raw, err := json.Marshal(m.WithDefaults())
	if err != nil {
		return kerr.E(op, kerr.Invalid, err)
	}
	_, err = n.putMapJSON(ctx, raw)
	return err
}

// putMapJSON stores the map encoded in body, as PutMap, and returns its
// epoch.
func (n *Node) putMapJSON(ctx context.Context, body []byte) (uint64, error) {
	const op = "storagenode.PutMap"
	if err := n.admit(ctx, false); err != nil {
		return 0, err
	}
	m, err := placement.Parse(body)
	if err != nil {
		return 0, kerr.E(op, kerr.Invalid, err)
	}
	if err := n.refuseRaisingPush(m); err != nil {
		return 0, err
	}
	// Stored in one canonical encoding, so that "same content" is a byte
	// comparison whatever formatting the sender used.
	canon, err := json.Marshal(m)
	if err != nil {
		return 0, kerr.E(op, kerr.Internal, err)
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
		return 0, n.settle(err)
	}
	n.raiseEpoch(m.Epoch)
	if m.Epoch != prev {
		n.log.Info("stored cluster map", "epoch", m.Epoch, "previous", prev)
	}
	return m.Epoch, nil
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
