package scrubber

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/nodeaccess"
	"github.com/kintsugi-store/kintsugi/internal/readrule"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// verdict is what a check concluded about an object.
type verdict int

const (
	vNone           verdict = iota // nothing committed any more
	vHealthy                       // all n shards verified
	vDegraded                      // d..n-1 shards verified: repairable
	vUnrecoverable                 // fewer than d verified, though it may have been acknowledged
	vUnacknowledged                // fewer than d, and it never reached write quorum: readers skip it
	vIncomplete                    // nodes did not answer: cannot tell
	vChanged                       // a newer version or a delete arrived while checking
	vMarker                        // the newest version is a delete marker
	vManifest                      // the newest version is a multipart manifest (no shards; its parts are objects of their own)
)

// nodeState is one node's answer about a key.
type nodeState = nodeaccess.Reply

// checked is the outcome of checking one key.
type checked struct {
	verdict verdict
	bucket  string
	key     string
	meta    client.ObjectMeta // the version readers serve; for vUnacknowledged, the newest committed one they skip
	placed  []placement.Node  // the current map's nodes for the key
	// good[i] is the id of a node holding a verified copy of shard i, ""
	// if none does.
	good []string
	// unknown[i]: no node showed shard i, but the node the map names for
	// it did not answer: it may well hold it.
	unknown []bool
	healthy int
	missing int
	corrupt int
	reason  string // for vIncomplete and vUnrecoverable

	// For the rebalancer, set for objects with d or more verified shards:
	states []nodeState              // every node asked and its answer
	held   map[string]client.Record // node id -> its committed record of the key
	moves  int                      // verified shards on another node than the map names (planMoves)
	strays int                      // copies no longer needed anywhere (planMoves)

	// noncurrent says meta is a noncurrent version of a versioned key:
	// rebuilt shards are committed below the key's current version.
	noncurrent bool
}

func (c *checked) ref() ObjectRef {
	return ObjectRef{Bucket: c.bucket, Key: c.key, Version: c.meta.Version, Healthy: c.healthy, Need: c.meta.Data, Reason: c.reason}
}

// checkOpts tunes checkObject.
type checkOpts struct {
	// listed are nodes whose listing showed the key: asked too, besides
	// the placement, since a node outside it may hold a copy.
	listed []string
	// known[i] is a node that verified shard i earlier in the pass; its
	// copy is not hashed again if it still holds the same version.
	known []string
	// fullListing says every node of the map answered the listing that
	// found the key, so the nodes asked hold every record of it there is:
	// the condition for dropping an old delete marker.
	fullListing bool
	// account says this is the object's first check in the pass: count
	// what it finds in the report.
	account bool
}

// checkObject finds the version of bucket/key that readers serve (the
// read rule, internal/readrule), finishes a commit its writer left half
// done (roll forward), has every holder verify its shard where it lies,
// and classifies the object. A live delete marker is copied to the nodes
// that lack it and, once old and held by every node, dropped.
func (s *Scrubber) checkObject(ctx context.Context, t *tally, bucket, key string, o checkOpts) (checked, error) {
	c := checked{bucket: bucket, key: key, placed: s.m.PlaceKey(bucket, key)}
	asked := s.members(c.placed, slices.Concat(s.prevPlaced(bucket, key), o.listed, o.known)...)
	states := s.statAll(ctx, asked, bucket, key)
	if err := ctx.Err(); err != nil {
		return c, err
	}
	// Nodes the versions found name as holders but that were not asked
	// (shards not yet moved after several map changes), as readers do.
	// They only add holders: their silence counts for nothing.
	if extra := s.namedNodes(asked, states); len(extra) > 0 {
		for _, ns := range s.statAll(ctx, extra, bucket, key) {
			if ns.Err == nil {
				states = append(states, ns)
			}
		}
		if err := ctx.Err(); err != nil {
			return c, err
		}
	}
	// Slots the map could not fill count as unreachable: an older map may
	// have filled them.
	unfilled := max(s.m.N()-len(c.placed), 0)
	unreached := unfilled
	for _, ns := range states {
		if ns.Err != nil {
			s.log.Debug("scrub: stat failed", "node", ns.Node.ID, "bucket", bucket, "key", key, "err", ns.Err)
			unreached++
		}
	}
	// The live version is the one readers would serve (internal/readrule).
	in := readrule.Input{Answers: nodeaccess.Answers(states), Silent: unfilled, WriteQuorum: s.m.WriteQuorum, MinQuorum: s.m.MinWriteQuorum(), NoRollForward: s.cfg.DryRun}
	v := readrule.Decide(in)
	if v.Kind == readrule.RollForward && !readrule.Shardless(v.Meta) {
		if k := s.rollForward(ctx, states, v); k > 0 {
			t.add(func(r *Report) { r.RolledForward += int64(k) })
		}
		in.Answers, in.NoRollForward = nodeaccess.Answers(states), true
		v = readrule.Decide(in)
	}
	newest := v.Meta
	c.meta = newest
	switch {
	case v.Kind == readrule.RollForward || v.Kind == readrule.Deleted || v.Kind == readrule.Serve && readrule.Shardless(newest):
		// A marker or manifest to spread: copyShardless commits it on the
		// answering nodes that hold something older, which is the roll
		// forward the rule asks for.
		if newest.Deleted {
			s.checkMarker(ctx, t, states, newest, unreached, o.fullListing)
			c.verdict = vMarker
		} else {
			if !s.cfg.DryRun {
				if k := s.copyShardless(ctx, states, newest); k > 0 {
					t.add(func(r *Report) { r.ManifestsRepaired += int64(k) })
				}
			}
			c.verdict = vManifest
		}
		if !s.cfg.DryRun {
			if k := s.dropShardless(ctx, states, newest, c.placed); k > 0 {
				s.stats.copiesDropped.Add(int64(k))
				t.add(func(r *Report) { r.CopiesDropped += int64(k) })
			}
		}
		return c, nil
	case len(v.Skipped) > 0:
		// The newest committed version never reached the write quorum and
		// cannot be read: readers skip it.
		c.meta, c.verdict = v.Skipped[0], vUnacknowledged
		shards := make(map[int]bool)
		for _, ns := range states {
			if cm := ns.State.Committed; ns.Err == nil && cm != nil && cm.Version == c.meta.Version && cm.Shard >= 0 {
				shards[cm.Shard] = true
			}
		}
		c.healthy = len(shards)
		if vd, why, short := fallbackShort(states, c.meta, unreached); short {
			c.verdict, c.reason = vd, why
		}
		return c, nil
	case v.Kind == readrule.NotFound || newest.Version == "":
		if unreached > 0 {
			c.verdict, c.reason = vIncomplete, fmt.Sprintf("%d nodes did not answer", unreached)
		}
		return c, nil
	case v.Kind != readrule.Serve:
		// Unavailable or in flux: it may have been acknowledged and fewer
		// than d of its shards are held.
		c.healthy = v.Held
		if unreached > 0 {
			c.verdict, c.reason = vIncomplete, fmt.Sprintf("%d shards held, %d nodes did not answer", v.Held, unreached)
		} else {
			c.verdict, c.reason = vUnrecoverable, fmt.Sprintf("only %d of %d shards held, %d needed", v.Held, newest.Data+newest.Parity, newest.Data)
		}
		return c, nil
	}

	n := newest.Data + newest.Parity
	holders := make([]*nodeState, n)
	for shard, i := range v.Holders {
		if i >= 0 {
			holders[shard] = &states[i]
		}
	}
	c.good = make([]string, n)
	c.unknown = make([]bool, n)
	failed := make(map[string]bool)
	for _, ns := range states {
		if ns.Err != nil {
			failed[ns.Node.ID] = true
		}
	}
	for i, h := range holders {
		c.unknown[i] = h == nil && (i >= len(c.placed) || failed[c.placed[i].ID])
	}

	cd, err := s.codec(newest.Data, newest.Parity, newest.BlockSize)
	if err != nil {
		c.verdict, c.reason = vUnrecoverable, fmt.Sprintf("unusable erasure parameters: %v", err)
		return c, nil
	}
	shardSize := cd.Layout(newest.Size).ShardSize()
	type result struct {
		res    client.VerifyResult
		err    error
		called bool // hashed on the node now, not known from earlier
	}
	results := make([]result, n)
	var verified sync.WaitGroup
	for i, h := range holders {
		if h == nil {
			continue
		}
		if i < len(o.known) && o.known[i] == h.Node.ID {
			results[i].res = client.VerifyResult{Status: client.VerifyOK, Shard: i}
			continue
		}
		if err := s.th.Wait(ctx, int(min(shardSize, 1<<30))); err != nil {
			return c, err
		}
		verified.Go(func() {
			ref := client.ShardRef{Bucket: bucket, Key: key, Version: newest.Version, Shard: i}
			err := retry(ctx, func() error {
				vctx, cancel := s.dataCtx(ctx, shardSize)
				defer cancel()
				rs, err := h.Client.Verify(vctx, []client.ShardRef{ref})
				if err == nil {
					results[i].res = rs[0]
				}
				return err
			})
			results[i].err, results[i].called = err, true
		})
	}
	verified.Wait()
	if err := ctx.Err(); err != nil {
		return c, err
	}

	failedCalls := 0
	var verifiedShards, verifiedBytes int64
	for i, h := range holders {
		r := results[i]
		switch {
		case h == nil && c.unknown[i]:
			// Not counted missing: its node did not say.
		case h == nil:
			c.missing++
		case r.err != nil:
			failedCalls++
			s.log.Debug("scrub: verify failed", "node", h.Node.ID, "bucket", bucket, "key", key, "err", r.err)
		case r.res.Status == client.VerifyOK:
			c.good[i] = h.Node.ID
			c.healthy++
		case r.res.Status == client.VerifyAbsent && r.res.Current > newest.Version:
			c.verdict = vChanged
			return c, nil
		case r.res.Status == client.VerifyCorrupt:
			c.corrupt++
			s.log.Warn("scrub: corrupt shard", "node", h.Node.ID, "bucket", bucket, "key", key,
				"version", newest.Version, "shard", i, "detail", r.res.Detail)
		default: // missing, or absent because the node lost the record meanwhile
			c.missing++
			s.log.Warn("scrub: missing shard", "node", h.Node.ID, "bucket", bucket, "key", key,
				"version", newest.Version, "shard", i, "status", r.res.Status, "detail", r.res.Detail)
		}
		if r.called && r.err == nil && (r.res.Status == client.VerifyOK || r.res.Bytes > 0) {
			verifiedShards++
			verifiedBytes += r.res.Bytes
		}
	}
	s.stats.shardsVerified.Add(verifiedShards)
	s.stats.bytesRead.Add(verifiedBytes)
	if o.account {
		t.add(func(r *Report) {
			r.ShardsVerified += verifiedShards
			r.ShardBytes += verifiedBytes
		})
	}
	unknown := 0
	for _, u := range c.unknown {
		if u {
			unknown++
		}
	}
	if c.healthy >= newest.Data {
		c.states = states
		c.held = make(map[string]client.Record)
		for _, ns := range states {
			if ns.Err == nil && ns.State.Committed != nil {
				c.held[ns.Node.ID] = *ns.State.Committed
			}
		}
		c.planMoves()
	}
	switch {
	case c.healthy == n:
		c.verdict = vHealthy
	case c.healthy+unknown == n:
		c.verdict, c.reason = vIncomplete, fmt.Sprintf("%d shards verified, the nodes of %d more did not answer", c.healthy, unknown)
	case c.healthy >= newest.Data:
		c.verdict = vDegraded
	case failedCalls > 0 || unreached > 0:
		c.verdict, c.reason = vIncomplete, fmt.Sprintf("%d shards verified, %d nodes did not answer", c.healthy, failedCalls+unreached)
	default:
		c.verdict, c.reason = vUnrecoverable, fmt.Sprintf("%d of %d shards verified (%d missing, %d corrupt), %d needed",
			c.healthy, n, c.missing, c.corrupt, newest.Data)
	}
	return c, nil
}

// statAll asks every node in nodes for the key's state, at once.
func (s *Scrubber) statAll(ctx context.Context, nodes []member, bucket, key string) []nodeState {
	states := make([]nodeState, len(nodes))
	each(len(nodes), 0, func(i int) {
		var st client.KeyState
		err := retry(ctx, func() error {
			cctx, cancel := s.callCtx(ctx)
			defer cancel()
			var err error
			st, err = nodes[i].Client.Stat(cctx, bucket, key)
			return err
		})
		if kerr.Is(kerr.NotExist, err) {
			st, err = client.KeyState{}, nil
		}
		states[i] = nodeState{Member: nodes[i], State: st, Err: err}
	})
	return states
}

// namedNodes returns the nodes that the committed records in states name
// as shard holders (ObjectMeta.Nodes) and that are not among asked nor
// removed from the map.
func (s *Scrubber) namedNodes(asked []member, states []nodeState) []member {
	return nodeaccess.Named(asked, states, func(id string) (member, bool) {
		mb, ok := s.byID[id]
		return mb, ok
	})
}

// retry calls fn again, once and after a short pause, if it fails with a
// transient error (a reset connection, a node's momentary 503): a single
// hiccup must not make a healthy shard look missing.
func retry(ctx context.Context, fn func() error) error {
	err := fn()
	if err == nil || !kerr.Is(kerr.Transient, err) || ctx.Err() != nil {
		return err
	}
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return err
	case <-t.C:
	}
	return fn()
}

// superseded reports whether a newer version than c's (or a delete
// marker) is now committed on a node that c's check asked.
func (s *Scrubber) superseded(ctx context.Context, c checked) bool {
	states := s.statAll(ctx, s.members(c.placed, c.good...), c.bucket, c.key)
	vs := readrule.Committed(nodeaccess.Answers(states))
	return len(vs) > 0 && vs[0].Version > c.meta.Version
}

// rollForward sends the commits of the RollForward verdict v: its version
// is committed elsewhere, so its writer passed its stage quorum and meant
// it to be visible. It returns the commits made and updates states.
func (s *Scrubber) rollForward(ctx context.Context, states []nodeState, v readrule.Verdict) int {
	meta := v.Meta
	var mu sync.Mutex
	done := 0
	each(len(v.Commits), 0, func(k int) {
		ns := &states[v.Commits[k].Answer]
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		rec, err := ns.Client.Commit(cctx, meta)
		if client.Newer(err) != "" {
			return // a newer version reached the node meanwhile
		}
		if err != nil {
			s.log.Warn("scrub: roll forward failed", "node", ns.Node.ID, "bucket", meta.Bucket, "key", meta.Key, "version", meta.Version, "err", err)
			return
		}
		if rec.Version != meta.Version {
			return // a newer version reached the node meanwhile
		}
		s.log.Info("scrub: rolled forward", "node", ns.Node.ID, "bucket", meta.Bucket, "key", meta.Key, "version", meta.Version, "shard", rec.Shard)
		ns.State.Committed = &rec
		mu.Lock()
		done++
		mu.Unlock()
	})
	return done
}

// checkMarker copies the delete marker meta to the answering nodes whose
// committed version is older (so a later loss of the others cannot bring
// an older version back), and drops it everywhere once it is older than
// the marker grace and nothing else of the key is left anywhere.
func (s *Scrubber) checkMarker(ctx context.Context, t *tally, states []nodeState, meta client.ObjectMeta, unreached int, fullListing bool) {
	if s.cfg.DryRun {
		return
	}
	if repaired := s.copyShardless(ctx, states, meta); repaired > 0 {
		t.add(func(r *Report) { r.MarkersRepaired += int64(repaired) })
	}

	// Dropping a marker is safe only if no node holds anything older of
	// the key that it would let back: every node of the map answered the
	// listing (so every node holding the key was asked) and every node
	// asked answered, holds exactly this marker and has nothing staged.
	if !fullListing || unreached > 0 || s.now().Sub(markerTime(meta)) < s.cfg.MarkerGrace {
		return
	}
	for _, ns := range states {
		if ns.Err != nil || len(ns.State.Staged) > 0 || ns.State.Committed == nil || ns.State.Committed.Version != meta.Version {
			return
		}
	}
	dropped := 0
	for _, ns := range states {
		cctx, cancel := s.callCtx(ctx)
		ok, err := ns.Client.DropMarker(cctx, meta.Bucket, meta.Key, meta.Version)
		cancel()
		if err != nil {
			// The nodes that dropped it hold nothing of the key, the
			// others still the marker: nothing can come back. The next
			// pass finishes the job.
			s.log.Warn("scrub: dropping delete marker failed", "node", ns.Node.ID, "bucket", meta.Bucket, "key", meta.Key, "err", err)
			return
		}
		if ok {
			dropped++
		}
	}
	if dropped > 0 {
		s.log.Info("scrub: dropped delete marker", "bucket", meta.Bucket, "key", meta.Key, "version", meta.Version, "nodes", dropped)
		t.add(func(r *Report) { r.MarkersRemoved++ })
	}
}

// copyShardless commits meta, a version without shards of its own (a
// delete marker or a multipart manifest), on the answering nodes whose
// committed version is older or missing, and returns how many took it.
// The nodes' newest-wins rule keeps anything newer. states is updated.
func (s *Scrubber) copyShardless(ctx context.Context, states []nodeState, meta client.ObjectMeta) int {
	var mu sync.Mutex
	copied := 0
	each(len(states), 0, func(i int) {
		ns := &states[i]
		if ns.Err != nil || (ns.State.Committed != nil && ns.State.Committed.Version >= meta.Version) {
			return
		}
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		rec, err := ns.Client.Commit(cctx, meta)
		if err != nil {
			s.log.Warn("scrub: copying a shardless version failed", "node", ns.Node.ID, "bucket", meta.Bucket,
				"key", meta.Key, "version", meta.Version, "err", err)
			return
		}
		ns.State.Committed = &rec
		if rec.Version == meta.Version {
			mu.Lock()
			copied++
			mu.Unlock()
		}
	})
	return copied
}

// markerTime is when a delete marker was written.
func markerTime(meta client.ObjectMeta) time.Time {
	if !meta.Modified.IsZero() {
		return meta.Modified
	}
	if id, err := ulid.ParseStrict(client.BaseVersion(meta.Version)); err == nil {
		return ulid.Time(id.Time())
	}
	return time.Time{}
}

// account counts a first check in the report and the metrics.
func (s *Scrubber) account(t *tally, c checked) {
	s.stats.shardsMissing.Add(int64(c.missing))
	s.stats.shardsCorrupt.Add(int64(c.corrupt))
	switch c.verdict {
	case vMarker:
		t.add(func(r *Report) { r.Markers++ })
		return
	case vManifest:
		t.add(func(r *Report) { r.Manifests++ })
		return
	case vChanged:
		t.add(func(r *Report) { r.Changed++ })
		return
	case vNone:
		return
	case vUnacknowledged:
		s.log.Info("scrub: unreadable version never acknowledged; readers skip it",
			"bucket", c.bucket, "key", c.key, "version", c.meta.Version, "shards", c.healthy)
		t.add(func(r *Report) { r.Unacknowledged++ })
		return
	case vIncomplete:
		t.incomplete("%s/%s: %s", c.bucket, c.key, c.reason)
		return
	}
	s.stats.objects.Add(1)
	t.add(func(r *Report) {
		r.Objects++
		r.RunObjects++
		r.Bytes += c.meta.Size
		if c.meta.Data < s.m.DataShards {
			r.Raised++
			r.RaisedBytes += c.meta.Size
		}
		r.ShardsMissing += int64(c.missing)
		r.ShardsCorrupt += int64(c.corrupt)
		r.Redundancy[c.healthy]++
		r.MovesPlanned += int64(c.moves)
		switch {
		case c.verdict == vHealthy && !s.needsRepair(c), c.verdict == vUnrecoverable, s.cfg.DryRun:
			// Otherwise counted once repaired or rebalanced.
			r.RedundancyAfter[c.healthy]++
		}
	})
	if c.verdict == vUnrecoverable {
		s.log.Error("scrub: object cannot be repaired", "bucket", c.bucket, "key", c.key, "version", c.meta.Version, "reason", c.reason)
		t.unrecoverable(c.ref())
	}
}
