package storagenode

import (
	"context"
	"errors"
	"io"

	"github.com/kintsugi-store/kintsugi/storagenode/internal/pack"
)

// compactPacks rewrites the live shards of pack files that are mostly
// garbage (live bytes under half the file) into the active pack, and then
// removes those files. Shards are moved by compare-and-swap of their index
// entry, so a shard removed, renamed or replaced meanwhile is left as it
// is and its copy becomes garbage in turn. It returns how many packs it
// removed.
func (n *Node) compactPacks(ctx context.Context) (int, error) {
	infos := n.packs.Packs()
	live := make(map[uint32]int64)
	if err := n.db.ScanPacked(func(_ string, loc pack.Loc) { live[loc.Pack] += loc.Len }); err != nil {
		return 0, err
	}
	// Inactive packs with no append in flight never get another one, so
	// the entries found below are all the entries they will ever have.
	sparse := make(map[uint32]bool)
	for _, in := range infos {
		if !in.Active && live[in.ID]*2 < in.Size || !in.Active && live[in.ID] == 0 {
			sparse[in.ID] = true
		}
	}
	if len(sparse) == 0 {
		return 0, nil
	}
	type ref struct {
		path string
		loc  pack.Loc
	}
	var refs []ref
	err := n.db.ScanPacked(func(path string, loc pack.Loc) {
		if sparse[loc.Pack] {
			refs = append(refs, ref{path, loc})
		}
	})
	if err != nil {
		return 0, err
	}
	for _, r := range refs {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := n.repack(r.path, r.loc); err != nil {
			return 0, err
		}
	}
	// Whatever still points into a sparse pack (a move that lost a race
	// with a rename, say) keeps it for the next round.
	err = n.db.ScanPacked(func(_ string, loc pack.Loc) { delete(sparse, loc.Pack) })
	if err != nil {
		return 0, err
	}
	removed := 0
	for id := range sparse {
		switch err := n.packs.Remove(id); {
		case errors.Is(err, pack.ErrBusy):
		case err != nil:
			return removed, err
		default:
			removed++
		}
	}
	if removed > 0 {
		n.log.Info("compacted pack files", "removed", removed, "moved", len(refs))
	}
	return removed, nil
}

// repack copies the packed shard path from loc to the active pack.
func (n *Node) repack(path string, loc pack.Loc) error {
	r, err := n.packs.Reader(loc)
	if err != nil {
		return err
	}
	data := make([]byte, loc.Len)
	if _, err := io.ReadFull(r, data); err != nil {
		return err
	}
	to, release, err := n.packs.Append(data)
	if err != nil {
		return err
	}
	defer release()
	_, err = n.db.ReplaceLoc(path, loc, to)
	return err
}
