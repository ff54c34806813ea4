package scrubber

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/kintsugi-store/kintsugi/internal/nodeaccess"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Names in the checkpoint store.
const stateMaps = "maps" // placement.Pair: the maps the scrubber last worked from

// errNewMap cancels a pass so that it resumes under a newer map.
var errNewMap = errors.New("scrubber: a newer cluster map arrived")

// startMaps returns the maps to start from: m and, if the state remembers
// the map m replaced, that one. A state that remembers a newer map than m
// (the file was rolled back) keeps the newer one: epochs only move
// forward.
func (s *Scrubber) startMaps(m *placement.Map) placement.Pair {
	var saved placement.Pair
	found, err := s.state.Get(stateMaps, &saved)
	if err != nil || !found || saved.Cur == nil {
		if err != nil {
			s.log.Warn("scrub: reading the remembered cluster maps", "err", err)
		}
		s.saveMaps(placement.Pair{Cur: m})
		return placement.Pair{Cur: m}
	}
	saved.Cur = saved.Cur.WithDefaults()
	if saved.Prev != nil {
		saved.Prev = saved.Prev.WithDefaults()
	}
	switch {
	case m.Epoch > saved.Cur.Epoch:
		p := placement.Pair{Cur: m, Prev: saved.Cur}
		s.log.Info("scrub: cluster map changed since the last run", "epoch", m.Epoch, "previous", saved.Cur.Epoch)
		s.saveMaps(p)
		return p
	case m.Epoch < saved.Cur.Epoch:
		s.log.Warn("scrub: the cluster map given is older than the one last used; keeping the newer",
			"given", m.Epoch, "epoch", saved.Cur.Epoch)
		return saved
	}
	return placement.Pair{Cur: m, Prev: saved.Prev}
}

func (s *Scrubber) saveMaps(p placement.Pair) {
	if err := s.state.Put(stateMaps, p); err != nil {
		s.log.Warn("scrub: remembering the cluster maps", "err", err)
	}
}

// Map returns the newest cluster map the scrubber knows, defaults filled
// in. A pass in progress may still be working from the one before.
func (s *Scrubber) Map() *placement.Map {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest.Cur
}

// SetMap gives the scrubber a newer cluster map. One whose epoch is not
// above the newest known, or that does not validate, is ignored (and
// logged), so maps may arrive in any order and from any source. The map
// it replaces becomes the previous one. The next Run works from the new
// pair; a Daemon interrupts its pass at once (it is checkpointed) and
// resumes it under the new map.
func (s *Scrubber) SetMap(m *placement.Map) {
	if m == nil {
		return
	}
	if err := m.Validate(); err != nil {
		s.log.Warn("scrub: ignoring an unusable cluster map", "err", err)
		return
	}
	m = m.WithDefaults()
	s.mu.Lock()
	cur := s.latest.Cur
	if m.Epoch <= cur.Epoch {
		s.mu.Unlock()
		if m.Epoch < cur.Epoch {
			s.log.Warn("scrub: ignoring an older cluster map", "epoch", m.Epoch, "current", cur.Epoch)
		}
		return
	}
	s.latest = placement.Pair{Cur: m, Prev: cur}
	s.saveMaps(s.latest)
	s.mu.Unlock()
	s.log.Info("scrub: new cluster map", "epoch", m.Epoch, "previous", cur.Epoch, "nodes", len(m.Nodes))
	select {
	case s.newMap <- struct{}{}:
	default: // a signal is already pending
	}
}

// useLatest makes the newest maps the ones passes work from.
// REQUIRES: no Run in progress but the caller's.
func (s *Scrubber) useLatest() {
	s.mu.Lock()
	p := s.latest
	s.mu.Unlock()
	if s.m == p.Cur {
		return
	}
	s.m, s.prev = p.Cur, p.Prev
	s.nodes, s.byID = nil, make(map[string]member)
	for _, n := range nodeaccess.LiveNodes(s.m) {
		mb := s.clients.Member(n)
		s.nodes = append(s.nodes, mb)
		s.byID[n.ID] = mb
	}
}

// prevPlaced returns the previous map's nodes for the key, nil if none is
// known.
func (s *Scrubber) prevPlaced(bucket, key string) []string {
	if s.prev == nil {
		return nil
	}
	var ids []string
	for _, n := range s.prev.PlaceKey(bucket, key) {
		ids = append(ids, n.ID)
	}
	return ids
}

// planMoves notes in c, an object with at least d verified shards, what
// stands between it and the map's placement: moves, the shards verified
// on another node than the map names for their index; and strays, the
// copies that no longer belong anywhere (a second copy of a shard that is
// on its node or on its way there, an older version on a node the map no
// longer places the key on).
func (c *checked) planMoves() {
	c.moves, c.strays = 0, 0
	for i, id := range c.good {
		if i < len(c.placed) && id != "" && id != c.placed[i].ID {
			c.moves++
		}
	}
	placed := c.placedSet()
	for id, rec := range c.held {
		switch {
		case rec.Version == c.meta.Version:
			j := rec.Shard
			if j >= 0 && j < len(c.placed) && j < len(c.good) && c.placed[j].ID != id && c.good[j] != id {
				c.strays++
			}
		case !placed[id]:
			c.strays++
		}
	}
}

// rebalance reports whether the object needs the rebalancer.
func (c *checked) rebalance() bool { return c.moves > 0 || c.strays > 0 }

func (c *checked) placedSet() map[string]bool {
	out := make(map[string]bool, len(c.placed))
	for _, n := range c.placed {
		out[n.ID] = true
	}
	return out
}

// moved is what rebalancing one object did.
type moved struct {
	moved   int   // shards copied to their node, committed and verified there
	bytes   int64 // their size
	failed  int   // moves that failed (retried by the next pass)
	dropped int   // copies dropped from nodes that no longer need them
	changed bool  // a newer version arrived: the writer owns the key now
	reasons []string
}

func (mv *moved) fail(format string, args ...any) {
	mv.failed++
	mv.reasons = append(mv.reasons, fmt.Sprintf(format, args...))
}

// placedMeta returns meta with its node list naming the map's placement,
// as the copies the rebalancer and rebuilds commit record it: readers
// consult the list to find the shards.
func placedMeta(meta client.ObjectMeta, placed []placement.Node) client.ObjectMeta {
	n := meta.Data + meta.Parity
	nodes := make([]string, n)
	copy(nodes, meta.Nodes)
	for i := range min(n, len(placed)) {
		nodes[i] = placed[i].ID
	}
	meta.Nodes = nodes
	return meta
}

// rebalance moves every verified shard of c that lies on another node
// than the map names for its index to that node: it streams the shard
// from its holder (the bytes are identical; the node checks every block
// as it stages them), commits it there with the version's metadata
// (node list updated), has the node verify it where it now lies, and only
// then drops the old copy (client.DropShard, a compare-and-delete that
// never touches another version). Until that drop the old holder keeps
// serving the shard, and readers find it through the previous map and
// the version's node list.
//
// A node holds one shard of a version, so a move into a node that holds
// another shard of the version waits until that shard has moved on; a
// copy there that is not the verified one is dropped first. Moves that
// all wait on each other form cycles (a weight change, or as many nodes
// as shards, permutes slots); a cycle is swapped (see swap).
//
// Commits obey the nodes' newest-wins rule and drops compare the version,
// so a write or delete that lands during a move is never clobbered: the
// move stops and the object counts as changed. c is updated as shards
// move (good, held).
func (s *Scrubber) rebalance(ctx context.Context, c *checked) moved {
	var out moved
	meta := c.meta
	n := meta.Data + meta.Parity
	slots := min(n, len(c.placed), len(c.good))
	answered := make(map[string]bool, len(c.states))
	for _, ns := range c.states {
		if ns.Err == nil {
			answered[ns.Node.ID] = true
		}
	}
	skip := make([]bool, slots)
	pending := func(i int) bool {
		return !skip[i] && c.good[i] != "" && c.good[i] != c.placed[i].ID
	}
	for range 2*n + 2 { // every round moves a shard or swaps a cycle
		progressed := false
		for i := range slots {
			if !pending(i) {
				continue
			}
			dst := c.placed[i].ID
			mb, ok := s.byID[dst]
			if !ok || !answered[dst] {
				skip[i] = true
				out.fail("shard %d: its node %s did not answer", i, dst)
				continue
			}
			if rec, ok := c.held[dst]; ok && rec.Version == meta.Version && rec.Shard != i {
				if j := rec.Shard; j >= 0 && j < len(c.good) && c.good[j] == dst {
					continue // its own verified shard must move on first
				}
				// A copy that is not the verified one: make room.
				dropped, err := s.dropCopy(ctx, mb, rec)
				if err != nil || !dropped {
					// Or a write replaced it: the next pass sees anew.
					skip[i] = true
					out.fail("shard %d: dropping the stray shard %d on %s: dropped %v, %v", i, rec.Shard, dst, dropped, err)
					continue
				}
				delete(c.held, dst)
				out.dropped++
			}
			src := s.byID[c.good[i]]
			size, changed, err := s.moveShard(ctx, meta, i, src, mb)
			switch {
			case ctx.Err() != nil:
				return out
			case changed:
				out.changed = true
				return out
			case err != nil:
				skip[i] = true
				out.fail("shard %d: moving it from %s to %s: %v", i, src.Node.ID, dst, err)
				continue
			}
			progressed = true
			s.noteMoved(&out, c, i, src, mb, size)
			// The new copy is committed and verified: the old one can go.
			// A failed drop leaves a stray for the next pass.
			if rec, ok := c.held[src.Node.ID]; ok {
				dropped, err := s.dropCopy(ctx, src, rec)
				switch {
				case err != nil:
					s.log.Warn("scrub: dropping a moved shard's old copy", "node", src.Node.ID, "bucket", meta.Bucket,
						"key", meta.Key, "version", meta.Version, "shard", i, "err", err)
				case dropped:
					delete(c.held, src.Node.ID)
					out.dropped++
				default:
					// A write replaced it there: the writer owns the key.
					delete(c.held, src.Node.ID)
					out.changed = true
					return out
				}
			}
		}
		if progressed {
			continue
		}
		// Every move left waits on another: those on a cycle can swap.
		var cycle []int
		for i := 0; i < slots && cycle == nil; i++ {
			if pending(i) {
				cycle = c.cycle(i, pending)
			}
		}
		if cycle == nil {
			break
		}
		if len(cycle) > 2 && meta.Parity < 2 {
			// A swap of three or more has two shards in flight at once.
			for _, i := range cycle {
				skip[i] = true
				out.fail("shard %d: in a cycle of %d moves, which needs 2 parity shards to swap", i, len(cycle))
			}
			continue
		}
		if stop := s.swap(ctx, c, cycle, &out); stop {
			return out
		}
		for _, i := range cycle {
			skip[i] = skip[i] || c.good[i] != c.placed[i].ID
		}
	}
	return out
}

// noteMoved notes in out and c that shard i of c is now on dst.
func (s *Scrubber) noteMoved(out *moved, c *checked, i int, src, dst member, size int64) {
	out.moved++
	out.bytes += size
	c.good[i] = dst.Node.ID
	c.held[dst.Node.ID] = client.Record{ObjectMeta: c.meta, Shard: i}
	s.log.Info("scrub: moved shard", "bucket", c.meta.Bucket, "key", c.meta.Key, "version", c.meta.Version,
		"shard", i, "from", src.Node.ID, "to", dst.Node.ID, "bytes", size)
}

// cycle returns the shard indexes of the cycle of pending moves through
// first, each waiting on the next: the node the map names for cycle[k]
// holds cycle[k+1] verified (and the last node holds cycle[0]). It
// returns nil if first is on no such cycle (it waits on a move that
// cannot go).
func (c *checked) cycle(first int, pending func(int) bool) []int {
	slots := min(len(c.good), len(c.placed))
	var out []int
	for i := first; ; {
		out = append(out, i)
		rec, ok := c.held[c.placed[i].ID]
		if !ok || rec.Version != c.meta.Version || rec.Shard < 0 || rec.Shard >= slots || !pending(rec.Shard) ||
			c.good[rec.Shard] != c.placed[i].ID {
			return nil
		}
		// Each node holds one shard, so the walk can only close at first.
		if i = rec.Shard; i == first {
			return out
		}
		if slices.Contains(out, i) {
			return nil
		}
	}
}

// swap moves the shards of a cycle of moves (see cycle), none of which
// can go first since each node must give up its shard to take the next.
// It stages every shard on its new node first; then, node by node, it
// drops the shard the node holds (its replacement is already staged on
// the next node) and commits, which installs the staged one, and has the
// node verify it. At most two shards of the object are staged but not
// committed at any moment, each for one drop and commit, and a crash
// then leaves them staged on their nodes, where readers and the next
// pass roll them forward or rebuild them. Once the first shard is
// dropped the swap runs to its end even if ctx ends, so that an
// interrupted pass does not leave it half done. It reports whether
// rebalancing this object must stop (a newer version arrived, or ctx
// ended).
func (s *Scrubber) swap(ctx context.Context, c *checked, cycle []int, out *moved) (stop bool) {
	meta := c.meta
	m := len(cycle)
	nodes := make([]member, m) // nodes[k] wants cycle[k] and holds cycle[(k+1)%m]
	for k, i := range cycle {
		nodes[k] = s.byID[c.placed[i].ID]
	}
	failAll := func(format string, args ...any) {
		for _, i := range cycle {
			out.fail("shard %d (a cycle of %d moves): %s", i, m, fmt.Sprintf(format, args...))
		}
	}
	abortAll := func() {
		for k := range nodes {
			s.abort(ctx, &nodes[k], meta)
		}
	}
	// Once the first shard is dropped the swap cannot stop: every drop
	// must be allowed before it starts.
	if err := s.mapHeld(ctx, meta.Bucket, meta.Key, nodes[0].Node.ID); err != nil {
		failAll("%v", err)
		return false
	}
	sizes := make([]int64, m)
	for k, i := range cycle {
		src := nodes[(k+m-1)%m]
		size, err := s.stageCopy(ctx, meta, i, src, nodes[k])
		if err != nil {
			abortAll()
			if ctx.Err() != nil {
				return true
			}
			failAll("staging shard %d on %s: %v", i, nodes[k].Node.ID, err)
			return false
		}
		sizes[k] = size
	}
	s.log.Info("scrub: swapping a cycle of shard moves", "bucket", meta.Bucket, "key", meta.Key, "version", meta.Version, "shards", cycle)
	// From the first drop on, the staged copies are the only copies of
	// their shards: never aborted, and no stopping half way.
	sctx := context.WithoutCancel(ctx)
	for k, i := range cycle {
		dst := nodes[k]
		give := c.held[dst.Node.ID]
		dropped, err := s.dropCopy(sctx, dst, give)
		if err != nil || !dropped {
			if k == 0 {
				abortAll()
			}
			if err == nil {
				out.changed = true // a write replaced it
				return true
			}
			failAll("dropping shard %d on %s: %v", give.Shard, dst.Node.ID, err)
			return false
		}
		delete(c.held, dst.Node.ID)
		if c.good[give.Shard] == dst.Node.ID {
			c.good[give.Shard] = "" // staged on the next node until its turn
		}
		out.dropped++
		changed, err := s.commitMoved(sctx, meta, i, dst)
		if changed {
			out.changed = true
			return true
		}
		if err != nil {
			failAll("committing shard %d on %s: %v", i, dst.Node.ID, err)
			return false
		}
		s.noteMoved(out, c, i, nodes[(k+m-1)%m], dst, sizes[k])
	}
	return ctx.Err() != nil
}

// moveShard copies shard i of meta from src to dst, commits it there with
// the version's metadata and has dst verify it. It returns the bytes
// copied, and changed if dst holds a newer version (the copy was a no-op).
func (s *Scrubber) moveShard(ctx context.Context, meta client.ObjectMeta, i int, src, dst member) (int64, bool, error) {
	size, err := s.stageCopy(ctx, meta, i, src, dst)
	if err != nil {
		s.abort(ctx, &dst, meta)
		return 0, false, err
	}
	changed, err := s.commitMoved(ctx, meta, i, dst)
	if err != nil {
		s.abort(ctx, &dst, meta)
		return 0, false, err
	}
	return size, changed, nil
}

// stageCopy streams shard i of meta from src and stages it on dst, which
// checks every block as it arrives; the root it computes must be the
// recorded one. It returns the bytes copied.
func (s *Scrubber) stageCopy(ctx context.Context, meta client.ObjectMeta, i int, src, dst member) (int64, error) {
	if i >= len(meta.Roots) {
		return 0, fmt.Errorf("the version records %d roots", len(meta.Roots))
	}
	cd, err := s.codec(meta.Data, meta.Parity, meta.BlockSize)
	if err != nil {
		return 0, err
	}
	size := cd.Layout(meta.Size).ShardSize()
	s.stats.movesInFlight.Add(1)
	defer s.stats.movesInFlight.Add(-1)
	ctx, cancel := s.dataCtx(ctx, 2*size)
	defer cancel()
	rc, err := src.Client.ReadShard(ctx, meta.Bucket, meta.Key, meta.Version, i, 0, -1)
	if err != nil {
		return 0, fmt.Errorf("reading from %s: %w", src.Node.ID, err)
	}
	defer rc.Close()
	body := &countingReader{r: s.th.Reader(ctx, rc), n: &s.stats.bytesMoved}
	ref, err := dst.Client.Stage(ctx, meta.Bucket, meta.Key, meta.Version, i, meta.BlockSize, body)
	if err != nil {
		return 0, fmt.Errorf("staging on %s: %w", dst.Node.ID, err)
	}
	if ref.Root != meta.Roots[i] {
		return 0, fmt.Errorf("staged on %s with root %s, recorded %s", dst.Node.ID, ref.Root, meta.Roots[i])
	}
	return ref.Size, nil
}

// commitMoved commits meta on dst, where shard i is staged, and has dst
// verify the shard where it now lies. changed reports that dst holds a
// newer version (the commit was a no-op).
func (s *Scrubber) commitMoved(ctx context.Context, meta client.ObjectMeta, i int, dst member) (changed bool, err error) {
	cctx, cancel := s.callCtx(ctx)
	rec, err := dst.Client.Commit(cctx, meta)
	cancel()
	switch {
	case client.Newer(err) != "":
		// dst holds a newer version and keeps the moved shard staged.
		s.abort(ctx, &dst, meta)
		return true, nil
	case err != nil:
		return false, fmt.Errorf("committing on %s: %w", dst.Node.ID, err)
	case rec.Version > meta.Version:
		return true, nil
	case rec.Version != meta.Version || rec.Shard != i:
		return false, fmt.Errorf("%s kept version %s shard %d", dst.Node.ID, rec.Version, rec.Shard)
	}
	cd, err := s.codec(meta.Data, meta.Parity, meta.BlockSize)
	if err != nil {
		return false, err
	}
	size := cd.Layout(meta.Size).ShardSize()
	if err := s.th.Wait(ctx, int(min(size, 1<<30))); err != nil {
		return false, err
	}
	var res client.VerifyResult
	err = retry(ctx, func() error {
		vctx, cancel := s.dataCtx(ctx, size)
		defer cancel()
		rs, err := dst.Client.Verify(vctx, []client.ShardRef{{Bucket: meta.Bucket, Key: meta.Key, Version: meta.Version, Shard: i}})
		if err == nil {
			res = rs[0]
		}
		return err
	})
	if err == nil {
		s.stats.shardsVerified.Add(1)
		s.stats.bytesRead.Add(res.Bytes)
	}
	switch {
	case err != nil:
		return false, fmt.Errorf("verifying on %s: %w", dst.Node.ID, err)
	case res.Status == client.VerifyOK && res.Shard == i:
		return false, nil
	case res.Status == client.VerifyAbsent && res.Current > meta.Version:
		return true, nil
	}
	return false, fmt.Errorf("verifying on %s: %s shard %d %s", dst.Node.ID, res.Status, res.Shard, res.Detail)
}

// dropCopy drops the node's copy rec (compare and delete) and reports
// whether it did: false means the node's record is no longer rec (a write
// replaced it), which then stays. Nothing is dropped, and the error is
// errMapNotHeld, while a node of the key's placements may still serve
// readers on an older map (see mapHeld).
func (s *Scrubber) dropCopy(ctx context.Context, m member, rec client.Record) (bool, error) {
	if err := s.mapHeld(ctx, rec.Bucket, rec.Key, m.Node.ID); err != nil {
		return false, err
	}
	var dropped bool
	err := retry(ctx, func() error {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		var err error
		dropped, err = m.Client.DropShard(cctx, rec.Bucket, rec.Key, rec.Version, rec.Shard)
		return err
	})
	if err == nil && !dropped {
		s.log.Debug("scrub: copy to drop was replaced meanwhile", "node", m.Node.ID, "bucket", rec.Bucket, "key", rec.Key, "version", rec.Version)
	}
	return dropped, err
}

// dropStrays drops the copies of c's object that no longer belong
// anywhere: a second copy of a shard whose node (by the map) holds it
// verified, and, once every shard is verified on its node, older versions
// on nodes the map does not place the key on. It returns how many it
// dropped; a failure leaves the copy for the next pass.
func (s *Scrubber) dropStrays(ctx context.Context, c *checked) int {
	meta := c.meta
	n := meta.Data + meta.Parity
	allHome := len(c.placed) >= n && len(c.good) == n
	for i := range min(n, len(c.placed), len(c.good)) {
		if c.good[i] != c.placed[i].ID {
			allHome = false
		}
	}
	placed := c.placedSet()
	dropped := 0
	for _, id := range slices.Sorted(maps.Keys(c.held)) {
		rec := c.held[id]
		switch {
		case rec.Version == meta.Version:
			j := rec.Shard
			if j < 0 || j >= len(c.placed) || j >= len(c.good) || c.placed[j].ID == id || c.good[j] != c.placed[j].ID {
				continue
			}
		case rec.Version < meta.Version:
			if placed[id] || !allHome {
				continue
			}
		default:
			continue
		}
		mb, ok := s.byID[id]
		if !ok {
			continue
		}
		if ok, err := s.dropCopy(ctx, mb, rec); err != nil || !ok {
			if err != nil {
				s.log.Warn("scrub: dropping a stray copy", "node", id, "bucket", rec.Bucket, "key", rec.Key,
					"version", rec.Version, "shard", rec.Shard, "err", err)
			}
			continue
		}
		s.log.Info("scrub: dropped a copy the map no longer places", "node", id, "bucket", rec.Bucket, "key", rec.Key,
			"version", rec.Version, "shard", rec.Shard)
		delete(c.held, id)
		dropped++
	}
	return dropped
}

// dropShardless drops meta, a version without shards (a delete marker or
// a multipart manifest), and anything older, from the answering nodes the
// map does not place the key on, once every node it does place the key
// on has answered and holds meta: a drained node is then left holding
// nothing of the key, and nothing older can come back. It returns how
// many copies it dropped.
func (s *Scrubber) dropShardless(ctx context.Context, states []nodeState, meta client.ObjectMeta, placed []placement.Node) int {
	byID := make(map[string]*nodeState, len(states))
	for i := range states {
		byID[states[i].Node.ID] = &states[i]
	}
	inMap := make(map[string]bool, len(placed))
	for _, p := range placed {
		ns := byID[p.ID]
		if ns == nil || ns.Err != nil || ns.State.Committed == nil || ns.State.Committed.Version != meta.Version {
			return 0
		}
		inMap[p.ID] = true
	}
	dropped := 0
	for i := range states {
		ns := &states[i]
		rec := ns.State.Committed
		if ns.Err != nil || rec == nil || inMap[ns.Node.ID] || rec.Version > meta.Version {
			continue
		}
		if ok, err := s.dropCopy(ctx, ns.Member, *rec); err != nil || !ok {
			if err != nil {
				s.log.Warn("scrub: dropping a stray copy", "node", ns.Node.ID, "bucket", rec.Bucket, "key", rec.Key,
					"version", rec.Version, "err", err)
			}
			continue
		}
		ns.State.Committed = nil
		dropped++
	}
	return dropped
}
