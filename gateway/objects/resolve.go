package objects

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/rollforward"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// nodeState is one node's answer about a key.
type nodeState struct {
	member
	st  client.KeyState
	err error // nil: the node answered
}

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
// that came with its answer, if any.
func (r *resolved) hold(i int, ns nodeState) {
	r.holders[i] = ns.member
	if len(ns.st.Data) > 0 {
		if r.preload == nil {
			r.preload = make([][]byte, len(r.holders))
		}
		r.preload[i] = ns.st.Data
	}
}

// StatObject describes the version of bucket/key a GET would serve now.
// Errors: ErrNoSuchBucket, ErrNoSuchKey, ErrQuorum.
func (s *Store) StatObject(ctx context.Context, bucket, key string) (ObjectInfo, error) {
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
// breakers alone stand in the way, it asks again through them: a node
// that has just come back is worth one fast attempt before answering 503.
func (s *Store) resolve(ctx context.Context, bucket, key string) (*resolved, error) {
	return s.resolveData(ctx, bucket, key, 0)
}

// resolveData is resolve that also asks the nodes for their data shards
// of up to limit bytes (0: not at all), returned in resolved.preload.
func (s *Store) resolveData(ctx context.Context, bucket, key string, limit int64) (*resolved, error) {
	r, err := s.resolveOnce(ctx, bucket, key, limit)
	if err != nil && kerr.Is(kerr.Unavailable, err) && s.anyOpen() {
		r, err = s.resolveOnce(withBypass(ctx), bucket, key, limit)
	}
	// The answers are not one snapshot: each node answered at its own
	// moment, and writes moved on between them. Two writers racing on the
	// key can show a reader a version committed on too few nodes to read
	// and too many to skip, on answers taken a few milliseconds apart.
	// Such a state lasts no longer than a commit round, so ask again.
	for wait := fluxRetry; err != nil && errors.Is(err, errInFlux) && wait <= maxFluxRetry; wait *= 2 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, kerr.E("objects.resolve", kerr.Transient, ctx.Err())
		case <-t.C:
		}
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
	wq := maps.cur.WriteQuorum
	cur := maps.cur.PlaceKey(bucket, key)
	nodes := s.members(cur)
	if maps.prev != nil {
		nodes = s.members(cur, maps.prev.PlaceKey(bucket, key))
	}
	if r, ok, err := s.quickResolve(ctx, maps, cur, bucket, key, limit); ok {
		return r, err
	}
	// Nodes that did not answer may hold anything. Positions the map could
	// not fill count as unreachable too: an older map may have filled them.
	unfilled := max(maps.cur.DataShards+maps.cur.ParityShards-len(cur), 0)
	// With a data shard's node known down, parity shards are wanted
	// too: ask for them with the states, as for data shards.
	parity := false
	for i := 0; limit > 0 && i < maps.cur.DataShards && i < len(cur); i++ {
		parity = parity || !s.available(cur[i].ID)
	}
	// Stragglers count as unreachable. They need not be waited for once
	// treating them so leaves fewer than wq unreachable (so any
	// acknowledged version is among the answers) and the answers already
	// settle the read: the newest version they show is a delete marker or
	// has d holders among them.
	states := s.statNodes(ctx, nodes, bucket, key, limit, parity, func(answered []nodeState, pending int) bool {
		failed := 0
		for _, ns := range answered {
			if ns.err != nil {
				failed++
			}
		}
		return unfilled+failed+pending < wq && settled(answered)
	})
	if err := ctx.Err(); err != nil {
		return nil, kerr.E(op, kerr.Transient, err)
	}
	// Nodes named by the versions found but placed by neither map (shards
	// not yet moved after two map changes) are asked too. They only add
	// holders: any acknowledged write is on wq of the nodes asked above.
	if extra := s.namedNodes(maps, nodes, states); len(extra) > 0 {
		for _, ns := range s.statNodes(ctx, extra, bucket, key, limit, parity, func([]nodeState, int) bool { return false }) {
			if ns.err == nil {
				states = append(states, ns)
			}
		}
	}
	unreached := unfilled
	for _, ns := range states {
		if ns.err != nil {
			s.log.Debug("objects: stat failed", "node", ns.node.ID, "bucket", bucket, "key", key, "err", ns.err)
			unreached++
		}
	}
	if unreached >= wq {
		// A newer acknowledged version could live on the silent nodes alone.
		return nil, kerr.E(op, kerr.Unavailable, quorumErr("%d nodes unreachable for %s/%s, write quorum %d", unreached, bucket, key, wq))
	}

	for _, meta := range committedVersions(states) {
		if len(meta.Parts) > 0 {
			// A multipart manifest holds no data: it is readable wherever
			// it is committed, and its parts are resolved as they are read.
			s.spreadManifest(ctx, states, cur, meta)
			return &resolved{meta: meta}, nil
		}
		if !meta.Deleted {
			s.rollForward(ctx, states, meta)
		}
		// seen counts nodes that committed this version or a newer one: a
		// newer commit may have removed this version's shard.
		seen := 0
		r := newResolved(meta)
		holders := r.holders
		nheld := 0
		for _, ns := range states {
			c := ns.st.Committed
			if ns.err != nil || c == nil || c.Version < meta.Version {
				continue
			}
			seen++
			if c.Version == meta.Version && !meta.Deleted && c.Shard >= 0 && c.Shard < len(holders) && holders[c.Shard].c == nil {
				r.hold(c.Shard, ns)
				nheld++
			}
		}
		if meta.Deleted {
			return nil, kerr.E(op, kerr.NotExist, fmt.Errorf("%w: %s/%s", ErrNoSuchKey, bucket, key))
		}
		if nheld >= meta.Data {
			if nheld < len(holders) {
				s.hintMissing(ctx, states, cur, meta, holders)
			}
			return r, nil
		}
		if seen+unreached >= wq {
			err := quorumErr("%s/%s version %s: %d of %d shards readable, need %d, and it may have been acknowledged",
				bucket, key, meta.Version, nheld, len(holders), meta.Data)
			if writing(states) {
				err = fmt.Errorf("%w: %w", errInFlux, err)
			}
			return nil, kerr.E(op, kerr.Unavailable, err)
		}
		s.log.Debug("objects: skipping unacknowledged version", "bucket", bucket, "key", key,
			"version", meta.Version, "holders", nheld, "seen", seen, "unreached", unreached)
	}
	return nil, kerr.E(op, kerr.NotExist, fmt.Errorf("%w: %s/%s", ErrNoSuchKey, bucket, key))
}

// errInFlux marks a read that failed on answers showing a write in
// progress; resolveData asks again, after fluxRetry, doubling up to
// maxFluxRetry (about 150 ms in all).
var errInFlux = errors.New("a write to the key was in progress")

const (
	fluxRetry    = 10 * time.Millisecond
	maxFluxRetry = 80 * time.Millisecond
)

// writing reports whether answers show a write in progress: a staged
// version newer than the node's committed one, or nodes committed to
// different versions.
func writing(states []nodeState) bool {
	var v string
	for _, ns := range states {
		if ns.err != nil {
			continue
		}
		if len(ns.st.Staged) > 0 {
			return true
		}
		if c := ns.st.Committed; c != nil {
			if v != "" && c.Version != v {
				return true
			}
			v = c.Version
		}
	}
	return false
}

// quickResolve asks only the nodes of the first d placed shards. When they
// all answer with the same committed version and nothing newer staged,
// that version is at least as new as any acknowledged one: a write is
// acknowledged once committed on wq nodes, so on all but n-wq of any d
// nodes, and d > n-wq. A healthy read then costs d stats instead of n;
// on a 2-core machine with nodes in their own processes, profiles of
// 4 KiB GETs showed the two extra stats costing about as much CPU as the
// rest of the GET. Anything else (a failure or straggler, a disagreement,
// a write in progress, a manifest, a map change) is left to the full
// resolve (ok false), which asks every node again.
func (s *Store) quickResolve(ctx context.Context, maps *mapPair, cur []placement.Node, bucket, key string, limit int64) (r *resolved, ok bool, err error) {
	m := maps.cur
	d, n := m.DataShards, m.DataShards+m.ParityShards
	if maps.prev != nil || len(cur) != n || d <= n-m.WriteQuorum {
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
	var v *client.Record
	for _, ns := range states {
		c := ns.st.Committed
		if ns.err != nil || c == nil || len(ns.st.Staged) > 0 || v != nil && c.Version != v.Version {
			return nil, false, nil
		}
		v = c
	}
	meta := v.ObjectMeta
	switch {
	case meta.Deleted:
		return nil, true, kerr.E("objects.resolve", kerr.NotExist, fmt.Errorf("%w: %s/%s", ErrNoSuchKey, bucket, key))
	case len(meta.Parts) > 0:
		return nil, false, nil
	}
	r = newResolved(meta)
	holders := r.holders
	for _, ns := range states {
		c := ns.st.Committed
		if c.Shard < 0 || c.Shard >= len(holders) || holders[c.Shard].c != nil {
			return nil, false, nil
		}
		r.hold(c.Shard, ns)
	}
	if len(states) < meta.Data {
		return nil, false, nil
	}
	// The other shards' holders as the version recorded them, for reads
	// that need parity. They were not asked: a missing shard shows when
	// read, and is then hinted like any failed read.
	for i, id := range meta.Nodes {
		if i < len(holders) && holders[i].c == nil && id != "" {
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
			st, err = nodes[i].c.StatData(cctx, bucket, key, limit, parity)
		} else {
			st, err = nodes[i].c.Stat(cctx, bucket, key)
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
		states[i] = nodeState{member: nodes[i], st: st, err: err}
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

// settled reports whether answers decide a read on their own: they show
// no version at all (the caller has made sure an acknowledged one would be
// among them), or the newest is a delete marker, or d of them hold the
// newest one's shards (distinct ones).
func settled(answers []nodeState) bool {
	vs := committedVersions(answers)
	if len(vs) == 0 {
		return true
	}
	newest := vs[0]
	if newest.Deleted {
		return true
	}
	shards := make(map[int]bool)
	for _, ns := range answers {
		if c := ns.st.Committed; ns.err == nil && c != nil && c.Version == newest.Version {
			shards[c.Shard] = true
		}
	}
	return len(shards) >= newest.Data
}

// namedNodes returns the nodes that the committed versions in states name
// as shard holders (ObjectMeta.Nodes) but that are not among asked, as
// found in the current or previous map, whatever their state there.
func (s *Store) namedNodes(maps *mapPair, asked []member, states []nodeState) []member {
	seen := make(map[string]bool, len(asked))
	for _, m := range asked {
		seen[m.node.ID] = true
	}
	var out []member
	for _, ns := range states {
		c := ns.st.Committed
		if ns.err != nil || c == nil {
			continue
		}
		for _, id := range c.Nodes {
			if id == "" || seen[id] {
				continue
			}
			seen[id] = true
			n, ok := maps.cur.Node(id)
			if !ok && maps.prev != nil {
				n, ok = maps.prev.Node(id)
			}
			if ok {
				out = append(out, s.member(n))
			}
		}
	}
	return out
}

// committedVersions returns the distinct committed versions the answering
// nodes report, newest first.
func committedVersions(states []nodeState) []client.ObjectMeta {
	var out []client.ObjectMeta
	seen := make(map[string]bool)
	for _, ns := range states {
		if c := ns.st.Committed; ns.err == nil && c != nil && !seen[c.Version] {
			seen[c.Version] = true
			out = append(out, c.ObjectMeta)
		}
	}
	slices.SortFunc(out, func(a, b client.ObjectMeta) int { return strings.Compare(b.Version, a.Version) })
	return out
}

// rollForward commits meta on the answering nodes that hold it staged but
// have only older versions committed. meta is committed somewhere, so its
// writer passed its stage quorum and meant it to be visible; finishing the
// commit is what makes a gateway crash between commits harmless. It is done
// only if it makes meta readable: a commit removes the node's shard of the
// older version, and trading a readable old version for an unreadable new
// one would lose both. states is updated in place.
func (s *Store) rollForward(ctx context.Context, states []nodeState, meta client.ObjectMeta) {
	stagedShard := rollforward.Plan(keyStates(states), answeredAll(states), meta)
	if stagedShard == nil {
		return
	}
	each(len(states), func(i int) {
		ns := &states[i]
		shard := stagedShard[i]
		if shard < 0 {
			return
		}
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		rec, err := ns.c.Commit(cctx, meta)
		if err != nil {
			s.log.Debug("objects: roll forward failed", "node", ns.node.ID, "version", meta.Version, "err", err)
			return
		}
		if rec.Version == "" {
			rec = client.Record{ObjectMeta: meta, Shard: shard}
		}
		if rec.Version != meta.Version {
			// A newer version reached the node meanwhile; the commit was a no-op.
			return
		}
		s.log.Info("objects: rolled forward", "node", ns.node.ID, "bucket", meta.Bucket, "key", meta.Key,
			"version", meta.Version, "shard", rec.Shard)
		// The shard stream sent with the state belonged to the version
		// committed then.
		ns.st.Committed, ns.st.Data = &rec, nil
	})
}

// hintMissing reports the shards of meta that no answering node holds.
func (s *Store) hintMissing(ctx context.Context, states []nodeState, placed []placement.Node, meta client.ObjectMeta, holders []member) {
	byID := make(map[string]*nodeState, len(states))
	for i := range states {
		byID[states[i].node.ID] = &states[i]
	}
	var hints []client.Hint
	var to []member
	now := s.now().UTC()
	for i, h := range holders {
		if h.c != nil {
			to = append(to, h)
			continue
		}
		hint := client.Hint{Bucket: meta.Bucket, Key: meta.Key, Version: meta.Version, Shard: i, Reason: "missing", Time: now}
		if i < len(placed) {
			hint.NodeID = placed[i].ID
			if ns := byID[hint.NodeID]; ns != nil {
				switch {
				case ns.err != nil:
					hint.Reason = "unreachable"
				case ns.st.Committed != nil && ns.st.Committed.Version < meta.Version:
					hint.Reason = "stale"
				}
			}
		}
		hints = append(hints, hint)
	}
	s.sendHints(ctx, to, hints)
}

// keyStates and answeredAll split node answers for rollforward.Plan.
func keyStates(states []nodeState) []client.KeyState {
	out := make([]client.KeyState, len(states))
	for i, ns := range states {
		out[i] = ns.st
	}
	return out
}

func answeredAll(states []nodeState) []bool {
	out := make([]bool, len(states))
	for i, ns := range states {
		out[i] = ns.err == nil
	}
	return out
}
