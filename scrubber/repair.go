package scrubber

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// settle repairs a degraded object, or rebalances a misplaced one, right
// away and reports whether the object needs nothing more from this pass.
func (r *run) settle(ctx context.Context, c checked) bool {
	switch {
	case r.s.needsRepair(c):
		if r.s.cfg.DryRun {
			return true
		}
		return r.repairOne(ctx, c)
	case c.verdict == vIncomplete:
		return false
	}
	return true
}

// repairOne brings an object with d or more verified shards to the map's
// placement: it moves the shards that lie on other nodes than the map
// names (rebalance), rebuilds the missing ones, drops the copies no
// longer needed, and accounts for it. It reports whether the object ended
// whole and in place (or was taken over by a newer write).
func (r *run) repairOne(ctx context.Context, c checked) bool {
	s := r.s
	// Shards written from here on name the map's nodes.
	c.meta = placedMeta(c.meta, c.placed)
	if s.recodable(c) {
		// Written at the map's layout instead of rebuilt at its own;
		// if that fails, the version is repaired as it is.
		if done, ok := r.recodeOne(ctx, c); done {
			return ok
		}
	}
	var mv moved
	if c.moves > 0 {
		mv = s.rebalance(ctx, &c)
		if ctx.Err() != nil {
			return false // the pass ends; its checkpoint has the object
		}
	}
	var out outcome
	if !mv.changed && slices.Contains(c.good, "") {
		out = s.rebuild(ctx, c)
		for _, i := range out.slots {
			c.good[i] = c.placed[i].ID
			c.held[c.placed[i].ID] = client.Record{ObjectMeta: c.meta, Shard: i}
		}
	}
	healthy := 0
	for _, id := range c.good {
		if id != "" {
			healthy++
		}
	}
	changed := mv.changed || out.changed
	if !changed && c.held != nil {
		mv.dropped += s.dropStrays(ctx, &c)
	}
	if (out.failed > 0 || mv.failed > 0) && !changed && s.superseded(ctx, c) {
		// A write or delete replaced the version under the rebuild or
		// move (and took its source shards away): not a failure, the
		// writer owns the key now.
		out.failed, out.reasons, mv.failed, mv.reasons, changed = 0, nil, 0, nil, true
	}
	s.stats.shardsMoved.Add(int64(mv.moved))
	s.stats.movesFailed.Add(int64(mv.failed))
	s.stats.copiesDropped.Add(int64(mv.dropped))
	r.t.add(func(rep *Report) {
		rep.ShardsRebuilt += int64(out.rebuilt)
		rep.BytesRebuilt += out.bytes
		rep.RepairsFailed += int64(out.failed)
		rep.MovesDone += int64(mv.moved)
		rep.BytesMoved += mv.bytes
		rep.MovesFailed += int64(mv.failed)
		rep.CopiesDropped += int64(mv.dropped)
		if changed {
			rep.Changed++
		} else {
			rep.RedundancyAfter[healthy]++
		}
	})
	for _, why := range slices.Concat(mv.reasons, out.reasons) {
		r.t.incomplete("%s/%s version %s: %s", c.bucket, c.key, c.meta.Version, why)
	}
	r.progress(c.bucket, c.key)
	return out.failed == 0 && mv.failed == 0
}

// repair drains the queue, lowest healthy count (highest risk) first.
func (r *run) repair(ctx context.Context) error {
	s := r.s
	for {
		entries, err := s.state.Peek(max(s.cfg.Concurrency, 1))
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return r.save()
		}
		errs := make([]error, len(entries))
		each(len(entries), s.cfg.Concurrency, func(i int) {
			errs[i] = r.repairQueued(ctx, entries[i].Value)
		})
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		if err := r.saveRemoving(entries); err != nil {
			return err
		}
	}
}

// repairQueued checks a queued object again (what changed since the walk:
// new versions, a node's answer; shards verified then are not hashed
// again) and rebuilds what is still missing.
func (r *run) repairQueued(ctx context.Context, val []byte) error {
	s := r.s
	var q queued
	if err := json.Unmarshal(val, &q); err != nil {
		return kerr.E("scrubber.repair", kerr.Internal, err)
	}
	c, err := s.checkObject(ctx, r.t, q.Bucket, q.Key, checkOpts{known: q.Good})
	if err != nil {
		return err
	}
	switch {
	case s.needsRepair(c) && c.meta.Version == q.Version:
		r.repairOne(ctx, c)
	case c.verdict == vHealthy && c.meta.Version == q.Version:
		// Repaired or moved meanwhile, by a reader's hint, a late commit
		// or a run of this pass that was interrupted before its
		// checkpoint.
		r.t.add(func(rep *Report) { rep.RedundancyAfter[c.healthy]++ })
	case c.verdict == vUnrecoverable && c.meta.Version == q.Version:
		// Lost more shards since the walk; the walk counted it degraded.
		r.t.add(func(rep *Report) { rep.RedundancyAfter[c.healthy]++ })
		t := c.ref()
		s.log.Error("scrub: object cannot be repaired", "bucket", t.Bucket, "key", t.Key, "version", t.Version, "reason", t.Reason)
		r.t.unrecoverable(t)
	case c.verdict == vIncomplete:
		r.t.incomplete("%s/%s: %s", q.Bucket, q.Key, c.reason)
	default:
		r.t.add(func(rep *Report) { rep.Changed++ })
	}
	return nil
}

// needsRepair reports whether c goes to the repair phase: it is short of
// shards, has shards to move or copies to drop, or is to be re-coded at
// the map's layout.
func (s *Scrubber) needsRepair(c checked) bool {
	return c.verdict == vDegraded || c.verdict == vHealthy && (c.rebalance() || s.recodable(c))
}

// recodeOne re-codes c (see recode) and accounts for it. done says the
// object needs nothing more from this pass (re-coded, or rewritten by a
// client meanwhile); otherwise it is to be repaired at its own layout.
func (r *run) recodeOne(ctx context.Context, c checked) (done, ok bool) {
	s := r.s
	out := s.recode(ctx, c)
	switch {
	case out.done:
		r.t.add(func(rep *Report) {
			rep.Recoded++
			rep.RecodedBytes += c.meta.Size
			rep.RedundancyAfter[out.committed]++
		})
	case out.changed:
		s.log.Info("scrub: re-code stopped: the key was rewritten", "bucket", c.bucket, "key", c.key,
			"version", c.meta.Version, "detail", out.reason)
		r.t.add(func(rep *Report) { rep.Changed++ })
	case out.committed > 0:
		// Committed on some nodes, staged on the rest: readers and the
		// staged phase finish it, and it holds V's bytes either way.
		s.log.Warn("scrub: re-code committed short of the write quorum", "bucket", c.bucket, "key", c.key,
			"version", c.meta.Version, "detail", out.reason)
		r.t.incomplete("%s/%s version %s: re-code %s", c.bucket, c.key, c.meta.Version, out.reason)
		r.t.add(func(rep *Report) { rep.RedundancyAfter[c.healthy]++ })
	default:
		s.log.Warn("scrub: re-code failed; the version stays at its own layout", "bucket", c.bucket, "key", c.key,
			"version", c.meta.Version, "detail", out.reason)
		return false, false
	}
	r.progress(c.bucket, c.key)
	return true, out.done || out.changed
}
