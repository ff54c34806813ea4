package scrubber

import (
	"context"
	"errors"
	"slices"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// buckets copies the newest record of every bucket to the nodes whose
// record is missing or older, and fixes the list of buckets to walk.
func (r *run) buckets(ctx context.Context) error {
	s := r.s
	lists := make([][]client.BucketRecord, len(s.nodes))
	errs := make([]error, len(s.nodes))
	each(len(s.nodes), 0, func(i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		lists[i], errs[i] = s.nodes[i].Client.ListBuckets(cctx)
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	newest := make(map[string]client.BucketRecord)
	answered := 0
	for i, l := range lists {
		if errs[i] != nil {
			r.t.incomplete("node %s: listing buckets: %v", s.nodes[i].Node.ID, errs[i])
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
				err := s.nodes[i].Client.PutBucket(cctx, b)
				cancel()
				if err != nil {
					r.t.incomplete("node %s: copying bucket %s: %v", s.nodes[i].Node.ID, b.Name, err)
					continue
				}
				s.log.Info("scrub: copied bucket record", "node", s.nodes[i].Node.ID, "bucket", b.Name, "deleted", b.Deleted)
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
		if s.needsRepair(c) && !s.cfg.DryRun {
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
