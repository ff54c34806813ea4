package scrubber

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/readrule"
	"github.com/kintsugi-store/kintsugi/scrubber/internal/checkpoint"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Phases of a pass, in order.
const (
	PhaseHints   = "hints"   // repair what gateways reported
	PhaseBuckets = "buckets" // copy bucket records to nodes that lack them
	PhaseWalk    = "walk"    // check every object, queue the degraded ones
	PhaseRepair  = "repair"  // rebuild the queue, fewest healthy shards first
	PhaseStaged  = "staged"  // sweep dangling staged versions
)

var phases = []string{PhaseHints, PhaseBuckets, PhaseWalk, PhaseRepair, PhaseStaged}

// Names in the checkpoint store.
const (
	statePass     = "pass"     // passState of the pass in progress
	stateLast     = "last"     // Report of the last finished pass
	stateCoverage = "coverage" // coverage
	setHinted     = "hinted"   // keys checked in the hints phase of this pass
)

// passState is the checkpoint of a pass in progress.
type passState struct {
	Phase   string    `json:"phase"`
	Bucket  string    `json:"bucket,omitempty"`
	After   string    `json:"after,omitempty"` // the last key done in Bucket
	Buckets []string  `json:"buckets,omitempty"`
	Epoch   uint64    `json:"epoch,omitempty"` // of the map the pass started with
	Report  Report    `json:"report"`
	Updated time.Time `json:"updated"`
}

// coverage remembers when the passes that completed started: every shard
// that existed when the last one started has been verified since.
type coverage struct {
	FirstStarted        time.Time `json:"first_started"`
	LastCompleteStarted time.Time `json:"last_complete_started,omitzero"`
}

// queued is an object waiting in the repair queue.
type queued struct {
	Bucket  string   `json:"bucket"`
	Key     string   `json:"key"`
	Version string   `json:"version"`
	Good    []string `json:"good"` // node id per verified shard index
}

// run is one Run of a pass.
type run struct {
	s         *Scrubber
	t         *tally
	ps        passState // where the run stands
	saved     passState // the last checkpoint written
	started   time.Time // of this run
	elapsed   float64   // seconds spent by earlier runs of the pass
	estimated int64
	queued    atomic.Int64 // entries in the repair queue
}

// seconds is the wall time of the pass so far.
func (r *run) seconds() float64 { return r.elapsed + r.s.now().Sub(r.started).Seconds() }

// ErrRunning is returned by Run while another Run is in progress.
var ErrRunning = errors.New("scrubber: a pass is already running")

// Run performs one full pass, or finishes the one a previous Run (of this
// or an earlier process with the same StateDir) left unfinished, and
// returns its report.
//
// The pass consumes the gateways' repair hints first, then copies bucket
// records where missing, walks every object of every bucket through the
// nodes' listings, rebuilds what it found degraded, fewest healthy shards
// first, and sweeps dangling staged versions. Its position is
// checkpointed as it goes.
//
// The error is for a pass that could not run (state unusable, every node
// down, ctx done); the report then says how far it got. Objects that
// cannot be repaired, and parts the pass could not cover, are in the
// report, not the error.
//
// Node calls carry the epoch of the map the pass works from. A node that
// holds a newer map refuses them and sends its map, which is installed
// (as by SetMap); the pass stops at its checkpoint and resumes once under
// the new map.
func (s *Scrubber) Run(ctx context.Context) (*Report, error) {
	for resumed := false; ; resumed = true {
		pctx, stop := context.WithCancelCause(ctx)
		rep, err := s.runPass(pctx, stop)
		newer := errors.Is(context.Cause(pctx), errNewMap)
		stop(nil)
		if err == nil || !newer || resumed || ctx.Err() != nil {
			return rep, err
		}
		s.log.Info("scrub: a node holds a newer cluster map; resuming the pass under it", "epoch", s.Map().Epoch)
	}
}

// runPass is one Run under one map; stop interrupts it.
func (s *Scrubber) runPass(ctx context.Context, stop context.CancelCauseFunc) (*Report, error) {
	const op = "scrubber.Run"
	if !s.running.CompareAndSwap(false, true) {
		return nil, kerr.E(op, kerr.Conflict, ErrRunning)
	}
	defer s.running.Store(false)
	defer s.setProgress(Progress{})
	s.useLatest()
	ctx = s.fenceCtx(ctx, stop)

	r := &run{s: s, t: &tally{}}
	resumed, err := s.state.Get(statePass, &r.ps)
	if err != nil {
		return nil, kerr.E(op, kerr.Internal, err)
	}
	started := s.now()
	if resumed && r.ps.Phase != "" {
		r.ps.Report.Resumed++
		r.ps.Report.ResumedFrom = &Position{Phase: r.ps.Phase, Bucket: r.ps.Bucket, Key: r.ps.After}
		r.ps.Report.RunObjects = 0
		if r.ps.Report.Redundancy == nil {
			r.ps.Report.Redundancy = map[int]int64{}
		}
		if r.ps.Report.RedundancyAfter == nil {
			r.ps.Report.RedundancyAfter = map[int]int64{}
		}
		if r.ps.Epoch != 0 && r.ps.Epoch != s.m.Epoch {
			// What the pass did so far followed an older map: the next
			// pass must see every object under this one.
			r.ps.Report.MapChanged = true
			s.log.Info("scrub: resuming under a newer cluster map", "epoch", s.m.Epoch, "pass_started_with", r.ps.Epoch)
		}
		s.log.Info("scrub: resuming pass from checkpoint", "phase", r.ps.Phase, "bucket", r.ps.Bucket,
			"after", r.ps.After, "objects", r.ps.Report.Objects, "started", r.ps.Report.Started)
	} else {
		if err := s.state.Reset(); err != nil {
			return nil, kerr.E(op, kerr.Internal, err)
		}
		r.ps = passState{Phase: phases[0], Epoch: s.m.Epoch, Report: newReport(started, s.cfg.DryRun)}
		s.log.Info("scrub: starting pass", "dry_run", s.cfg.DryRun, "nodes", len(s.nodes), "epoch", s.m.Epoch)
	}
	r.ps.Report.MapEpoch = s.m.Epoch
	r.t.r = r.ps.Report
	r.saved = r.ps
	r.started, r.elapsed = started, r.ps.Report.Seconds
	if err := s.noteStart(r.ps.Report.Started); err != nil {
		return nil, kerr.E(op, kerr.Internal, err)
	}
	r.estimated = s.estimate(ctx)
	if n, err := s.state.Len(); err == nil {
		r.queued.Store(int64(n))
	}

	finish := func(err error) (*Report, error) {
		rep := r.t.snapshot()
		rep.Seconds = r.seconds()
		if err != nil {
			if !errors.Is(context.Cause(ctx), errNewMap) {
				s.stats.passesFailed.Add(1)
			}
			// The next run resumes from the last checkpoint, whose counters
			// match its position; only the time spent is added.
			r.saved.Report.Seconds = rep.Seconds
			if r.saved.Phase != "" {
				if serr := s.state.Put(statePass, r.saved); serr != nil {
					s.log.Error("scrub: saving checkpoint", "err", serr)
				}
			}
			return &rep, kerr.E(op, err)
		}
		rep.Finished = s.now()
		if serr := s.complete(&rep); serr != nil {
			return &rep, kerr.E(op, kerr.Internal, serr)
		}
		switch {
		case rep.UnrecoverableCount > 0:
			s.stats.passesUnrepaired.Add(1)
		case rep.IncompleteCount > 0:
			s.stats.passesFailed.Add(1)
		default:
			s.stats.passesOK.Add(1)
		}
		return &rep, nil
	}

	for i := slices.Index(phases, r.ps.Phase); i >= 0 && i < len(phases); i++ {
		if r.ps.Phase != phases[i] {
			r.ps.Phase, r.ps.Bucket, r.ps.After = phases[i], "", ""
			if err := r.save(); err != nil {
				return finish(err)
			}
		}
		r.progress("", "")
		var err error
		switch phases[i] {
		case PhaseHints:
			err = r.hints(ctx)
		case PhaseBuckets:
			err = r.buckets(ctx)
		case PhaseWalk:
			err = r.walk(ctx)
		case PhaseRepair:
			err = r.repair(ctx)
		case PhaseStaged:
			err = r.staged(ctx)
		}
		if err != nil {
			return finish(err)
		}
	}
	if slices.Index(phases, r.ps.Phase) < 0 {
		return finish(fmt.Errorf("checkpoint names an unknown phase %q", r.ps.Phase))
	}
	return finish(nil)
}

// save checkpoints the pass. It is called between batches of work, never
// while workers run, so the counters always match the position.
func (r *run) save() error { return r.saveRemoving(nil) }

// saveRemoving checkpoints the pass and removes the repair queue entries
// done, atomically, so the counters always match the queue.
func (r *run) saveRemoving(done []checkpoint.Entry) error {
	ps := r.ps
	ps.Report = r.t.snapshot()
	ps.Report.Seconds = r.seconds()
	ps.Updated = r.s.now()
	if err := r.s.state.PutRemoving(statePass, ps, done); err != nil {
		return kerr.E("scrubber.checkpoint", kerr.Internal, err)
	}
	r.queued.Add(-int64(len(done)))
	r.saved = ps
	r.s.log.Debug("scrub: checkpoint", "phase", ps.Phase, "bucket", ps.Bucket, "after", ps.After, "objects", ps.Report.Objects)
	return nil
}

// complete records a finished pass and clears its checkpoint.
func (s *Scrubber) complete(rep *Report) error {
	if err := s.state.Put(stateLast, rep); err != nil {
		return err
	}
	var cov coverage
	if _, err := s.state.Get(stateCoverage, &cov); err != nil {
		return err
	}
	if rep.IncompleteCount == 0 && !rep.DryRun {
		cov.LastCompleteStarted = rep.Started
	}
	if err := s.state.Put(stateCoverage, cov); err != nil {
		return err
	}
	if err := s.state.Delete(statePass); err != nil {
		return err
	}
	if err := s.state.Reset(); err != nil {
		return err
	}
	s.mu.Lock()
	s.last = rep
	s.mu.Unlock()
	s.log.Info("scrub: pass complete", "objects", rep.Objects, "bytes", rep.Bytes, "shards_verified", rep.ShardsVerified,
		"missing", rep.ShardsMissing, "corrupt", rep.ShardsCorrupt, "rebuilt", rep.ShardsRebuilt,
		"unrecoverable", rep.UnrecoverableCount, "incomplete", rep.IncompleteCount,
		"seconds", fmt.Sprintf("%.1f", rep.Seconds))
	return nil
}

// noteStart remembers when the first pass ever started.
func (s *Scrubber) noteStart(t time.Time) error {
	var cov coverage
	found, err := s.state.Get(stateCoverage, &cov)
	if err != nil || (found && !cov.FirstStarted.IsZero()) {
		return err
	}
	cov.FirstStarted = t
	return s.state.Put(stateCoverage, cov)
}

// Coverage returns the start of the last complete pass (every shard that
// existed then has been verified since) and of the first pass ever, from
// the state; zero times if none.
func (s *Scrubber) Coverage() (lastComplete, first time.Time) {
	var cov coverage
	if _, err := s.state.Get(stateCoverage, &cov); err != nil {
		return time.Time{}, time.Time{}
	}
	return cov.LastCompleteStarted, cov.FirstStarted
}

func (s *Scrubber) loadLast() (*Report, error) {
	var rep Report
	found, err := s.state.Get(stateLast, &rep)
	if err != nil || !found {
		return nil, err
	}
	return &rep, nil
}

// estimate guesses the objects in the cluster from the nodes' counts:
// every object has n shards, each on its own node.
func (s *Scrubber) estimate(ctx context.Context) int64 {
	var mu sync.Mutex
	var total int64
	each(len(s.nodes), 0, func(i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		h, err := s.nodes[i].c.Health(cctx)
		if err != nil {
			return
		}
		mu.Lock()
		total += h.Objects
		mu.Unlock()
	})
	return total / int64(max(s.m.N(), 1))
}

func (s *Scrubber) setProgress(p Progress) {
	s.mu.Lock()
	s.progress = p
	s.mu.Unlock()
	if s.cfg.Progress != nil && p.Phase != "" {
		s.cfg.Progress(p)
	}
}

// progress publishes where the run stands.
func (r *run) progress(bucket, key string) {
	rep := r.t.snapshot()
	r.s.setProgress(Progress{
		Phase: r.ps.Phase, Bucket: bucket, Key: key,
		Objects: rep.Objects, Estimated: max(r.estimated, rep.Objects), Queue: int(r.queued.Load()),
		Bytes: rep.ShardBytes, Rebuilt: rep.ShardsRebuilt,
		MovesPlanned: rep.MovesPlanned, MovesDone: rep.MovesDone, MovesFailed: rep.MovesFailed, BytesMoved: rep.BytesMoved,
	})
}

// hints checks and repairs first the objects the gateways reported, then
// deletes the hints that are settled. Hints of a repair that failed stay
// for the next pass.
func (r *run) hints(ctx context.Context) error {
	s := r.s
	type source struct {
		m     member
		hints []client.Hint
	}
	var mu sync.Mutex
	var sources []source
	each(len(s.nodes), 0, func(i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		hs, err := s.nodes[i].c.ListHints(cctx, client.MaxListLen)
		if err != nil {
			r.t.incomplete("node %s: listing hints: %v", s.nodes[i].node.ID, err)
			return
		}
		if len(hs) > 0 {
			mu.Lock()
			sources = append(sources, source{s.nodes[i], hs})
			mu.Unlock()
		}
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	type objKey struct{ bucket, key string }
	var keys []objKey
	seen := make(map[objKey]bool)
	for _, src := range sources {
		for _, h := range src.hints {
			k := objKey{h.Bucket, h.Key}
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.SortFunc(keys, func(a, b objKey) int {
		return strings.Compare(a.bucket+"/"+a.key, b.bucket+"/"+b.key)
	})
	s.log.Info("scrub: consuming repair hints", "hints", len(sources), "objects", len(keys))

	checks := make([]checked, len(keys))
	errs := make([]error, len(keys))
	each(len(keys), s.cfg.Concurrency, func(i int) {
		checks[i], errs[i] = s.checkObject(ctx, r.t, keys[i].bucket, keys[i].key, checkOpts{account: true})
		if errs[i] == nil {
			s.account(r.t, checks[i])
			r.progress(keys[i].bucket, keys[i].key)
		}
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	// Fewest healthy shards first.
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return checks[a].healthy - checks[b].healthy })
	settled := make([]bool, len(keys))
	each(len(order), s.cfg.Concurrency, func(j int) {
		i := order[j]
		if errs[i] != nil {
			return
		}
		settled[i] = r.settle(ctx, checks[i])
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, k := range keys {
		if errs[i] == nil && settled[i] {
			if err := s.state.Mark(setHinted, k.bucket+"/"+k.key); err != nil {
				return err
			}
		}
	}
	if s.cfg.DryRun {
		return r.save()
	}
	// Delete, on each node, its hints about settled keys.
	index := make(map[objKey]int, len(keys))
	for i, k := range keys {
		index[k] = i
	}
	for _, src := range sources {
		var done []client.Hint
		for _, h := range src.hints {
			if i := index[objKey{h.Bucket, h.Key}]; errs[i] == nil && settled[i] {
				done = append(done, h)
			}
		}
		if len(done) == 0 {
			continue
		}
		cctx, cancel := s.callCtx(ctx)
		err := src.m.c.DeleteHints(cctx, done)
		cancel()
		if err != nil {
			r.t.incomplete("node %s: deleting hints: %v", src.m.node.ID, err)
			continue
		}
		r.t.add(func(rep *Report) { rep.HintsConsumed += int64(len(done)) })
	}
	return r.save()
}

// settle repairs a degraded object, or rebalances a misplaced one, right
// away and reports whether the object needs nothing more from this pass.
func (r *run) settle(ctx context.Context, c checked) bool {
	switch {
	case c.verdict == vDegraded, c.verdict == vHealthy && c.rebalance():
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

// buckets copies the newest record of every bucket to the nodes whose
// record is missing or older, and fixes the list of buckets to walk.
func (r *run) buckets(ctx context.Context) error {
	s := r.s
	lists := make([][]client.BucketRecord, len(s.nodes))
	errs := make([]error, len(s.nodes))
	each(len(s.nodes), 0, func(i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		lists[i], errs[i] = s.nodes[i].c.ListBuckets(cctx)
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	newest := make(map[string]client.BucketRecord)
	answered := 0
	for i, l := range lists {
		if errs[i] != nil {
			r.t.incomplete("node %s: listing buckets: %v", s.nodes[i].node.ID, errs[i])
			continue
		}
		answered++
		for _, b := range l {
			if cur, ok := newest[b.Name]; !ok || b.Version > cur.Version {
				newest[b.Name] = b
			}
		}
	}
	if answered == 0 {
		return kerr.E("scrubber.buckets", kerr.Unavailable, errors.New("no node answered"))
	}
	s.noteBuckets(newest)
	if !s.cfg.DryRun {
		for i, l := range lists {
			if errs[i] != nil {
				continue
			}
			have := make(map[string]string, len(l))
			for _, b := range l {
				have[b.Name] = b.Version
			}
			for _, b := range newest {
				if v, ok := have[b.Name]; ok && v >= b.Version {
					continue
				}
				cctx, cancel := s.callCtx(ctx)
				err := s.nodes[i].c.PutBucket(cctx, b)
				cancel()
				if err != nil {
					r.t.incomplete("node %s: copying bucket %s: %v", s.nodes[i].node.ID, b.Name, err)
					continue
				}
				s.log.Info("scrub: copied bucket record", "node", s.nodes[i].node.ID, "bucket", b.Name, "deleted", b.Deleted)
				r.t.add(func(rep *Report) { rep.BucketsRepaired++ })
			}
		}
	}
	var names []string
	for name, b := range newest {
		if !b.Deleted {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	r.ps.Buckets = names
	r.t.add(func(rep *Report) { rep.Buckets = len(names) })
	return r.save()
}

// walkBatch is how many keys the walk checks between checkpoints, per
// unit of concurrency.
const walkBatch = 4

// walk checks every key of every bucket, from the checkpoint on. Degraded
// objects are queued for the repair phase, by healthy shards.
func (r *run) walk(ctx context.Context) error {
	s := r.s
	for _, bucket := range r.ps.Buckets {
		if r.ps.Bucket != "" && bucket < r.ps.Bucket {
			continue // done before the checkpoint
		}
		after := ""
		if bucket == r.ps.Bucket {
			after = r.ps.After
		}
		r.ps.Bucket, r.ps.After = bucket, after
		ls := newLister(s, bucket, after)
		for {
			batch, err := ls.nextBatch(ctx, max(walkBatch*s.cfg.Concurrency, 8))
			if err != nil {
				return err
			}
			if len(batch) == 0 {
				break
			}
			if err := r.walkBatch(ctx, bucket, batch, ls.complete()); err != nil {
				return err
			}
			r.ps.After = batch[len(batch)-1].key
			if err := r.save(); err != nil {
				return err
			}
		}
		for _, id := range ls.failedNodes() {
			r.t.incomplete("bucket %s: node %s did not list it", bucket, id)
		}
	}
	return r.save()
}

func (r *run) walkBatch(ctx context.Context, bucket string, batch []listed, full bool) error {
	s := r.s
	errs := make([]error, len(batch))
	each(len(batch), s.cfg.Concurrency, func(i int) {
		k := batch[i]
		if hinted, err := s.state.Marked(setHinted, bucket+"/"+k.key); err != nil || hinted {
			errs[i] = err
			return
		}
		c, err := s.checkObject(ctx, r.t, bucket, k.key, checkOpts{listed: k.nodes, fullListing: full, account: true})
		if err != nil {
			errs[i] = err
			return
		}
		s.account(r.t, c)
		if errs[i] = s.afterCheck(ctx, r.t, c); errs[i] != nil {
			return
		}
		if (c.verdict == vDegraded || c.verdict == vHealthy && c.rebalance()) && !s.cfg.DryRun {
			q := queued{Bucket: bucket, Key: k.key, Version: c.meta.Version, Good: c.good}
			if errs[i] = s.state.Push(c.healthy, bucket+"/"+k.key, q); errs[i] == nil {
				r.queued.Add(1)
			}
		}
		r.progress(bucket, k.key)
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
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
	case (c.verdict == vDegraded || c.verdict == vHealthy && c.rebalance()) && c.meta.Version == q.Version:
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

// staged settles staged versions older than the staging grace, which
// nodes do not sweep by age alone unless superseded there: one that some
// node committed is rolled forward (its writer died between commits); one
// that every node of the key answered for and none committed is aborted
// (its writer died before committing). While a node does not answer, the
// version is left alone: it may be committed there.
func (r *run) staged(ctx context.Context) error {
	s := r.s
	type version struct{ bucket, key, version string }
	type holding struct {
		nodes []string
		bytes int64
		count int
	}
	var mu sync.Mutex
	old := make(map[version]*holding)
	cutoff := s.now().Add(-s.cfg.StagingGrace)
	each(len(s.nodes), 0, func(i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		list, err := s.nodes[i].c.ListStaged(cctx, client.MaxListLen)
		if err != nil {
			r.t.incomplete("node %s: listing staged shards: %v", s.nodes[i].node.ID, err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, st := range list {
			if !st.Staged.Before(cutoff) {
				continue
			}
			v := version{st.Bucket, st.Key, st.Version}
			h := old[v]
			if h == nil {
				h = &holding{}
				old[v] = h
			}
			if !slices.Contains(h.nodes, s.nodes[i].node.ID) {
				h.nodes = append(h.nodes, s.nodes[i].node.ID)
			}
			h.bytes += st.Size
			h.count++
		}
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	var versions []version
	for v := range old {
		versions = append(versions, v)
	}
	slices.SortFunc(versions, func(a, b version) int {
		return strings.Compare(a.bucket+"/"+a.key+"/"+a.version, b.bucket+"/"+b.key+"/"+b.version)
	})
	each(len(versions), s.cfg.Concurrency, func(i int) {
		v, h := versions[i], old[versions[i]]
		placed := s.m.PlaceKey(v.bucket, v.key)
		states := s.statAll(ctx, s.members(placed, h.nodes...), v.bucket, v.key)
		for _, ns := range states {
			if c := ns.st.Committed; ns.err == nil && c != nil && c.Version == v.version {
				// Committed somewhere: its writer passed its stage quorum,
				// so it is finished, never aborted. Nodes sweep such
				// staged shards only once a newer version supersedes them
				// there, so they wait for this (or the walk, or a reader).
				if s.cfg.DryRun {
					return
				}
				in := readrule.Input{Answers: answers(states), Silent: max(s.m.N()-len(placed), 0), WriteQuorum: s.m.WriteQuorum}
				if rv := readrule.Decide(in); rv.Kind == readrule.RollForward && rv.Meta.Version == v.version {
					if k := s.rollForward(ctx, states, rv); k > 0 {
						r.t.add(func(rep *Report) { rep.RolledForward += int64(k) })
					}
				}
				return
			}
		}
		for _, ns := range states {
			if ns.err != nil {
				// It may be committed on the silent node.
				r.t.incomplete("%s/%s staged version %s: node %s did not answer", v.bucket, v.key, v.version, ns.node.ID)
				return
			}
		}
		if s.cfg.DryRun {
			s.log.Info("scrub: would abort dangling staged version", "bucket", v.bucket, "key", v.key, "version", v.version, "shards", h.count)
			return
		}
		for _, id := range h.nodes {
			m := s.byID[id]
			cctx, cancel := s.callCtx(ctx)
			err := m.c.Abort(cctx, v.bucket, v.key, v.version)
			cancel()
			if err != nil {
				r.t.incomplete("%s/%s staged version %s: abort on %s: %v", v.bucket, v.key, v.version, id, err)
				return
			}
		}
		s.log.Info("scrub: aborted dangling staged version", "bucket", v.bucket, "key", v.key, "version", v.version,
			"shards", h.count, "bytes", h.bytes)
		r.t.add(func(rep *Report) {
			rep.StagedAborted += int64(h.count)
			rep.StagedBytes += h.bytes
		})
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.save()
}

// passPending reports whether an interrupted pass waits to be resumed (or
// the checkpoint cannot tell, in which case a pass had better run).
func (s *Scrubber) passPending() bool {
	var ps passState
	found, err := s.state.Get(statePass, &ps)
	return found || err != nil
}
