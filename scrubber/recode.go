package scrubber

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// A version written with raised parity (fewer data shards than the map's,
// because some of its nodes were down) is rebuilt at its own layout, and
// then costs more storage per byte than the map's layout: 2+4 is 3x, 4+2
// 1.5x. Once its nodes are back, the pass re-codes it: it reads the
// version V, encodes it at the map's layout and writes it as the version
// client.RecodeVersion(V), a copy of V's record with only the version,
// layout and shards changed. That name sorts above V and below every
// version above V (docs/ordering.md), so the re-code replaces exactly V:
// a client write racing it is named above it and wins on every node, and
// a re-code committed on only some nodes and rolled forward later by a
// reader never buries a newer write. V may itself be a re-code still
// raised (the gateway finishes a write whose commit lost nodes as one,
// gateway/objects/put.go): its re-code is the next generation, up to
// client.MaxRecodeGeneration; a version at that generation is left as it
// is. Only the null version of an unversioned bucket is re-coded: it is
// the one version whose name clients never see ("null"), so renaming it
// changes nothing they can observe.

// recodable reports whether c's live version is one the pass re-codes:
// a plain object (no marker, manifest or internal record) of a bucket
// known to be unversioned, written with fewer data shards than the map's,
// with every node of its placement answering and every shard it holds
// already where the map puts it.
func (s *Scrubber) recodable(c checked) bool {
	m := c.meta
	switch {
	case s.cfg.DryRun, c.noncurrent:
		return false
	case c.verdict != vHealthy && c.verdict != vDegraded:
		return false
	case m.Deleted || len(m.Parts) > 0 || m.Target != "" || strings.HasPrefix(m.Key, internalPrefix):
		return false
	case m.Data >= s.m.DataShards:
		return false
	case client.RecodeGeneration(m.Version) >= client.MaxRecodeGeneration:
		// No name is left between the last generation and the next
		// version: it stays whole at its own layout.
		return false
	case m.Versioned || m.Versioning != "":
		return false
	case c.moves > 0 || c.strays > 0:
		// Rebalance first: the re-code writes every shard to its
		// placed node, and the copies elsewhere must be settled.
		return false
	case len(c.placed) != s.m.N() || c.healthy < m.Data:
		return false
	}
	// The bucket must be known unversioned: a version copied into a
	// versioned bucket would be kept beside its re-code.
	if b := s.bucketRecord(c.bucket); b.Name != c.bucket || b.Deleted || b.Versioning != "" {
		return false
	}
	answered := make(map[string]bool)
	for _, ns := range c.states {
		if ns.Err == nil {
			answered[ns.Node.ID] = true
		}
	}
	for _, n := range c.placed {
		if !answered[n.ID] {
			return false
		}
	}
	return true
}

// internalPrefix starts the keys the gateway keeps for itself (multipart
// uploads and their parts); they are never re-coded.
const internalPrefix = "\x00"

// recoded is what a re-code did.
type recoded struct {
	done      bool  // committed on a write quorum
	committed int   // nodes that committed the re-code
	bytes     int64 // shard bytes staged
	changed   bool  // a newer version reached a node: the key was rewritten
	reason    string
}

// recode writes c's live version again at the map's layout under its
// re-code name: it decodes the version from its verified shards, encodes
// it with the map's codec, stages every shard on the node the map names
// for it and commits the re-code there under the nodes' newest-wins rule.
// It counts as done once a write quorum committed it; nodes that did not
// answer keep it staged, and the staged phase or a reader rolls it
// forward. A node that holds (or stages) a newer version refuses it and
// the re-code stops there: the key was rewritten. Whatever fails before
// the commits, the staged shards are aborted and the version stays as it
// is, whole at its own layout.
func (s *Scrubber) recode(ctx context.Context, c checked) recoded {
	var out recoded
	old := c.meta
	oldCd, err := s.codec(old.Data, old.Parity, old.BlockSize)
	if err != nil {
		out.reason = fmt.Sprintf("codec of the version: %v", err)
		return out
	}
	d, p := s.m.DataShards, s.m.ParityShards
	newCd, err := s.codec(d, p, s.m.BlockSize)
	if err != nil {
		out.reason = fmt.Sprintf("codec of the map: %v", err)
		return out
	}
	n := d + p
	targets := make([]*member, n)
	for i, pn := range c.placed {
		mb, ok := s.byID[pn.ID]
		if !ok {
			out.reason = fmt.Sprintf("node %s is not in the map", pn.ID)
			return out
		}
		targets[i] = &mb
	}

	// The re-code's record: V's, with only the version, the layout and
	// the shards changed, and the newest tag set any holder showed (a
	// node carries a newer one still, client.RecodeTags).
	meta := old
	meta.Version = client.RecodeVersion(old.Version)
	meta.Data, meta.Parity, meta.BlockSize, meta.Format = d, p, s.m.BlockSize, codec.FormatVersion
	meta.Quorum, meta.Staged, meta.Roots = 0, "", make([]string, n)
	meta.Nodes = make([]string, n)
	for i, pn := range c.placed {
		meta.Nodes[i] = pn.ID
	}
	for _, rec := range c.held {
		if rec.Version == old.Version && rec.TagsAt > meta.TagsAt {
			meta.Tagging, meta.TagsAt = rec.Tagging, rec.TagsAt
		}
	}

	oldShard := oldCd.Layout(old.Size).ShardSize()
	newShard := newCd.Layout(old.Size).ShardSize()
	ctx, cancel := s.dataCtx(ctx, oldShard*int64(old.Data)+newShard*int64(n))
	defer cancel()

	// Sources: the verified shards of V, opened only if the decoder
	// needs them.
	srcs, closeSrcs := s.shardSources(ctx, old, c.good, old.Data+old.Parity)
	defer closeSrcs()

	dsts, finish := s.stageStreams(ctx, targets, meta)
	// Decode V into the encoder, hashing the bytes on the way: a single
	// PUT's ETag is their MD5, one more check that the re-code holds
	// exactly what V held.
	body, feed := io.Pipe()
	sum := md5.New()
	var decodeErr error
	var decoded sync.WaitGroup
	decoded.Go(func() {
		_, decodeErr = oldCd.Decode(io.MultiWriter(feed, sum), srcs, old.Size, 0, old.Size)
		feed.CloseWithError(decodeErr)
	})
	enc, err := newCd.Encode(body, dsts)
	body.CloseWithError(errStageDone) // unblocks the decoder if the encoder stopped early
	decoded.Wait()
	results := finish(err)

	abortAll := func() {
		for _, tg := range targets {
			s.abort(ctx, tg, meta)
		}
	}
	switch {
	case decodeErr != nil:
		out.reason = fmt.Sprintf("reading the version: %v", decodeErr)
	case err != nil:
		out.reason = fmt.Sprintf("encoding: %v", err)
	case enc.Size != old.Size:
		out.reason = fmt.Sprintf("read %d bytes, the version has %d", enc.Size, old.Size)
	case isMD5(old.ETag) && hex.EncodeToString(sum.Sum(nil)) != strings.ToLower(old.ETag):
		out.reason = fmt.Sprintf("the bytes read do not match the ETag %s", old.ETag)
	}
	if out.reason != "" {
		abortAll()
		return out
	}
	for i, r := range results {
		meta.Roots[i] = enc.Roots[i].String()
		switch {
		case r.err != nil:
			out.reason = fmt.Sprintf("staging shard %d on %s: %v", i, targets[i].Node.ID, r.err)
		case r.ref.Root != meta.Roots[i]:
			out.reason = fmt.Sprintf("shard %d staged on %s with root %s, encoded %s", i, targets[i].Node.ID, r.ref.Root, meta.Roots[i])
		case r.ref.Bucket != nil && r.ref.Bucket.Versioning != "":
			// Versioning was turned on since the pass read the
			// bucket: the node would keep V beside its re-code.
			out.reason = fmt.Sprintf("node %s has the bucket %s", targets[i].Node.ID, r.ref.Bucket.Versioning)
		case r.ref.Newest > meta.Version:
			// A write of the key is staged or committed there: it
			// owns the key, leave it alone.
			out.changed = true
			out.reason = fmt.Sprintf("node %s holds newer version %s", targets[i].Node.ID, r.ref.Newest)
		}
		if out.reason != "" {
			abortAll()
			return out
		}
		out.bytes += r.ref.Size
	}

	// Commit under the usual rules: a refusal (a newer version there)
	// never counts, and its staged shard goes; a commit that failed
	// without an answer may have been applied, so its shard stays for
	// the staged phase to settle.
	var mu sync.Mutex
	var why []string
	unknown := 0
	each(n, 0, func(i int) {
		tg := targets[i]
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		rec, err := tg.Client.Commit(cctx, meta)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case client.Newer(err) != "":
			out.changed = true
			why = append(why, fmt.Sprintf("%s holds newer version %s", tg.Node.ID, client.Newer(err)))
			s.abort(ctx, tg, meta)
		case err != nil:
			unknown++
			why = append(why, fmt.Sprintf("committing on %s: %v", tg.Node.ID, err))
		case rec.Version > meta.Version:
			out.changed = true
			why = append(why, fmt.Sprintf("%s holds newer version %s", tg.Node.ID, rec.Version))
		case rec.Version == meta.Version && rec.Shard == i:
			out.committed++
		default:
			why = append(why, fmt.Sprintf("%s kept version %s shard %d", tg.Node.ID, rec.Version, rec.Shard))
		}
	})
	out.done = out.committed >= s.m.WriteQuorum
	if !out.done {
		if out.committed == 0 && unknown == 0 {
			abortAll() // no node holds it committed: nothing to settle
		}
		out.reason = fmt.Sprintf("committed on %d of %d nodes, %d needed: %s", out.committed, n, s.m.WriteQuorum, strings.Join(why, "; "))
		return out
	}
	s.log.Info("scrub: re-coded raised version", "bucket", old.Bucket, "key", old.Key, "version", old.Version,
		"recode", meta.Version, "from", fmt.Sprintf("%d+%d", old.Data, old.Parity), "to", fmt.Sprintf("%d+%d", d, p),
		"committed", out.committed, "bytes", old.Size, "shard_bytes", out.bytes)
	if len(why) > 0 {
		s.log.Warn("scrub: re-code not committed everywhere; left staged there", "bucket", old.Bucket, "key", old.Key,
			"version", meta.Version, "detail", strings.Join(why, "; "))
	}
	return out
}

// isMD5 reports whether an ETag is a plain MD5 (a single PUT's), not a
// multipart one ("<md5>-<parts>").
func isMD5(etag string) bool {
	if len(etag) != 2*md5.Size {
		return false
	}
	_, err := hex.DecodeString(etag)
	return err == nil
}
