package objects

import "sync"

// keyLocks orders the commits of each key made through this gateway. Two
// writes of a key that commit at the same moment race on its nodes: each
// node commits whichever arrives first, and refuses the older one if the
// newer came first, so both can end short of their quorum (a burst of
// writes released together by a node that was stopped loses all but
// one). A write names its commit version and commits under its key's
// lock, so the next write of the key through this gateway is named above
// it and reaches each node after it: nothing refuses it for the one
// before. Writes through other gateways still race; the nodes' rule
// (docs/ordering.md) keeps that safe, this only keeps it rarer.
type keyLocks struct {
	mu   sync.Mutex
	held map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int // holders and waiters; the entry goes when it drops to 0
}

// lock waits for bucket/key's lock and returns its unlock.
func (l *keyLocks) lock(bucket, key string) (unlock func()) {
	k := bucket + "\x00" + key
	l.mu.Lock()
	if l.held == nil {
		l.held = make(map[string]*keyLock)
	}
	e := l.held[k]
	if e == nil {
		e = &keyLock{}
		l.held[k] = e
	}
	e.refs++
	l.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.held, k)
		}
		l.mu.Unlock()
	}
}
