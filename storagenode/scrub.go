package storagenode

import (
	"context"
	"sync"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/throttle"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// The background verifier walks every committed record in index order
// and re-hashes the record's shard (see verify) at no more than
// Config.ScrubRate bytes per second, then rests until ScrubPeriod has
// passed since the pass began. Its position and counters are checkpointed
// in the index, so a restarted node resumes the pass where it stopped
// instead of starting over. What it finds corrupt is quarantined and
// filed as a repair hint for the cluster scrubber.
const (
	scrubStateName  = "scrub"
	scrubBatch      = 64
	scrubCheckpoint = time.Second // least time between two checkpoints
	scrubRetry      = time.Minute // pause after a failed pass
	statusShardList = 100         // quarantined shards listed by the status call
)

// scrubState is the verifier's status; the persisted part is checkpointed
// under scrubStateName.
type scrubState struct {
	mu   sync.Mutex
	st   client.ScrubStatus
	done chan struct{}
}

// count updates the status under its lock.
func (s *scrubState) count(f func(st *client.ScrubStatus)) {
	s.mu.Lock()
	f(&s.st)
	s.mu.Unlock()
}

func (s *scrubState) snapshot() client.ScrubStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// startScrub loads the verifier's checkpoint and, if a rate is set, starts
// its loop; n.scrub.done is closed when the loop has stopped.
func (n *Node) startScrub(ctx context.Context) {
	n.scrub.done = make(chan struct{})
	var cp checkpoint
	if _, err := n.db.LoadState(scrubStateName, &cp); err != nil {
		n.log.Error("verifier: loading checkpoint; starting afresh", "err", err)
		cp = checkpoint{}
	}
	st := cp.status()
	st.Rate = n.cfg.ScrubRate
	st.PeriodSeconds = n.cfg.ScrubPeriod.Seconds()
	st.Quarantined, st.QuarantinedShards = 0, nil
	n.scrub.st = st
	if n.cfg.ScrubRate <= 0 {
		close(n.scrub.done)
		return
	}
	go n.scrubLoop(ctx)
}

// saveScrub checkpoints the verifier's status.
func (n *Node) saveScrub() error {
	return n.db.SaveState(scrubStateName, checkpointOf(n.scrub.snapshot()))
}

// checkpoint is the verifier's durable state: the index's own type, not
// the wire's ScrubStatus, so that a change to the status API cannot change
// what restarts read back. Its JSON is the format: add fields, never
// rename one. Its first version read, and wrote, the fields a checkpoint
// of the whole ScrubStatus held; the status's rate, period and quarantine
// list, set afresh at every start, are not kept.
type checkpoint struct {
	Running          bool      `json:"running"`
	Pass             int64     `json:"pass"`
	PassStarted      time.Time `json:"pass_started,omitzero"`
	Position         string    `json:"position,omitempty"`
	PassShards       int64     `json:"pass_shards"`
	PassBytes        int64     `json:"pass_bytes"`
	LastPassStarted  time.Time `json:"last_pass_started,omitzero"`
	LastPassFinished time.Time `json:"last_pass_finished,omitzero"`
	Shards           int64     `json:"shards"`
	Bytes            int64     `json:"bytes"`
	Corrupt          int64     `json:"corrupt"`
	Missing          int64     `json:"missing"`
}

func checkpointOf(st client.ScrubStatus) checkpoint {
	return checkpoint{
		Running: st.Running, Pass: st.Pass, PassStarted: st.PassStarted, Position: st.Position,
		PassShards: st.PassShards, PassBytes: st.PassBytes,
		LastPassStarted: st.LastPassStarted, LastPassFinished: st.LastPassFinished,
		Shards: st.Shards, Bytes: st.Bytes, Corrupt: st.Corrupt, Missing: st.Missing,
	}
}

func (c checkpoint) status() client.ScrubStatus {
	return client.ScrubStatus{
		Running: c.Running, Pass: c.Pass, PassStarted: c.PassStarted, Position: c.Position,
		PassShards: c.PassShards, PassBytes: c.PassBytes,
		LastPassStarted: c.LastPassStarted, LastPassFinished: c.LastPassFinished,
		Shards: c.Shards, Bytes: c.Bytes, Corrupt: c.Corrupt, Missing: c.Missing,
	}
}

func (n *Node) scrubLoop(ctx context.Context) {
	defer close(n.scrub.done)
	th := throttle.New(n.cfg.ScrubRate)
	for {
		st := n.scrub.snapshot()
		if !st.Running {
			next := st.LastPassStarted.Add(n.cfg.ScrubPeriod)
			if !n.sleepUntil(ctx, next) {
				return
			}
			n.scrub.count(func(st *client.ScrubStatus) {
				st.Running = true
				st.Pass++
				st.PassStarted = n.cfg.Now().UTC()
				st.Position, st.PassShards, st.PassBytes = "", 0, 0
			})
		}
		err := n.scrubPass(ctx, th)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			n.log.Error("verifier: pass failed; retrying", "err", err, "in", scrubRetry)
			if !n.sleepUntil(ctx, n.cfg.Now().Add(scrubRetry)) {
				return
			}
		}
	}
}

// sleepUntil waits until t on the node's clock and reports true, or
// false if ctx ends first.
func (n *Node) sleepUntil(ctx context.Context, t time.Time) bool {
	d := t.Sub(n.cfg.Now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-n.cfg.After(d):
		return true
	}
}

// scrubPass verifies from the checkpointed position to the end of the
// index, then closes the pass.
func (n *Node) scrubPass(ctx context.Context, th *throttle.T) error {
	const op = "storagenode.scrubPass"
	if err := n.failure(); err != nil {
		return kerr.E(op, err) // stopped: touch nothing until restarted
	}
	saved := time.Now()
	checkpoint := func(force bool) error {
		if !force && time.Since(saved) < scrubCheckpoint {
			return nil
		}
		saved = time.Now()
		return n.saveScrub()
	}
	for {
		recs, _, err := n.db.Records(n.scrub.snapshot().Position, scrubBatch)
		if err != nil {
			return kerr.E(op, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			if !rec.Deleted && rec.Shard >= 0 {
				ref := client.ShardRef{Bucket: rec.Bucket, Key: rec.Key, Version: rec.Version, Shard: rec.Shard}
				res, err := n.verify(ctx, ref, th, true)
				if err != nil {
					checkpoint(true)
					return kerr.E(op, err)
				}
				if res.Status != client.VerifyAbsent {
					n.scrub.count(func(st *client.ScrubStatus) {
						st.PassShards++
						st.PassBytes += res.Bytes
						st.Shards++
						st.Bytes += res.Bytes
					})
				}
			}
			n.scrub.count(func(st *client.ScrubStatus) { st.Position = rec.Bucket + "/" + rec.Key })
			if err := checkpoint(false); err != nil {
				return kerr.E(op, err)
			}
		}
	}
	now := n.cfg.Now().UTC()
	n.scrub.count(func(st *client.ScrubStatus) {
		st.Running = false
		st.LastPassStarted, st.LastPassFinished = st.PassStarted, now
		st.Position = ""
	})
	if err := checkpoint(true); err != nil {
		return kerr.E(op, err)
	}
	st := n.scrub.snapshot()
	n.log.Info("verifier: pass complete", "pass", st.Pass, "shards", st.PassShards, "bytes", st.PassBytes,
		"took", now.Sub(st.PassStarted).Round(time.Millisecond))
	if _, err := n.sweepQuarantine(ctx); err != nil && ctx.Err() == nil {
		n.log.Warn("verifier: sweeping quarantine", "err", err)
	}
	return nil
}

// ScrubStatus returns the state of the node's background verifier and
// some of the shards it holds in quarantine. Never fenced.
func (n *Node) ScrubStatus(ctx context.Context) (client.ScrubStatus, error) {
	const op = "storagenode.ScrubStatus"
	if err := n.admit(ctx, false); err != nil {
		return client.ScrubStatus{}, err
	}
	st := n.scrub.snapshot()
	qs, total, err := n.db.QuarantinedShards(statusShardList)
	if err != nil {
		return client.ScrubStatus{}, n.settle(kerr.E(op, err))
	}
	st.Quarantined = total
	st.QuarantinedShards = make([]client.QuarantinedShard, len(qs))
	for i, q := range qs {
		st.QuarantinedShards[i] = client.QuarantinedShard{
			Bucket: q.Bucket, Key: q.Key, Version: q.Version, Shard: q.Shard, Reason: q.Reason, Time: q.Time,
		}
	}
	return st, nil
}
