package scrubber

import (
	"context"
	"errors"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// listPage is how many records the walk asks a node for at once.
const listPage = 1000

// listed is a key found by the walk and the nodes whose listing showed it.
type listed struct {
	key   string
	nodes []string
}

// lister merges the key-ordered listings of one bucket from every node
// into one stream of distinct keys. A node whose listing fails is dropped
// from the merge (and reported by failedNodes); the others carry on.
type lister struct {
	s       *Scrubber
	bucket  string
	cursors []*cursor
}

type cursor struct {
	m      member
	after  string
	page   []client.Record
	i      int
	done   bool // no more pages
	failed error
}

func newLister(s *Scrubber, bucket, after string) *lister {
	l := &lister{s: s, bucket: bucket}
	for _, m := range s.nodes {
		l.cursors = append(l.cursors, &cursor{m: m, after: after})
	}
	return l
}

// head returns the cursor's next key, fetching a page if needed; ok is
// false at its end or after a failure.
func (l *lister) head(ctx context.Context, c *cursor) (string, bool, error) {
	for c.failed == nil && c.i == len(c.page) {
		if c.done {
			return "", false, nil
		}
		cctx, cancel := l.s.callCtx(ctx)
		page, err := c.m.Client.List(cctx, l.bucket, "", c.after, listPage)
		cancel()
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return "", false, ctxErr
			}
			l.s.log.Warn("scrub: listing failed", "node", c.m.Node.ID, "bucket", l.bucket, "err", err)
			c.failed = err
			break
		}
		c.page, c.i = page.Records, 0
		if len(page.Records) > 0 {
			c.after = page.Records[len(page.Records)-1].Key
		}
		c.done = !page.Truncated || len(page.Records) == 0
	}
	if c.failed != nil {
		return "", false, nil
	}
	return c.page[c.i].Key, true, nil
}

// nextBatch returns up to max next keys in key order, each with the nodes
// listing it; an empty batch means the end.
func (l *lister) nextBatch(ctx context.Context, max int) ([]listed, error) {
	var out []listed
	for len(out) < max {
		min, found := "", false
		for _, c := range l.cursors {
			k, ok, err := l.head(ctx, c)
			if err != nil {
				return nil, err
			}
			if ok && (!found || k < min) {
				min, found = k, true
			}
		}
		if !found {
			break
		}
		item := listed{key: min}
		for _, c := range l.cursors {
			if c.failed == nil && c.i < len(c.page) && c.page[c.i].Key == min {
				item.nodes = append(item.nodes, c.m.Node.ID)
				c.i++
			}
		}
		out = append(out, item)
	}
	if len(out) == 0 && l.allFailed() {
		return nil, kerr.E("scrubber.walk", kerr.Unavailable, errors.New("no node could list bucket "+l.bucket))
	}
	return out, nil
}

// complete reports whether every node's listing has worked so far.
func (l *lister) complete() bool {
	for _, c := range l.cursors {
		if c.failed != nil {
			return false
		}
	}
	return true
}

func (l *lister) allFailed() bool {
	for _, c := range l.cursors {
		if c.failed == nil {
			return false
		}
	}
	return len(l.cursors) > 0
}

// failedNodes lists the nodes whose listing failed.
func (l *lister) failedNodes() []string {
	var out []string
	for _, c := range l.cursors {
		if c.failed != nil {
			out = append(out, c.m.Node.ID)
		}
	}
	return out
}
