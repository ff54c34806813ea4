// Package fanout runs one call per node (or per item) at once and waits
// for them all: the shape of nearly every conversation the gateway and
// the scrubber have with the storage nodes. It holds no protocol rule.
package fanout

import "golang.org/x/sync/errgroup"

// Each runs fn(0..n-1) concurrently, at most limit at once (limit <= 0:
// all n), and returns once every call has returned. fn must be safe to
// call concurrently; Each does not recover its panics.
//
// fn returns nothing: each call keeps its own outcome (callers fill a
// slot per index), and one node failing must not stop the calls to the
// others, so the errgroup below never sees an error.
func Each(n, limit int, fn func(i int)) {
	var g errgroup.Group
	if limit > 0 {
		g.SetLimit(limit)
	}
	for i := range n {
		g.Go(func() error {
			fn(i)
			return nil
		})
	}
	g.Wait()
}
