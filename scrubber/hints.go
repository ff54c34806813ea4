package scrubber

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

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
		hs, err := s.nodes[i].Client.ListHints(cctx, client.MaxListLen)
		if err != nil {
			r.t.incomplete("node %s: listing hints: %v", s.nodes[i].Node.ID, err)
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
		err := src.m.Client.DeleteHints(cctx, done)
		cancel()
		if err != nil {
			r.t.incomplete("node %s: deleting hints: %v", src.m.Node.ID, err)
			continue
		}
		r.t.add(func(rep *Report) { rep.HintsConsumed += int64(len(done)) })
	}
	return r.save()
}
