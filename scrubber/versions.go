package scrubber

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Versioned keys (docs/versioning.md). checkObject handles a key's current
// version; the noncurrent ones are checked here, after it, key by key:
// each is verified on the nodes that hold it and rebuilt from d verified
// shards where shards are missing or corrupt, committed below the current
// version (Client.CommitNoncurrent). A version deleted by version on some
// node is deleted on every node that still holds it.

// commitNoncurrent returns m's CommitNoncurrent.
func commitNoncurrent(m *member) func(context.Context, client.ObjectMeta) (client.Record, error) {
	return client.VersionsOf(m.Client).CommitNoncurrent
}

// afterCheck runs what the pass does for a key once checkObject is done
// with its current version: its noncurrent versions, then its bucket's
// lifecycle rules.
func (s *Scrubber) afterCheck(ctx context.Context, t *tally, c checked) error {
	if c.meta.Versioning == "" && !c.meta.Versioned && s.bucketRecord(c.bucket).Versioning == "" {
		return s.lifecycle(ctx, t, c, nil)
	}
	nvs, err := s.checkNoncurrent(ctx, t, c)
	if err != nil {
		return err
	}
	return s.lifecycle(ctx, t, c, nvs)
}

// noteBuckets keeps the newest bucket records of the pass.
func (s *Scrubber) noteBuckets(recs map[string]client.BucketRecord) {
	s.bucketsMu.Lock()
	defer s.bucketsMu.Unlock()
	s.bucketRecs = recs
}

// bucketRecord returns the pass's newest record of bucket (zero if none).
func (s *Scrubber) bucketRecord(bucket string) client.BucketRecord {
	s.bucketsMu.Lock()
	defer s.bucketsMu.Unlock()
	return s.bucketRecs[bucket]
}

// nodeVersions is one node's answer about a key's versions.
type nodeVersions struct {
	member
	kv  client.KeyVersions
	err error
}

// keyVersions asks the key's nodes, in both maps, for every version they
// hold.
func (s *Scrubber) keyVersions(ctx context.Context, c checked) []nodeVersions {
	// The nodes checkObject asked (those whose listing showed the key
	// among them) too: a drained node holds versions the map no longer
	// places there.
	ids := s.prevPlaced(c.bucket, c.key)
	for _, ns := range c.states {
		ids = append(ids, ns.Node.ID)
	}
	asked := s.members(c.placed, ids...)
	out := make([]nodeVersions, len(asked))
	each(len(asked), 0, func(i int) {
		out[i].member = asked[i]
		vc := client.VersionsOf(asked[i].Client)
		out[i].err = retry(ctx, func() error {
			cctx, cancel := s.callCtx(ctx)
			defer cancel()
			var err error
			out[i].kv, err = vc.KeyVersions(cctx, c.bucket, c.key)
			return err
		})
	})
	return out
}

// checkNoncurrent checks and repairs the noncurrent versions of the key
// c checked, and returns the nodes' answers.
func (s *Scrubber) checkNoncurrent(ctx context.Context, t *tally, c checked) ([]nodeVersions, error) {
	nvs := s.keyVersions(ctx, c)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	purged := map[string]bool{}
	for _, nv := range nvs {
		for _, v := range nv.kv.Purged {
			purged[v] = true
		}
	}
	// Deletions by version reach the nodes that missed them.
	spread := 0
	for _, nv := range nvs {
		for _, r := range nv.kv.Versions {
			if !purged[r.Version] || s.cfg.DryRun {
				continue
			}
			cctx, cancel := s.callCtx(ctx)
			_, err := client.VersionsOf(nv.Client).DeleteVersion(cctx, c.bucket, c.key, r.Version)
			cancel()
			if err != nil {
				t.incomplete("%s/%s version %s: deleting it on %s: %v", c.bucket, c.key, r.Version, nv.Node.ID, err)
				continue
			}
			spread++
		}
	}
	if spread > 0 {
		t.add(func(r *Report) { r.PurgesSpread += int64(spread) })
	}
	// Every version below the one checkObject decided on, once each.
	byVersion := map[string]client.ObjectMeta{}
	for _, nv := range nvs {
		for _, r := range nv.kv.Versions {
			if !purged[r.Version] && r.Version < c.meta.Version {
				byVersion[r.Version] = r.ObjectMeta
			}
		}
	}
	versions := slices.Sorted(func(yield func(string) bool) {
		for v := range byVersion {
			if !yield(v) {
				return
			}
		}
	})
	for _, v := range versions {
		if err := s.checkOneNoncurrent(ctx, t, c, nvs, byVersion[v]); err != nil {
			return nil, err
		}
	}
	if n := len(versions); n > 0 {
		t.add(func(r *Report) { r.Noncurrent += int64(n) })
	}
	return nvs, nil
}

// checkOneNoncurrent verifies one noncurrent version and rebuilds what it
// lacks. A delete marker or manifest (no shards) is copied to the placed
// nodes that answered without it.
func (s *Scrubber) checkOneNoncurrent(ctx context.Context, t *tally, c checked, nvs []nodeVersions, meta client.ObjectMeta) error {
	holds := func(nv nodeVersions) (client.Record, bool) {
		for _, r := range nv.kv.Versions {
			if r.Version == meta.Version {
				return r, true
			}
		}
		return client.Record{}, false
	}
	placed := map[string]bool{}
	for _, n := range c.placed {
		placed[n.ID] = true
	}
	if meta.Deleted || len(meta.Parts) > 0 {
		if s.cfg.DryRun {
			return nil
		}
		for _, nv := range nvs {
			if _, ok := holds(nv); ok || nv.err != nil || !placed[nv.Node.ID] {
				continue
			}
			cctx, cancel := s.callCtx(ctx)
			_, err := commitNoncurrent(&nv.member)(cctx, meta)
			cancel()
			if err != nil {
				t.incomplete("%s/%s version %s: copying it to %s: %v", c.bucket, c.key, meta.Version, nv.Node.ID, err)
			}
		}
		return nil
	}
	n := meta.Data + meta.Parity
	cc := checked{bucket: c.bucket, key: c.key, meta: meta, placed: c.placed, noncurrent: true,
		good: make([]string, n), unknown: make([]bool, n)}
	failed := map[string]bool{}
	holder := make([]*nodeVersions, n)
	for i := range nvs {
		if nvs[i].err != nil {
			failed[nvs[i].Node.ID] = true
			continue
		}
		if r, ok := holds(nvs[i]); ok && r.Shard >= 0 && r.Shard < n && holder[r.Shard] == nil {
			holder[r.Shard] = &nvs[i]
		}
	}
	for i := range n {
		cc.unknown[i] = holder[i] == nil && (i >= len(c.placed) || failed[c.placed[i].ID])
	}
	var verified, bytes int64
	for i, h := range holder {
		if h == nil {
			if !cc.unknown[i] {
				cc.missing++
			}
			continue
		}
		ref := client.ShardRef{Bucket: c.bucket, Key: c.key, Version: meta.Version, Shard: i}
		var res client.VerifyResult
		err := retry(ctx, func() error {
			vctx, cancel := s.callCtx(ctx)
			defer cancel()
			rs, err := h.Client.Verify(vctx, []client.ShardRef{ref})
			if err == nil {
				res = rs[0]
			}
			return err
		})
		switch {
		case err != nil:
			t.incomplete("%s/%s version %s shard %d: verify on %s: %v", c.bucket, c.key, meta.Version, i, h.Node.ID, err)
			cc.unknown[i] = true
			continue
		case res.Status == client.VerifyOK:
			cc.good[i] = h.Node.ID
			cc.healthy++
		case res.Status == client.VerifyCorrupt:
			cc.corrupt++
		default:
			cc.missing++
		}
		verified++
		bytes += res.Bytes
	}
	t.add(func(r *Report) {
		r.ShardsVerified += verified
		r.ShardBytes += bytes
		r.ShardsMissing += int64(cc.missing)
		r.ShardsCorrupt += int64(cc.corrupt)
	})
	// A node takes a moved noncurrent version only under a newer current
	// one, which the repair phase moves first: else it would commit it
	// as its current record.
	newerThere := map[string]bool{}
	for _, nv := range nvs {
		if nv.err == nil && len(nv.kv.Versions) > 0 && nv.kv.Versions[0].Version > meta.Version {
			newerThere[nv.Node.ID] = true
		}
	}
	moving := cc.moveHome(c.placed, newerThere)
	switch {
	case cc.healthy == n && moving == 0:
		return nil
	case cc.healthy < meta.Data:
		if slices.Contains(cc.unknown, true) {
			t.incomplete("%s/%s version %s: %d shards verified, some nodes did not answer", c.bucket, c.key, meta.Version, cc.healthy)
			return nil
		}
		t.unrecoverable(ObjectRef{Bucket: c.bucket, Key: c.key, Version: meta.Version, Healthy: cc.healthy, Need: meta.Data,
			Reason: fmt.Sprintf("noncurrent version: %d of %d shards verified", cc.healthy, n)})
		return nil
	case s.cfg.DryRun:
		return nil
	}
	cc.meta = placedMeta(meta, c.placed)
	out := s.rebuild(ctx, cc)
	moved := min(moving, out.rebuilt)
	t.add(func(r *Report) {
		r.MovesPlanned += int64(moving)
		r.MovesDone += int64(moved)
		r.ShardsRebuilt += int64(out.rebuilt - moved)
		r.BytesRebuilt += out.bytes
		r.RepairsFailed += int64(out.failed)
	})
	for _, why := range out.reasons {
		t.incomplete("%s/%s version %s: %s", c.bucket, c.key, meta.Version, strings.TrimSpace(why))
	}
	return ctx.Err()
}

// moveHome readies a noncurrent version whose verified shards lie on other
// nodes than the map names (after a map change) to be moved, by a rebuild
// onto their placed nodes: each shard whose placed node is ready (see
// checkOneNoncurrent) and holds nothing of the version, as long as d
// sources remain. It never replaces a shard a node holds: a swap of shard
// indexes between nodes is not done for noncurrent versions yet, and such
// shards stay where they are (readable through the previous map only).
// The copies left behind are never read once the previous map is
// forgotten; no call drops a noncurrent copy yet. It returns the shards
// to move.
func (c *checked) moveHome(placed []placement.Node, ready map[string]bool) int {
	n := len(c.good)
	holding := map[string]bool{}
	for i := range n {
		if c.good[i] != "" {
			holding[c.good[i]] = true
		}
	}
	var targets []int
	for i := range min(n, len(placed)) {
		id := placed[i].ID
		if c.good[i] == "" || c.good[i] == id || !ready[id] || holding[id] {
			continue
		}
		holding[id] = true // one shard per node
		targets = append(targets, i)
	}
	if c.healthy-len(targets) < c.meta.Data {
		return 0 // not enough sources would remain: nothing moves now
	}
	for _, i := range targets {
		c.good[i] = ""
	}
	return len(targets)
}
