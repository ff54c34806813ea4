// Package flush lets concurrent writers share the flushes (fsync, msync,
// a database sync) that make their writes durable: group commit.
//
// It never decides what a flush is or when to flush; the caller's flush
// function does the work, and the caller asks only after its own write has
// reached the file or log that the flush makes durable. It never reports a
// write durable before a flush that began after the write has succeeded.
package flush

import "sync"

// Group shares flushes among concurrent callers. A caller is covered only
// by a flush that starts after it called Do, because a flush already under
// way may have missed its write. While one flush runs, every caller that
// arrives waits, and then one of them runs a single flush for all of them:
// k concurrent callers cost at most two flushes instead of k.
//
// The zero Group is ready to use. A Group must not be copied after first
// use.
type Group struct {
	mu      sync.Mutex
	cond    sync.Cond // on mu; set up on first use
	running bool
	waiting int    // callers blocked in Do
	started uint64 // flushes started
	done    uint64 // flushes finished
	failed  uint64 // the newest failed flush (0: none)
	err     error  // its error
}

// Do returns once a call of flush that started after Do was called has
// finished, with that flush's error. Calls of flush never overlap.
//
// A caller whose flush succeeded still gets the error of a later failed
// one that finished before it woke: after a failed fsync the kernel may
// drop the dirty state it could not write, so a failure is reported to
// everyone who could depend on it rather than to just one caller.
func (g *Group) Do(flush func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond.L == nil {
		g.cond.L = &g.mu
	}
	want := g.started + 1
	for g.done < want {
		if g.running {
			g.waiting++
			g.cond.Wait()
			g.waiting--
			continue
		}
		g.running = true
		g.started++
		gen := g.started
		g.mu.Unlock()
		err := flush()
		g.mu.Lock()
		g.running = false
		g.done = gen
		if err != nil {
			g.failed, g.err = gen, err
		}
		g.cond.Broadcast()
	}
	if g.failed >= want {
		return g.err
	}
	return nil
}
