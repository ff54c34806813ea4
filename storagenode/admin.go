package storagenode

import (
	"net/http"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

func (n *Node) handlePutBucket(w http.ResponseWriter, r *http.Request) {
	const op = "storagenode.PutBucket"
	var b client.BucketRecord
	if err := readJSON(w, r, op, &b); err != nil {
		n.writeError(w, r, err)
		return
	}
	if err := client.CheckBucket(b.Name); err != nil {
		n.writeError(w, r, kerr.E(op, err))
		return
	}
	if err := client.CheckVersion(b.Version); err != nil {
		n.writeError(w, r, kerr.E(op, err))
		return
	}
	stored, err := n.db.PutBucket(b)
	if err != nil {
		n.writeError(w, r, kerr.E(op, err))
		return
	}
	if !stored {
		// An older record than the node's must not count as stored.
		switch cur, err := n.db.Bucket(b.Name); {
		case err != nil:
			n.writeError(w, r, kerr.E(op, err))
			return
		case cur.Version > b.Version:
			n.writeError(w, r, kerr.E(op, kerr.Conflict, &client.ConflictError{Newer: cur.Version}))
			return
		}
	}
	n.writeJSON(w, r, struct{}{})
}

func (n *Node) handleGetBucket(w http.ResponseWriter, r *http.Request) {
	const op = "storagenode.GetBucket"
	name := r.URL.Query().Get("name")
	if err := client.CheckBucket(name); err != nil {
		n.writeError(w, r, kerr.E(op, err))
		return
	}
	b, err := n.db.Bucket(name)
	if err != nil {
		n.writeError(w, r, kerr.E(op, err))
		return
	}
	n.writeJSON(w, r, b)
}

func (n *Node) handleListBuckets(w http.ResponseWriter, r *http.Request) {
	bs, err := n.db.Buckets()
	if err != nil {
		n.writeError(w, r, kerr.E("storagenode.ListBuckets", err))
		return
	}
	n.writeJSON(w, r, bs)
}

func (n *Node) handleAddHints(w http.ResponseWriter, r *http.Request) {
	const op = "storagenode.AddHints"
	var hs []client.Hint
	if err := readJSON(w, r, op, &hs); err != nil {
		n.writeError(w, r, err)
		return
	}
	if err := client.CheckHints(hs); err != nil {
		n.writeError(w, r, kerr.E(op, err))
		return
	}
	if err := n.db.AddHints(hs); err != nil {
		n.writeError(w, r, kerr.E(op, err))
		return
	}
	n.writeJSON(w, r, struct{}{})
}

func (n *Node) handleListHints(w http.ResponseWriter, r *http.Request) {
	const op = "storagenode.ListHints"
	limit, err := intParam(r.URL.Query(), op, "limit", 0)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	hs, err := n.db.Hints(client.ListLimit(int(limit)))
	if err != nil {
		n.writeError(w, r, kerr.E(op, err))
		return
	}
	n.writeJSON(w, r, hs)
}

func (n *Node) handleDeleteHints(w http.ResponseWriter, r *http.Request) {
	const op = "storagenode.DeleteHints"
	var hs []client.Hint
	if err := readJSON(w, r, op, &hs); err != nil {
		n.writeError(w, r, err)
		return
	}
	if err := client.CheckHints(hs); err != nil {
		n.writeError(w, r, kerr.E(op, err))
		return
	}
	if err := n.db.DeleteHints(hs); err != nil {
		n.writeError(w, r, kerr.E(op, err))
		return
	}
	n.writeJSON(w, r, struct{}{})
}

func (n *Node) handleHealth(w http.ResponseWriter, r *http.Request) {
	h := client.Health{ID: n.cfg.ID, Epoch: n.mapEpoch(), Objects: n.db.Objects()}
	if free, total, err := diskSpace(n.dir); err == nil {
		h.DiskFree, h.DiskTotal = free, total
	}
	n.writeJSON(w, r, h)
}
