package objects

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// errStraggler is the cause given to calls still running when the
// protocol stopped waiting for them: a quorum had answered and they had
// their grace. It does not count against the node's health: under load a
// healthy node often answers a little after its peers, and opening its
// breaker for that would make it look down to every reader. Heartbeats
// and the stall timeout judge whether a node is alive.
var errStraggler = errors.New("node answered after the quorum and its grace")

// gather calls call(ctx, i) for every member concurrently and waits for all
// of them, with one exception: with health tracking, once enough reports
// true the calls still running get a grace period (the longest hedge
// delay of their nodes), after which their ctx is cancelled with
// errStraggler; gather still waits for them to return. enough is called
// after each call returns, with which calls have returned so far, from
// gather's goroutine, so it may read what the calls wrote.
//
// Treating a straggler as not having answered is always safe in this
// protocol: every rule counts silent nodes as possibly holding anything.
func (s *Store) gather(ctx context.Context, ms []member, call func(ctx context.Context, i int), enough func(done []bool) bool) {
	if len(ms) == 0 {
		return
	}
	gctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	finished := make(chan int, len(ms))
	for i := range ms {
		go func() {
			call(gctx, i)
			finished <- i
		}()
	}
	done := make([]bool, len(ms))
	var grace <-chan time.Time
	armed := false
	for left := len(ms); left > 0; {
		select {
		case i := <-finished:
			done[i] = true
			left--
			if !armed && left > 0 && s.health != nil && enough(done) {
				armed = true
				t := time.NewTimer(s.straggleGrace(ms, done))
				defer t.Stop()
				grace = t.C
			}
		case <-grace:
			grace = nil
			cancel(errStraggler)
		}
	}
}

// straggleGrace is the longest hedge delay of the members not done.
func (s *Store) straggleGrace(ms []member, done []bool) time.Duration {
	var d time.Duration
	for i, m := range ms {
		if !done[i] {
			d = max(d, s.hedgeDelay(m.Node.ID))
		}
	}
	return d
}

// count returns how many of bs are true.
func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// commitQuorum sends commit(meta) to every target with a client (targets
// without one are skipped) and returns which committed, which answered
// (targets without a client count as answered), by target, the newer
// version a node that refused the commit holds, which refused it as
// made under an older cluster map than theirs, and which failed in a way
// that leaves it unknown whether the node committed (a timeout or a lost
// answer, not a refusal nor an open breaker, which sends nothing). A refusal never counts as
// committed: a node holding a newer version keeps it, and counting it
// would acknowledge a write that is never visible. Every newer version
// seen feeds the clock, so the next version named is above it. Without
// health tracking it waits for every answer. With it, it returns once wq
// have committed and the others had their grace; commits still in flight
// then finish in the background, and late(i, committed) is called there
// for each that fails, with what commitQuorum returned, so that its shard
// is reported for repair. Commits do not share the caller's cancellation:
// a client that hangs up after sending its body must not leave the version
// half committed.
func (s *Store) commitQuorum(ctx context.Context, targets []member, meta client.ObjectMeta, wq int, late func(i int, committed []bool)) (committed, answered []bool, newer []string, staleMap, unsure []bool) {
	ctx = context.WithoutCancel(ctx)
	type result struct {
		i        int
		ok       bool
		newer    string
		staleMap bool
		unsure   bool
	}
	results := make(chan result, len(targets))
	committed = make([]bool, len(targets))
	answered = make([]bool, len(targets))
	newer = make([]string, len(targets))
	staleMap = make([]bool, len(targets))
	unsure = make([]bool, len(targets))
	pending := 0
	for i, t := range targets {
		if t.Client == nil {
			answered[i] = true
			continue
		}
		pending++
		go func() {
			cctx, cancel := s.commitCtx(ctx, t.Node.ID)
			defer cancel()
			rec, err := t.Client.Commit(cctx, meta)
			v := client.Newer(err)
			if err == nil && rec.Version > meta.Version {
				// A node of an earlier release answers a refusal
				// as a success with its newer record.
				v = rec.Version
				err = fmt.Errorf("node holds newer version %s", v)
			}
			if err != nil {
				s.clock.observe(v)
				s.log.Info("objects: commit failed", "node", t.Node.ID, "bucket", meta.Bucket, "key", meta.Key,
					"version", meta.Version, "deleted", meta.Deleted, "err", err)
			}
			stale := errors.Is(err, client.ErrStaleMap)
			results <- result{i, err == nil, v, stale, err != nil && v == "" && !stale && !errors.Is(err, health.ErrOpen)}
		}()
	}
	var grace <-chan time.Time
wait:
	for pending > 0 {
		select {
		case r := <-results:
			pending--
			committed[r.i], answered[r.i], newer[r.i], staleMap[r.i], unsure[r.i] = r.ok, true, r.newer, r.staleMap, r.unsure
			if grace == nil && pending > 0 && s.health != nil && count(committed) >= wq {
				t := time.NewTimer(s.straggleGrace(targets, answered))
				defer t.Stop()
				grace = t.C
			}
		case <-grace:
			break wait
		}
	}
	if pending > 0 {
		snapshot := slices.Clone(committed)
		s.bg.Go(func() {
			for range pending {
				if r := <-results; !r.ok {
					late(r.i, snapshot)
				}
			}
		})
	}
	return committed, answered, newer, staleMap, unsure
}

// commitCtx returns the context of one commit call to node id: bounded
// by the commit timeout and, with health tracking, cut off (errNodeDown)
// as soon as the tracker sees the node go down, as the shard streams of
// a stage are. A commit to a node that stopped answering after the stage
// would otherwise hold the write for the whole timeout, when its outcome
// (unknown either way) is all it can still give. A node already down is
// not watched: the breaker refuses the call before it is sent, and the
// write must keep knowing that nothing was sent (health.ErrOpen).
func (s *Store) commitCtx(ctx context.Context, id string) (context.Context, context.CancelFunc) {
	cctx, cancelTimeout := context.WithTimeout(ctx, s.commitTimeout)
	down := s.downChan(id)
	if down == nil {
		return cctx, cancelTimeout
	}
	select {
	case <-down:
		return cctx, cancelTimeout
	default:
	}
	cctx, cancelDown := context.WithCancelCause(cctx)
	go func() {
		select {
		case <-down:
			cancelDown(errNodeDown)
		case <-cctx.Done():
		}
	}()
	return cctx, func() {
		cancelDown(nil)
		cancelTimeout()
	}
}

// refusals counts the nodes that refused a write's last attempt (its
// stage or its commit) for a cause other than failing: newer, as holding
// a newer version of the key; staleMap, as holding a newer cluster map
// than the write was made under. See shortfallErr. mayApply, set only
// for a commit, says that a node may hold the write committed: one did,
// or one's commit failed without a clear answer. A reader can then roll
// the write forward and serve it, so it must not be run again.
type refusals struct {
	newer, staleMap int
	mayApply        bool
	// newerNodes, set only for a commit, are the nodes that refused it
	// as holding a newer version, and placed the number of nodes it was
	// placed on.
	newerNodes []string
	placed     int
}

// commitWrite commits meta, a new version, on targets as commitQuorum
// does, and returns the metadata it committed last. If fewer than wq
// committed because nodes hold newer versions, and at least wq refused
// (and none committed), it tries once more under a new version, above
// every one they named, on the nodes that refused: a write whose commit
// begins after another write of the key was acknowledged must win, even
// if its version was named first. A refusing node keeps its staged shard,
// so the retry is a commit round like the first. Otherwise the write
// fails: a retry reaching fewer nodes could commit above an acknowledged
// version on some of them without being readable itself, costing both.
// A re-code's commit is not tried again under a new version. Staged
// shards of nodes that refused the last attempt are aborted. late
// is called as commitQuorum's, with the metadata of the attempt it
// belongs to. refused counts the nodes that refused the last attempt.
func (s *Store) commitWrite(ctx context.Context, targets []member, meta client.ObjectMeta, wq int, late func(meta client.ObjectMeta, i int, committed []bool)) (_ client.ObjectMeta, committed, answered []bool, refused refusals) {
	first := meta
	committed, answered, newer, staleMap, unsure := s.commitQuorum(ctx, targets, meta, wq, func(i int, committed []bool) { late(first, i, committed) })
	// Whether some node may hold a version of this write committed, in
	// either round. Commits still running when commitQuorum returned
	// count: it returns early only once wq committed.
	mayApply := false
	applied := func(targets []member) {
		for i, t := range targets {
			if t.Client != nil && (committed[i] || unsure[i] || !answered[i]) {
				mayApply = true
			}
		}
	}
	applied(targets)
	refusers := func() []member {
		var out []member
		for i, v := range newer {
			if v != "" {
				out = append(out, targets[i])
			}
		}
		return out
	}
	// A re-code (client.IsRecode) is never named anew: it finishes a
	// version that may be visible already, and a new name would put it
	// above the writes that refused it (see PutObject).
	if again := refusers(); count(committed) == 0 && len(again) >= wq && !client.IsRecode(meta.Version) {
		// The refusals fed the clock: the new version is above them.
		meta.Version = s.newVersion()
		if !first.Deleted && len(first.Parts) == 0 {
			meta.Staged = first.StageVersion()
		}
		second := meta
		s.log.Info("objects: commit refused by newer versions, retrying", "bucket", meta.Bucket, "key", meta.Key,
			"version", first.Version, "retry", meta.Version)
		retry := make([]member, len(targets))
		for i, t := range targets {
			if newer[i] != "" {
				retry[i] = t
			}
		}
		committed, answered, newer, staleMap, unsure = s.commitQuorum(ctx, retry, meta, wq, func(i int, committed []bool) { late(second, i, committed) })
		applied(retry)
	}
	var m *placement.Map
	if count(committed) < wq && count(staleMap) > 0 {
		// Only a commit short for stale-map refusals looks at the map
		// they sent: the usual commit pays nothing for this.
		m = s.placesAlike(ctx, targets, meta)
	}
	if m != nil {
		// Nodes refused the commit for a newer map that places the key
		// on the same nodes, shard for shard: under it the write would
		// have been this very one, so its commit is sent again to them,
		// same version, under the new map's epoch. Running the write
		// again is not an option once a node took it (mayApplyErr), and
		// answering 503 for a map change that moved nothing of the key
		// would refuse writes at every node added or removed.
		s.log.Info("objects: commit refused under an older map that places the key alike; committing under the new one",
			"bucket", meta.Bucket, "key", meta.Key, "version", meta.Version, "epoch", m.Epoch)
		retry := make([]member, len(targets))
		for i, t := range targets {
			if staleMap[i] {
				retry[i] = t
			}
		}
		var notify func(*placement.Map)
		if f := client.FenceOf(ctx); f != nil {
			notify = f.Refused
		}
		rctx := client.WithFence(ctx, client.NewFence(m.Epoch, notify))
		last := meta
		c, a, nw, sm, u := s.commitQuorum(rctx, retry, meta, wq-count(committed), func(i int, committed []bool) { late(last, i, committed) })
		for i, t := range retry {
			if t.Client != nil {
				committed[i], answered[i], newer[i], staleMap[i], unsure[i] = c[i], a[i], nw[i], sm[i], u[i]
			}
		}
		applied(retry)
	}
	if !meta.Deleted && len(meta.Parts) == 0 {
		s.abort(ctx, refusers(), meta.Bucket, meta.Key, meta.StageVersion())
	}
	r := refusals{newer: len(refusers()), staleMap: count(staleMap), mayApply: mayApply, placed: len(targets)}
	for _, m := range refusers() {
		r.newerNodes = append(r.newerNodes, m.Node.ID)
	}
	return meta, committed, answered, r
}

// placesAlike returns the newer map a node refused one of ctx's fenced
// calls with if it places meta's key on targets' nodes, shard for shard
// (targets left zero, shards the write skips, are not compared), and nil
// otherwise.
func (s *Store) placesAlike(ctx context.Context, targets []member, meta client.ObjectMeta) *placement.Map {
	f := client.FenceOf(ctx)
	if f == nil {
		return nil
	}
	m := f.Newer()
	if m == nil {
		return nil
	}
	placed := m.PlaceKey(meta.Bucket, meta.Key)
	if len(placed) != len(targets) {
		return nil
	}
	for i, t := range targets {
		if t.Client != nil && (placed[i].ID != t.Node.ID || placed[i].Addr != t.Node.Addr) {
			return nil
		}
	}
	return m
}

// commitAndHint commits meta as commitWrite does and leaves a "missing"
// hint, on the nodes that committed, for each shard whose node answered
// without committing it, and (when the commit ends) for each whose commit
// was still running and failed. placed is the write's nodes by shard
// index; targets the same with the members not to commit left zero. It
// returns the metadata committed, the members that hold it, which the
// caller compares with wq, and the nodes that refused it (for
// shortfallErr).
func (s *Store) commitAndHint(ctx context.Context, placed, targets []member, meta client.ObjectMeta, wq int) (client.ObjectMeta, []member, refusals) {
	// A delete marker or a manifest has no shard of its own.
	shardless := meta.Deleted || len(meta.Parts) > 0
	missing := func(meta client.ObjectMeta, i int) client.Hint {
		h := client.Hint{Bucket: meta.Bucket, Key: meta.Key, Version: meta.Version, Shard: i, Reason: "missing", Time: meta.Modified}
		if shardless {
			h.Shard = -1
		}
		if i < len(placed) {
			h.NodeID = placed[i].Node.ID
		}
		return h
	}
	holdersOf := func(committed []bool) []member {
		var out []member
		for i, ok := range committed {
			if ok {
				out = append(out, targets[i])
			}
		}
		return out
	}
	meta, committed, answered, refused := s.commitWrite(ctx, targets, meta, wq, func(meta client.ObjectMeta, i int, committed []bool) {
		s.sendHints(ctx, holdersOf(committed), []client.Hint{missing(meta, i)})
	})
	holders := holdersOf(committed)
	var hints []client.Hint
	for i, ok := range committed {
		// A commit still in flight is hinted by the callback if it fails.
		if answered[i] && !ok {
			hints = append(hints, missing(meta, i))
		}
	}
	s.sendHints(ctx, holders, hints)
	return meta, holders, refused
}

// commitMissed sends the commit of meta once more to the nodes of placed
// that are not among its holders to (for a version with shards, placed
// holds only the nodes that staged theirs), after asking those taken for
// down whether they answer now (recheck), and returns the holders with
// those that committed. It is for a commit that missed wq: a node
// skipped for an open breaker was sent nothing, and may have been back
// for milliseconds; one whose commit failed may take it now. Sending the commit again is safe: a node takes the same version
// twice as once (client.Commit is idempotent). Unlike commitWrite it
// never names the version anew, since some nodes hold it already.
func (s *Store) commitMissed(ctx context.Context, placed, to []member, meta client.ObjectMeta, wq int) []member {
	missed := make([]bool, len(placed))
	for i, p := range placed {
		missed[i] = p.Client != nil && !slices.ContainsFunc(to, func(h member) bool { return h.Node.ID == p.Node.ID })
	}
	s.recheck(ctx, placed, missed, nil)
	targets := make([]member, len(placed))
	some := false
	for i, p := range placed {
		if missed[i] && s.available(p.Node.ID) {
			targets[i], some = p, true
		}
	}
	if !some {
		return to
	}
	s.metrics.retried(retryCommitAgain)
	s.log.Info("objects: commit missed its quorum; sending it again to the nodes that answer",
		"bucket", meta.Bucket, "key", meta.Key, "version", meta.Version, "committed", len(to), "need", wq)
	committed, _, _, _, _ := s.commitQuorum(ctx, targets, meta, wq-len(to), func(int, []bool) {})
	for i, ok := range committed {
		if ok {
			to = append(to, targets[i])
		}
	}
	return to
}
