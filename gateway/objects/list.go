package objects

import (
	"context"
	"fmt"
	"strings"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/nodeaccess"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// MaxListKeys is the largest page ListObjects returns.
const MaxListKeys = 1000

// afterPrefix sorts after every key that starts with the prefix it is
// appended to (keys are UTF-8, and this is the largest code point), so a
// node cursor restarted there skips a whole common prefix.
const afterPrefix = "\U0010FFFF"

// ListObjects returns a page of the live objects in bucket, in key order,
// merged from every node of the map: the newest version of each key wins and
// keys whose newest version is a delete marker are left out. With a
// Delimiter, keys that contain it after the Prefix are folded into one
// CommonPrefixes entry each. MaxKeys counts objects and common prefixes.
//
// Errors: ErrNoSuchBucket; ErrInvalidArgument; ErrQuorum when fewer than
// all but ParityShards of the nodes answer.
func (s *Store) ListObjects(ctx context.Context, bucket string, opts ListOptions) (ListResult, error) {
	return fenced(ctx, s, func(ctx context.Context) (ListResult, error) { return s.listObjects(ctx, bucket, opts) })
}

// listObjects is ListObjects under one map.
func (s *Store) listObjects(ctx context.Context, bucket string, opts ListOptions) (ListResult, error) {
	const op = "objects.ListObjects"
	if err := validName(op, bucket, "", false); err != nil {
		return ListResult{}, err
	}
	if opts.MaxKeys < 0 {
		return ListResult{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: negative MaxKeys", ErrInvalidArgument))
	}
	maxKeys := opts.MaxKeys
	if maxKeys == 0 || maxKeys > MaxListKeys {
		maxKeys = MaxListKeys
	}
	if err := s.checkBucket(ctx, bucket); err != nil {
		return ListResult{}, kerr.E(op, err)
	}
	res, err := s.list(ctx, bucket, opts, maxKeys)
	if err != nil && kerr.Is(kerr.Unavailable, err) && s.anyOpen() {
		// As for reads: breakers that have not caught up with nodes back
		// (or were opened by a burst of slow answers) are worth one try
		// through them before answering 503.
		res, err = s.list(nodeaccess.WithBypass(ctx), bucket, opts, maxKeys)
	}
	if err != nil {
		return ListResult{}, kerr.E(op, err)
	}
	return res, nil
}

// list is one attempt at ListObjects, which has checked its arguments.
func (s *Store) list(ctx context.Context, bucket string, opts ListOptions, maxKeys int) (ListResult, error) {
	m := s.Map()
	ms := s.members(nodeaccess.LiveNodes(m))
	mg := &merger{
		s:      s,
		bucket: bucket,
		prefix: opts.Prefix,
		limit:  maxKeys + 1,
		need:   max(len(ms)-m.ParityShards, 1),
	}
	start := opts.After
	// A continuation from a common prefix must skip all of it, not just
	// its first key.
	var skip string
	if cp, ok := commonPrefix(opts.After, opts.Prefix, opts.Delimiter); ok && cp == opts.After {
		skip = cp
		start = cp + afterPrefix
	}
	// Multipart uploads and parts live under the internal prefix, which
	// sorts before every client key: start past it rather than page
	// through it.
	start = max(start, internalEnd)
	for _, c := range ms {
		mg.cursors = append(mg.cursors, &cursor{member: c, after: start, more: true})
	}

	var res ListResult
	var last string
	for {
		rec, ok, err := mg.next(ctx)
		if err != nil {
			return ListResult{}, err
		}
		if !ok {
			break
		}
		if rec.Deleted || isInternal(rec.Key) || (skip != "" && strings.HasPrefix(rec.Key, skip)) || !strings.HasPrefix(rec.Key, opts.Prefix) {
			continue
		}
		entry := rec.Key
		cp, isPrefix := commonPrefix(rec.Key, opts.Prefix, opts.Delimiter)
		if isPrefix {
			entry = cp
		}
		if len(res.Objects)+len(res.CommonPrefixes) == maxKeys {
			res.Truncated, res.NextAfter = true, last
			break
		}
		if isPrefix {
			res.CommonPrefixes = append(res.CommonPrefixes, cp)
			skip = cp
			mg.skip(cp)
		} else {
			res.Objects = append(res.Objects, infoOf(rec.ObjectMeta))
		}
		last = entry
	}
	return res, nil
}

// commonPrefix returns key up to and including the first delimiter after
// prefix, if it has one.
func commonPrefix(key, prefix, delim string) (string, bool) {
	if delim == "" || !strings.HasPrefix(key, prefix) {
		return "", false
	}
	i := strings.Index(key[len(prefix):], delim)
	if i < 0 {
		return "", false
	}
	return key[:len(prefix)+i+len(delim)], true
}

// cursor is one node's position in a merged listing.
type cursor struct {
	member
	recs   []client.Record
	pos    int
	after  string // where the next page starts (exclusive)
	more   bool   // the node may have records after `after`
	failed bool
}

func (c *cursor) head() *client.Record {
	if c.pos < len(c.recs) {
		return &c.recs[c.pos]
	}
	return nil
}

// merger merges node listings by key, fetching pages only as they run out.
type merger struct {
	s       *Store
	bucket  string
	prefix  string
	limit   int // page size asked of each node
	need    int // answering nodes required
	cursors []*cursor
}

// next returns the newest record of the smallest key not yet returned.
func (mg *merger) next(ctx context.Context) (client.Record, bool, error) {
	if err := mg.fill(ctx); err != nil {
		return client.Record{}, false, err
	}
	var best *client.Record
	for _, c := range mg.cursors {
		if h := c.head(); h != nil && (best == nil || h.Key < best.Key) {
			best = h
		}
	}
	if best == nil {
		return client.Record{}, false, nil
	}
	key := best.Key
	for _, c := range mg.cursors {
		if h := c.head(); h != nil && h.Key == key {
			if h.Version > best.Version {
				best = h
			}
			c.pos++
		}
	}
	// best points into a cursor's page, which a later fill replaces.
	return *best, true, nil
}

// skip drops every key starting with cp from the cursors, restarting the
// ones that run dry after the prefix instead of paging through it.
func (mg *merger) skip(cp string) {
	for _, c := range mg.cursors {
		for h := c.head(); h != nil && strings.HasPrefix(h.Key, cp); h = c.head() {
			c.pos++
		}
		if c.head() == nil && c.after < cp+afterPrefix {
			c.after = cp + afterPrefix
		}
	}
}

// fill fetches the next page for every cursor that ran dry, in parallel.
func (mg *merger) fill(ctx context.Context) error {
	var dry []*cursor
	for _, c := range mg.cursors {
		if !c.failed && c.more && c.head() == nil {
			dry = append(dry, c)
		}
	}
	if len(dry) > 0 {
		each(len(dry), func(i int) {
			c := dry[i]
			cctx, cancel := mg.s.callCtx(ctx)
			defer cancel()
			page, err := c.Client.List(cctx, mg.bucket, mg.prefix, c.after, mg.limit)
			if err != nil {
				mg.s.log.Debug("objects: list failed", "node", c.Node.ID, "bucket", mg.bucket, "err", err)
				c.failed, c.recs, c.pos = true, nil, 0
				return
			}
			// Keep only what extends the node's order; a node must never
			// send a key at or before the one asked after.
			c.recs, c.pos = c.recs[:0], 0
			for _, r := range page.Records {
				if r.Key > c.after {
					c.recs = append(c.recs, r)
				}
			}
			c.more = page.Truncated && len(c.recs) > 0
			if len(c.recs) > 0 {
				c.after = c.recs[len(c.recs)-1].Key
			}
		})
		if err := ctx.Err(); err != nil {
			return kerr.E("objects.list", kerr.Transient, err)
		}
	}
	alive := 0
	for _, c := range mg.cursors {
		if !c.failed {
			alive++
		}
	}
	if alive < mg.need {
		return kerr.E("objects.list", kerr.Unavailable,
			quorumErr("%d of %d nodes answered the listing, need %d", alive, len(mg.cursors), mg.need))
	}
	return nil
}
