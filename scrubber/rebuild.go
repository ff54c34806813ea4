package scrubber

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// outcome is what a rebuild did.
type outcome struct {
	rebuilt int   // shards committed on their nodes
	bytes   int64 // shard bytes written
	failed  int   // shards that could not be rebuilt
	changed bool  // a newer version arrived: the writer owns the key now
	reasons []string
	slots   []int // the shard indexes rebuilt, each now on its placed node
}

// rebuild regenerates every shard of c.meta that no node holds verified,
// from the verified ones, and writes each, staged then committed with the
// version's own metadata, to the node the current map names for it.
//
// Commits obey the node's newest-wins rule: a node that has meanwhile
// taken a newer version (or a delete) keeps it and the commit is a no-op,
// so a rebuild can never clobber a write or resurrect a deletion. The
// rebuilt root of every shard must equal the recorded one before it is
// committed, and the node checks again.
func (s *Scrubber) rebuild(ctx context.Context, c checked) outcome {
	var out outcome
	fail := func(i int, format string, args ...any) {
		out.failed++
		out.reasons = append(out.reasons, fmt.Sprintf("shard %d: %s", i, fmt.Sprintf(format, args...)))
	}
	meta := c.meta
	n := meta.Data + meta.Parity
	if len(meta.Roots) != n {
		fail(-1, "the version records %d roots for %d shards", len(meta.Roots), n)
		return out
	}
	cd, err := s.codec(meta.Data, meta.Parity, meta.BlockSize)
	if err != nil {
		fail(-1, "codec: %v", err)
		return out
	}
	shardSize := cd.Layout(meta.Size).ShardSize()

	// Where each missing shard goes: the node the map names for its index,
	// unless that node holds another verified shard of the version (the
	// map changed under it; moving shards is a rebalance, not a repair).
	targets := make([]*member, n)
	holds := make(map[string]bool)
	for _, id := range c.good {
		if id != "" {
			holds[id] = true
		}
	}
	want := 0
	for i := range n {
		if c.good[i] != "" {
			continue
		}
		if i >= len(c.placed) {
			fail(i, "the map names no node for it")
			continue
		}
		if c.unknown[i] {
			fail(i, "its node %s did not answer", c.placed[i].ID)
			continue
		}
		node := c.placed[i]
		if holds[node.ID] {
			fail(i, "its node %s holds another shard of the version", node.ID)
			continue
		}
		mb, ok := s.byID[node.ID]
		if !ok {
			fail(i, "node %s is not in the map", node.ID)
			continue
		}
		targets[i] = &mb
		want++
	}
	if want == 0 {
		return out
	}

	s.stats.repairsInFlight.Add(int64(want))
	defer s.stats.repairsInFlight.Add(-int64(want))
	ctx, cancel := s.dataCtx(ctx, shardSize*int64(meta.Data+want))
	defer cancel()

	srcs, closeSrcs := s.shardSources(ctx, meta, c.good, n)
	defer closeSrcs()

	dsts, finish := s.stageStreams(ctx, targets, meta)
	roots, rep, err := cd.Rebuild(dsts, srcs, meta.Size)
	results := finish(err)
	for _, f := range rep.Failed {
		s.log.Warn("scrub: source shard failed during rebuild", "bucket", meta.Bucket, "key", meta.Key,
			"version", meta.Version, "shard", f.Shard, "stripe", f.Block, "err", f.Err)
	}
	if err != nil {
		for i, tg := range targets {
			if tg != nil {
				fail(i, "rebuild: %v", err)
				s.abort(ctx, tg, meta)
			}
		}
		return out
	}

	var mu sync.Mutex
	each(n, 0, func(i int) {
		tg := targets[i]
		if tg == nil {
			return
		}
		record := func(f func()) { mu.Lock(); f(); mu.Unlock() }
		r := results[i]
		switch {
		case r.err != nil:
			record(func() { fail(i, "staging on %s: %v", tg.Node.ID, r.err) })
			return
		case roots[i].String() != meta.Roots[i] || r.ref.Root != meta.Roots[i]:
			// Decoding from verified blocks cannot produce another root
			// unless the recorded roots themselves are wrong.
			record(func() {
				fail(i, "rebuilt root %s (node computed %s), recorded %s", roots[i], r.ref.Root, meta.Roots[i])
			})
			s.abort(ctx, tg, meta)
			return
		}
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		commit := tg.Client.Commit
		if c.noncurrent {
			commit = commitNoncurrent(tg)
		}
		rec, err := commit(cctx, meta)
		switch {
		case client.Newer(err) != "":
			// A newer version reached the node; it keeps the
			// rebuilt shard staged until told otherwise.
			record(func() { out.changed = true })
			s.abort(ctx, tg, meta)
		case err != nil:
			record(func() { fail(i, "committing on %s: %v", tg.Node.ID, err) })
			s.abort(ctx, tg, meta)
		case rec.Version > meta.Version:
			record(func() { out.changed = true })
		case rec.Version == meta.Version && rec.Shard == i:
			s.log.Info("scrub: rebuilt shard", "bucket", meta.Bucket, "key", meta.Key, "version", meta.Version,
				"shard", i, "node", tg.Node.ID, "bytes", r.ref.Size)
			record(func() {
				out.rebuilt++
				out.bytes += r.ref.Size
				out.slots = append(out.slots, i)
			})
		default:
			record(func() {
				fail(i, "node %s kept version %s shard %d", tg.Node.ID, rec.Version, rec.Shard)
			})
			s.abort(ctx, tg, meta)
		}
	})
	s.stats.shardsRebuilt.Add(int64(out.rebuilt))
	s.stats.repairsFailed.Add(int64(out.failed))
	return out
}

var errStageDone = errors.New("scrubber: stage finished")

// stagedShard is what a node answered to a shard stageStreams sent it.
type stagedShard struct {
	ref client.StagedRef
	err error
}

// stageStreams stages meta's shard i on targets[i] (nil: none) from what
// is written to dsts[i] (nil for no target), each in a call of its own.
// finish ends every stream with err (nil: a clean end of the shard),
// waits for the calls and returns their answers by shard.
func (s *Scrubber) stageStreams(ctx context.Context, targets []*member, meta client.ObjectMeta) (dsts []io.Writer, finish func(err error) []stagedShard) {
	n := len(targets)
	dsts = make([]io.Writer, n)
	sinks := make([]*sink, n)
	results := make([]stagedShard, n)
	var wg sync.WaitGroup
	for i, tg := range targets {
		if tg == nil {
			continue
		}
		pr, pw := io.Pipe()
		sinks[i] = &sink{w: pw}
		dsts[i] = sinks[i]
		wg.Go(func() {
			ref, err := tg.Client.Stage(ctx, meta.Bucket, meta.Key, meta.Version, i, meta.BlockSize, pr)
			// Unblock the writer if the node stopped reading early.
			pr.CloseWithError(errStageDone)
			results[i] = stagedShard{ref, err}
		})
	}
	return dsts, func(err error) []stagedShard {
		for _, sk := range sinks {
			if sk != nil {
				sk.w.CloseWithError(err)
			}
		}
		wg.Wait()
		return results
	}
}

// shardSources returns readers of meta's shards on the nodes good names
// by shard index ("" for none), n of them, each opened only when first
// read (the decoder may not need it), throttled and counted, and a func
// that closes those opened.
func (s *Scrubber) shardSources(ctx context.Context, meta client.ObjectMeta, good []string, n int) ([]io.Reader, func()) {
	srcs := make([]io.Reader, n)
	var opened []*lazyShard
	for i, id := range good {
		if id == "" {
			continue
		}
		mb := s.byID[id]
		ls := &lazyShard{open: func() (io.ReadCloser, error) {
			return mb.Client.ReadShard(ctx, meta.Bucket, meta.Key, meta.Version, i, 0, -1)
		}}
		opened = append(opened, ls)
		srcs[i] = &countingReader{r: s.th.Reader(ctx, ls), n: &s.stats.bytesRead}
	}
	return srcs, func() {
		for _, ls := range opened {
			ls.Close()
		}
	}
}

// abort drops what a failed rebuild staged on a node, best effort: the
// node's sweep removes it anyway after its grace.
func (s *Scrubber) abort(ctx context.Context, m *member, meta client.ObjectMeta) {
	cctx, cancel := s.callCtx(context.WithoutCancel(ctx))
	defer cancel()
	if err := m.Client.Abort(cctx, meta.Bucket, meta.Key, meta.Version); err != nil {
		s.log.Debug("scrub: abort after failed rebuild", "node", m.Node.ID, "err", err)
	}
}

// sink passes writes to a stage's pipe until the first error, then
// swallows them, so that one failing node does not stop the rebuild of the
// others' shards.
type sink struct {
	w   *io.PipeWriter
	err error
}

func (k *sink) Write(p []byte) (int, error) {
	if k.err == nil {
		_, k.err = k.w.Write(p)
	}
	return len(p), nil
}

// lazyShard opens a shard stream on its first read, so that the sources
// the decoder never needs cost nothing.
type lazyShard struct {
	open func() (io.ReadCloser, error)
	rc   io.ReadCloser
	err  error
}

func (l *lazyShard) Read(p []byte) (int, error) {
	if l.rc == nil && l.err == nil {
		l.rc, l.err = l.open()
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.rc.Read(p)
}

func (l *lazyShard) Close() error {
	if l.rc != nil {
		return l.rc.Close()
	}
	return nil
}

// countingReader adds the bytes read to n.
type countingReader struct {
	r io.Reader
	n interface{ Add(int64) int64 }
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}
