package nodeaccess

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// ErrFailedBefore is wrapped (with kerr.Unavailable) by the error of a
// call refused in a second pass (Attempt.Again) because the node failed
// a call of the first.
var ErrFailedBefore = errors.New("node failed earlier in this operation")

// Attempt records how the calls of one pass of an operation fared at the
// nodes, for an operation that asks again through open breakers when they
// alone stood in its way (Again). The second pass must go through the
// breakers that refused the first, and only those: a node that failed a
// call of the first pass (timed out, unreachable) is refused at once in
// the second. A node cut off from the network accepts no connection and
// sends no reset, so each call to it lasts its whole timeout; its breaker
// often opens during the first of those, and going through it again made
// a read wait twice on the same silent node. It is safe for concurrent
// use.
type Attempt struct {
	mu      sync.Mutex
	refused map[string]bool // an open breaker refused a call
	failed  map[string]bool // a call was made and counted against the node
}

type (
	attemptKey struct{}
	againKey   struct{}
)

// WithAttempt returns a context whose node calls are recorded in the
// returned Attempt.
func WithAttempt(ctx context.Context) (context.Context, *Attempt) {
	a := &Attempt{refused: map[string]bool{}, failed: map[string]bool{}}
	return context.WithValue(ctx, attemptKey{}, a), a
}

// Refused reports whether an open breaker refused a call of the pass to a
// node that failed no call: asking again through it may get an answer.
func (a *Attempt) Refused() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id := range a.refused {
		if !a.failed[id] {
			return true
		}
	}
	return false
}

// Again returns ctx for a second pass: calls to the nodes whose breakers
// refused the first go through them, and calls to the nodes that failed
// one of its calls fail at once with ErrFailedBefore, without passing
// their breakers (a half-open breaker's one probe is not spent on them).
func (a *Attempt) Again(ctx context.Context) context.Context {
	return context.WithValue(ctx, againKey{}, a)
}

func (a *Attempt) note(m map[string]bool, id string) {
	a.mu.Lock()
	m[id] = true
	a.mu.Unlock()
}

func (a *Attempt) has(m map[string]bool, id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return m[id]
}

func attemptOf(ctx context.Context) *Attempt {
	a, _ := ctx.Value(attemptKey{}).(*Attempt)
	return a
}

func againOf(ctx context.Context) *Attempt {
	a, _ := ctx.Value(againKey{}).(*Attempt)
	return a
}

// failedBefore is the error of a call Again refuses.
func failedBefore(id string) error {
	return kerr.E("nodeaccess.Again", kerr.Unavailable, fmt.Errorf("node %s: %w", id, ErrFailedBefore))
}
