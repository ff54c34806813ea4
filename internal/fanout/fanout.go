// Package fanout runs one call per node (or per item) at once and waits
// for them all: the shape of nearly every conversation the gateway and
// the scrubber have with the storage nodes. It holds no protocol rule.
package fanout

import "sync"

// Each runs fn(0..n-1) concurrently, at most limit at once (limit <= 0:
// all n), and returns once every call has returned. fn must be safe to
// call concurrently; Each does not recover its panics.
func Each(n, limit int, fn func(i int)) {
	if limit <= 0 {
		limit = n
	}
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}
