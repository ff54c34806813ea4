package objects

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/nodeaccess"
	"github.com/kintsugi-store/kintsugi/internal/readrule"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// nodeState is one node's answer about a key.
type nodeState = nodeaccess.Reply

// resolved is the version a read will serve.
type resolved struct {
	meta    client.ObjectMeta
	holders []member // by shard index; c == nil where no node holds the shard
	// preload holds, by shard index, data shard streams that came with
	// the holders' answers (see Store.resolveData); nil where none did.
	preload [][]byte
}

func newResolved(meta client.ObjectMeta) *resolved {
	return &resolved{meta: meta, holders: make([]member, meta.Data+meta.Parity)}
}

// hold records ns's node as the holder of shard i, with the shard stream
// that came with its answer, if any. That stream is of the node's
// committed shard: a node holding shard i as its Previous record (see
// readrule) holds it for ReadShard only.
func (r *resolved) hold(i int, ns nodeState) {
	r.holders[i] = ns.Member
	if c := ns.State.Committed; len(ns.State.Data) > 0 && c != nil && c.Version == r.meta.Version && c.Shard == i {
		if r.preload == nil {
			r.preload = make([][]byte, len(r.holders))
		}
		r.preload[i] = ns.State.Data
	}
}

// StatObject describes the version of bucket/key a GET would serve now.
// Errors: ErrNoSuchBucket, ErrNoSuchKey, ErrQuorum.
func (s *Store) StatObject(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	return fenced(ctx, s, func(ctx context.Context) (ObjectInfo, error) { return s.statObject(ctx, bucket, key) })
}

// statObject is StatObject under one map.
func (s *Store) statObject(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	const op = "objects.StatObject"
	if err := validName(op, bucket, key, true); err != nil {
		return ObjectInfo{}, err
	}
	if err := s.checkBucket(ctx, bucket); err != nil {
		return ObjectInfo{}, kerr.E(op, err)
	}
	r, err := s.resolve(ctx, bucket, key)
	if err != nil {
		return ObjectInfo{}, kerr.E(op, err)
	}
	return infoOf(r.meta), nil
}

// OpenObject resolves the version of bucket/key to serve and returns it
// ready to stream. Errors: ErrNoSuchBucket, ErrNoSuchKey, ErrQuorum.
func (s *Store) OpenObject(ctx context.Context, bucket, key string) (Object, error) {
	return fenced(ctx, s, func(ctx context.Context) (Object, error) { return s.openObject(ctx, bucket, key) })
}

// openObject is OpenObject under one map.
func (s *Store) openObject(ctx context.Context, bucket, key string) (Object, error) {
	const op = "objects.OpenObject"
	if err := validName(op, bucket, key, true); err != nil {
		return nil, err
	}
	if err := s.checkBucket(ctx, bucket); err != nil {
		return nil, kerr.E(op, err)
	}
	r, err := s.resolveData(ctx, bucket, key, s.preloadMax)
	if err != nil {
		return nil, kerr.E(op, err)
	}
	return &object{s: s, meta: r.meta, holders: r.holders, preload: r.preload}, nil
}

// resolve finds the newest version of bucket/key that is readable or may
// have been acknowledged; see the package doc for the rules. When open
// breakers alone stand in the way, it asks again through the ones that
// refused a call: a node that has just come back is worth one fast
// attempt before answering 503. A node whose call failed is not asked
// again (nodeaccess.Attempt).
func (s *Store) resolve(ctx context.Context, bucket, key string) (*resolved, error) {
	return s.resolveData(ctx, bucket, key, 0)
}

// resolveData is resolve that also asks the nodes for their data shards
// of up to limit bytes (0: not at all), returned in resolved.preload.
func (s *Store) resolveData(ctx context.Context, bucket, key string, limit int64) (*resolved, error) {
	// Only the breakers that refused a call are gone through again: a
	// node that failed its call (a cut-off one lasts its whole timeout)
	// is not waited for a second time.
	actx, first := nodeaccess.WithAttempt(ctx)
	r, err := s.resolveOnce(actx, bucket, key, limit)
	if err != nil && kerr.Is(kerr.Unavailable, err) && first.Refused() {
		r, err = s.resolveOnce(first.Again(ctx), bucket, key, limit)
	}
	// The answers are not one snapshot: each node answered at its own
	// moment, and writes moved on between them. Two writers racing on the
	// key can show a reader a version committed on too few nodes to read
	// and too many to skip, on answers taken a few milliseconds apart. With
	// every node answering that is a write in progress, not a reason for a
	// 503: ask again at once (the nodes that answered before the write's
	// stage reached them answer after it now), then at growing intervals,
	// for as long as a loaded machine may take to finish a commit round.
	wait, waited := time.Duration(0), time.Duration(0)
	for err != nil && errors.Is(err, errInFlux) && waited <= maxFluxWait {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, kerr.E("objects.resolve", kerr.Transient, ctx.Err())
			case <-t.C:
			}
		}
		waited += wait
		wait = min(max(2*wait, fluxRetry), maxFluxRetry)
		r, err = s.resolveOnce(ctx, bucket, key, limit)
	}
	if err == nil {
		// Every holder answered its Stat a moment ago: reading its shard
		// must not be refused by a breaker that has not caught up yet (a
		// half-open breaker lets a single call through, the Stat).
		r.holders = bypassing(r.holders)
	}
	return r, err
}

func (s *Store) resolveOnce(ctx context.Context, bucket, key string, limit int64) (*resolved, error) {
	const op = "objects.resolve"
	maps := s.maps.Load()
	wq, minQ := maps.Cur.WriteQuorum, maps.Cur.MinWriteQuorum()
	cur := maps.Cur.PlaceKey(bucket, key)
	nodes := s.members(cur)
	if maps.Prev != nil {
		nodes = s.members(cur, maps.Prev.PlaceKey(bucket, key))
	}
	if r, ok, err := s.quickResolve(ctx, maps, cur, bucket, key, limit); ok {
		return r, err
	}
	// Positions the map could not fill count as silent: an older map may
	// have filled them.
	unfilled := max(maps.Cur.DataShards+maps.Cur.ParityShards-len(cur), 0)
	// With a data shard's node known down, parity shards are wanted
	// too: ask for them with the states, as for data shards.
	parity := false
	for i := 0; limit > 0 && i < maps.Cur.DataShards && i < len(cur); i++ {
		parity = parity || !s.available(cur[i].ID)
	}
	// Stragglers count as silent. They need not be waited for once the
	// answers so far, with the pending nodes counted as silent, settle the
	// read in a way their answers could not change (Verdict.Settled).
	states := s.statNodes(ctx, nodes, bucket, key, limit, parity, func(answered []nodeState, pending int) bool {
		v := readrule.Decide(readrule.Input{Answers: nodeaccess.Answers(answered), Silent: unfilled + pending, WriteQuorum: wq, MinQuorum: minQ})
		return v.Settled(pending)
	})
	if err := ctx.Err(); err != nil {
		return nil, kerr.E(op, kerr.Transient, err)
	}
	// Nodes named by the versions found but placed by neither map (shards
	// not yet moved after two map changes) are asked too. They only add
	// holders: any acknowledged write is on wq of the nodes asked above.
	if extra := s.namedNodes(maps, nodes, states); len(extra) > 0 {
		for _, ns := range s.statNodes(ctx, extra, bucket, key, limit, parity, func([]nodeState, int) bool { return false }) {
			if ns.Err == nil {
				states = append(states, ns)
			}
		}
	}
	for _, ns := range states {
		if ns.Err != nil {
			s.log.Debug("objects: stat failed", "node", ns.Node.ID, "bucket", bucket, "key", key, "err", ns.Err)
		}
	}
	in := readrule.Input{Answers: nodeaccess.Answers(states), Silent: unfilled, WriteQuorum: wq, MinQuorum: minQ}
	v := readrule.Decide(in)
	if v.Kind == readrule.RollForward {
		s.rollForward(ctx, states, v)
		in.Answers, in.NoRollForward = nodeaccess.Answers(states), true
		v = readrule.Decide(in)
	}
	for _, m := range v.Skipped {
		s.log.Debug("objects: skipping unacknowledged version", "bucket", bucket, "key", key, "version", m.Version, "deleted", m.Deleted)
	}
	switch v.Kind {
	case readrule.Serve:
		newestTags(&v.Meta, states)
		if len(v.Meta.Parts) > 0 {
			// A multipart manifest holds no data: it is readable wherever
			// it is committed, and its parts are resolved as they are read.
			s.spreadManifest(ctx, states, cur, v.Meta)
			return &resolved{meta: v.Meta}, nil
		}
		r := newResolved(v.Meta)
		for shard, i := range v.Holders {
			if i >= 0 {
				r.hold(shard, states[i])
			}
		}
		if v.Held < len(r.holders) {
			s.hintMissing(ctx, states, cur, v.Meta, r.holders)
		}
		return r, nil
	case readrule.InFlux:
		return nil, kerr.E(op, kerr.Unavailable, fmt.Errorf("%w: %w", errInFlux, quorumErr("%s/%s %s", bucket, key, v.Reason())))
	case readrule.Unavailable:
		return nil, kerr.E(op, kerr.Unavailable, quorumErr("%s/%s %s", bucket, key, v.Reason()))
	}
	if v.Kind == readrule.Deleted {
		return nil, noSuchKey(op, bucket, key, &v.Meta)
	}
	return nil, noSuchKey(op, bucket, key, nil)
}

// errInFlux marks a read that failed on answers showing a write in
// progress, every node answering; resolveData asks again, at once and then
// after fluxRetry, doubling up to maxFluxRetry, for up to maxFluxWait.
var errInFlux = errors.New("a write to the key was in progress")

const (
	fluxRetry    = 5 * time.Millisecond
	maxFluxRetry = 100 * time.Millisecond
	maxFluxWait  = time.Second
)

// quickResolve asks only the nodes of the first d placed shards and lets
// the read rule decide on their answers alone (readrule.Input.Partial):
// it does so only when they all hold the same committed version and
// nothing newer staged, which is then at least as new as any acknowledged
// one, since d > n-q for the smallest write quorum q of any version
// (placement.Map.MinWriteQuorum). A healthy read then costs d stats instead of n;
// on a 2-core machine with nodes in their own processes, profiles of
// 4 KiB GETs showed the two extra stats costing about as much CPU as the
// rest of the GET. Anything else (a failure or straggler, a disagreement,
// a write in progress, a manifest, a map change) is left to the full
// resolve (ok false), which asks every node again.
func (s *Store) quickResolve(ctx context.Context, maps *placement.Pair, cur []placement.Node, bucket, key string, limit int64) (r *resolved, ok bool, err error) {
	m := maps.Cur
	d, n := m.DataShards, m.DataShards+m.ParityShards
	if maps.Prev != nil || len(cur) != n || d <= n-m.MinWriteQuorum() {
		return nil, false, nil
	}
	wait := time.Duration(0)
	for _, pn := range cur[:d] {
		if !s.available(pn.ID) {
			return nil, false, nil
		}
		wait = max(wait, s.hedgeDelay(pn.ID))
	}
	if wait > 0 {
		// A slow node is not waited for past what a hedge would allow:
		// the full resolve can do without it. Being cut off here is not
		// held against the node (a straggler, not a failure): counted as
		// failures, these cut-offs of GETs on a busy node opened every
		// node's breaker in a scale run, and the next LIST failed.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, 2*wait, errStraggler)
		defer cancel()
	}
	states := s.statNodes(ctx, s.members(cur[:d]), bucket, key, limit, false, func([]nodeState, int) bool { return false })
	v := readrule.Decide(readrule.Input{Answers: nodeaccess.Answers(states), Silent: n - d, WriteQuorum: m.WriteQuorum, MinQuorum: m.MinWriteQuorum(), Partial: true})
	switch v.Kind {
	case readrule.Deleted:
		return nil, true, noSuchKey("objects.resolve", bucket, key, &v.Meta)
	case readrule.Serve:
	default:
		return nil, false, nil
	}
	meta := v.Meta
	newestTags(&meta, states)
	r = newResolved(meta)
	holders := r.holders
	for shard, i := range v.Holders {
		if i >= 0 {
			r.hold(shard, states[i])
		}
	}
	// The other shards' holders as the version recorded them, for reads
	// that need parity. They were not asked: a missing shard shows when
	// read, and is then hinted like any failed read.
	for i, id := range meta.Nodes {
		if i < len(holders) && holders[i].Client == nil && id != "" {
			if pn, ok := m.Node(id); ok {
				holders[i] = s.member(pn)
			}
		}
	}
	return r, true, nil
}

// statNodes asks every node for the key's state, with its data shard (or,
// with parity, any shard) of up to limit bytes if limit > 0; NotExist
// counts as an empty answer. With health tracking, once enough(the answers
// so far, the number pending) holds, stragglers get a grace period and are
// then cut off, answering errStraggler.
func (s *Store) statNodes(ctx context.Context, nodes []member, bucket, key string, limit int64, parity bool, enough func(answered []nodeState, pending int) bool) []nodeState {
	states := make([]nodeState, len(nodes))
	s.gather(ctx, nodes, func(ctx context.Context, i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		var st client.KeyState
		var err error
		if limit > 0 {
			st, err = nodes[i].Client.StatData(cctx, bucket, key, limit, parity)
		} else {
			st, err = nodes[i].Client.Stat(cctx, bucket, key)
		}
		if kerr.Is(kerr.NotExist, err) {
			st, err = client.KeyState{}, nil
		}
		if err == nil {
			// A write after this read is named above what it saw.
			s.observeState(st)
		}
		if err != nil && errors.Is(context.Cause(ctx), errStraggler) {
			err = kerr.E("objects.stat", kerr.Transient, errStraggler)
		}
		states[i] = nodeState{Member: nodes[i], State: st, Err: err}
	}, func(done []bool) bool {
		var answered []nodeState
		for i, d := range done {
			if d {
				answered = append(answered, states[i])
			}
		}
		return enough(answered, len(done)-len(answered))
	})
	return states
}

// namedNodes returns the nodes that the committed versions in states name
// as shard holders (ObjectMeta.Nodes) but that are not among asked, as
// found in the current or previous map, whatever their state there.
func (s *Store) namedNodes(maps *placement.Pair, asked []member, states []nodeState) []member {
	return nodeaccess.Named(asked, states, func(id string) (member, bool) {
		n, ok := maps.Node(id)
		if !ok {
			return member{}, false
		}
		return s.member(n), true
	})
}

// rollForward sends the commits of the RollForward verdict v and updates
// states with what the nodes committed. A data version committed anywhere
// passed its write quorum of stages, so finishing its commit is what makes
// a gateway crash between commits harmless; a delete marker or manifest is
// committed where older versions stand only when nothing older can be
// served (see internal/readrule).
func (s *Store) rollForward(ctx context.Context, states []nodeState, v readrule.Verdict) {
	meta := v.Meta
	each(len(v.Commits), func(k int) {
		cm := v.Commits[k]
		ns := &states[cm.Answer]
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		rec, err := ns.Client.Commit(cctx, meta)
		if err != nil {
			s.log.Debug("objects: roll forward failed", "node", ns.Node.ID, "version", meta.Version, "err", err)
			return
		}
		if rec.Version == "" {
			rec = client.Record{ObjectMeta: meta, Shard: cm.Shard}
		}
		if rec.Version != meta.Version {
			// A newer version reached the node meanwhile; the commit was a no-op.
			return
		}
		s.metrics.rolledForward()
		s.log.Info("objects: rolled forward", "node", ns.Node.ID, "bucket", meta.Bucket, "key", meta.Key,
			"version", meta.Version, "shard", rec.Shard)
		// The shard stream sent with the state belonged to the version
		// committed then.
		ns.State.Committed, ns.State.Data = &rec, nil
	})
}

// hintMissing reports the shards of meta that no answering node holds.
func (s *Store) hintMissing(ctx context.Context, states []nodeState, placed []placement.Node, meta client.ObjectMeta, holders []member) {
	byID := make(map[string]*nodeState, len(states))
	for i := range states {
		byID[states[i].Node.ID] = &states[i]
	}
	var hints []client.Hint
	var to []member
	now := s.now().UTC()
	for i, h := range holders {
		if h.Client != nil {
			to = append(to, h)
			continue
		}
		hint := client.Hint{Bucket: meta.Bucket, Key: meta.Key, Version: meta.Version, Shard: i, Reason: "missing", Time: now}
		if i < len(placed) {
			hint.NodeID = placed[i].ID
			if ns := byID[hint.NodeID]; ns != nil {
				switch {
				case ns.Err != nil:
					hint.Reason = "unreachable"
				case ns.State.Committed != nil && ns.State.Committed.Version < meta.Version:
					hint.Reason = "stale"
				}
			}
		}
		hints = append(hints, hint)
	}
	s.sendHints(ctx, to, hints)
}
