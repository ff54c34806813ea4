package scrubber

import (
	"context"
	"errors"
	"fmt"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Epoch fencing (docs/fencing.md). Nodes refuse calls made under an older
// map than theirs, so a reader still on an old map is refused by every
// node that holds the new one, installs it and resolves again. The
// rebalancer relies on that before it drops any copy: the copy goes only
// once every node of the key's placement under the previous and the
// current map holds the current map (or a newer one), so that a reader on
// the previous map is refused by all the nodes it would ask, instead of
// being told by some of them that the key is not there. Nodes that are
// behind are given the map; one that cannot be reached keeps the copy
// where it is until a later pass.

// errMapNotHeld is why a copy was not dropped: some node of the key's
// placements may still serve readers on an older map.
var errMapNotHeld = errors.New("not every node of the key's placements holds the current cluster map")

// mapHeld reports whether every node of bucket/key's placement under the
// previous and current maps, and node also, holds the map the pass works
// from (or a newer one), giving it to those that hold an older one.
// Nodes the current map removed (or no longer names) cannot be asked;
// readers count them as not answering.
func (s *Scrubber) mapHeld(ctx context.Context, bucket, key, node string) error {
	ids := []string{node}
	for _, n := range s.m.PlaceKey(bucket, key) {
		ids = append(ids, n.ID)
	}
	ids = append(ids, s.prevPlaced(bucket, key)...)
	for _, id := range ids {
		mb, ok := s.byID[id]
		if !ok {
			continue
		}
		if err := s.holdsMap(ctx, mb); err != nil {
			return fmt.Errorf("%w: %s: %w", errMapNotHeld, id, err)
		}
	}
	return nil
}

// holdsMap makes sure node mb holds s.m or a newer map. What a node is
// known to hold is remembered: its epoch only rises.
func (s *Scrubber) holdsMap(ctx context.Context, mb member) error {
	epoch := s.m.Epoch
	s.heldMu.Lock()
	known := s.held[mb.Node.ID]
	s.heldMu.Unlock()
	if known >= epoch {
		return nil
	}
	cctx, cancel := s.callCtx(ctx)
	defer cancel()
	h, err := mb.Client.Health(cctx)
	if err != nil {
		return err
	}
	if h.ID != mb.Node.ID {
		return fmt.Errorf("the node at %s says it is %q", mb.Node.Addr, h.ID)
	}
	if h.Epoch < epoch {
		// A node refuses a map older than its own (kerr.Conflict):
		// then it moved on meanwhile, and the next Health says so.
		if err := mb.Client.PutMap(cctx, s.m); err != nil && !kerr.Is(kerr.Conflict, err) {
			return fmt.Errorf("giving it map epoch %d: %w", epoch, err)
		}
		if h, err = mb.Client.Health(cctx); err != nil {
			return err
		}
		if h.Epoch < epoch {
			return fmt.Errorf("it holds map epoch %d", h.Epoch)
		}
		s.log.Info("scrub: gave a node the current cluster map", "node", mb.Node.ID, "epoch", epoch)
	}
	s.heldMu.Lock()
	if s.held == nil {
		s.held = make(map[string]uint64)
	}
	s.held[mb.Node.ID] = max(s.held[mb.Node.ID], h.Epoch)
	s.heldMu.Unlock()
	return nil
}

// fenceCtx returns ctx with its node calls fenced at the epoch of the map
// the pass works from. A node that refuses one of them gives its newer
// map, which SetMap installs, and the pass is stopped (stop) so that it
// resumes under it.
func (s *Scrubber) fenceCtx(ctx context.Context, stop context.CancelCauseFunc) context.Context {
	return client.WithFence(ctx, client.NewFence(s.m.Epoch, func(m *placement.Map) {
		s.SetMap(m)
		stop(errNewMap)
	}))
}
