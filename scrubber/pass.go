package scrubber

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/scrubber/internal/checkpoint"
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
		h, err := s.nodes[i].Client.Health(cctx)
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

// passPending reports whether an interrupted pass waits to be resumed (or
// the checkpoint cannot tell, in which case a pass had better run).
func (s *Scrubber) passPending() bool {
	var ps passState
	found, err := s.state.Get(statePass, &ps)
	return found || err != nil
}
