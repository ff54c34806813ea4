package scrubber

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/kintsugi-store/kintsugi/internal/nodeaccess"
	"github.com/kintsugi-store/kintsugi/internal/readrule"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

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
		list, err := s.nodes[i].Client.ListStaged(cctx, client.MaxListLen)
		if err != nil {
			r.t.incomplete("node %s: listing staged shards: %v", s.nodes[i].Node.ID, err)
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
			if !slices.Contains(h.nodes, s.nodes[i].Node.ID) {
				h.nodes = append(h.nodes, s.nodes[i].Node.ID)
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
			if c := ns.State.Committed; ns.Err == nil && c != nil && c.Version == v.version {
				// Committed somewhere: its writer passed its stage quorum,
				// so it is finished, never aborted. Nodes sweep such
				// staged shards only once a newer version supersedes them
				// there, so they wait for this (or the walk, or a reader).
				if s.cfg.DryRun {
					return
				}
				in := readrule.Input{Answers: nodeaccess.Answers(states), Silent: max(s.m.N()-len(placed), 0), WriteQuorum: s.m.WriteQuorum, MinQuorum: s.m.MinWriteQuorum()}
				if rv := readrule.Decide(in); rv.Kind == readrule.RollForward && rv.Meta.Version == v.version {
					if k := s.rollForward(ctx, states, rv); k > 0 {
						r.t.add(func(rep *Report) { rep.RolledForward += int64(k) })
					}
				}
				return
			}
		}
		for _, ns := range states {
			if ns.Err != nil {
				// It may be committed on the silent node.
				r.t.incomplete("%s/%s staged version %s: node %s did not answer", v.bucket, v.key, v.version, ns.Node.ID)
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
			err := m.Client.Abort(cctx, v.bucket, v.key, v.version)
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
