package nodeaccess

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// TestAttempt: the second pass of an attempt goes through the breakers
// that refused the first, and refuses at once, without calling it, a node
// that failed the first; nodes neither refused nor failed are called as
// usual.
func TestAttempt(t *testing.T) {
	h := newTracker(t)
	down := &statNode{err: kerr.E("t", kerr.Unavailable, errors.New("connection refused"))}
	open := Guard(down, "open", h)
	for range tripAfter {
		open.Stat(context.Background(), "b", "k")
	}
	down.err = nil // back, behind its open breaker
	cut := &statNode{err: fmt.Errorf("stat: %w", context.DeadlineExceeded)}
	ok := &statNode{}
	nodes := map[string]*statNode{"open": down, "cut": cut, "ok": ok}

	ctx, a := WithAttempt(context.Background())
	if a.Refused() {
		t.Fatal("Refused before any call")
	}
	if _, err := open.Stat(ctx, "b", "k"); !errors.Is(err, health.ErrOpen) {
		t.Fatalf("first pass through an open breaker: %v, want ErrOpen", err)
	}
	Guard(cut, "cut", h).Stat(ctx, "b", "k")
	Guard(ok, "ok", h).Stat(ctx, "b", "k")
	if !a.Refused() {
		t.Fatal("Refused = false after an open breaker refused a call")
	}

	again := a.Again(context.Background())
	before := map[string]int32{}
	for id, n := range nodes {
		before[id] = n.calls.Load()
	}
	for _, tc := range []struct {
		id      string
		want    error // nil: the call reaches the node and succeeds
		reaches bool
	}{
		{"open", nil, true},
		{"cut", ErrFailedBefore, false},
		{"ok", nil, true},
	} {
		cut.err = nil // a second call to it would succeed: it must not be made
		_, err := Guard(nodes[tc.id], tc.id, h).Stat(again, "b", "k")
		if !errors.Is(err, tc.want) || (tc.want != nil && !kerr.Is(kerr.Unavailable, err)) {
			t.Errorf("%s: second pass = %v, want %v", tc.id, err, tc.want)
		}
		if got := nodes[tc.id].calls.Load() - before[tc.id]; got != map[bool]int32{true: 1, false: 0}[tc.reaches] {
			t.Errorf("%s: second pass made %d calls", tc.id, got)
		}
	}
	if h.Available("open") {
		t.Error("a call through the open breaker closed it")
	}
}

// TestAttemptIgnoresCallerCancel: a call the caller cut off (a straggler
// no longer waited for) is not a failure of the node: the second pass
// still asks it.
func TestAttemptIgnoresCallerCancel(t *testing.T) {
	h := newTracker(t)
	n := &statNode{err: kerr.E("t", kerr.Transient, context.Canceled)}
	ctx, a := WithAttempt(context.Background())
	cctx, cancel := context.WithCancelCause(ctx)
	cancel(errors.New("straggler"))
	Guard(n, "n1", h).Stat(cctx, "b", "k")
	n.err = nil
	if _, err := Guard(n, "n1", h).Stat(a.Again(context.Background()), "b", "k"); err != nil {
		t.Fatalf("second pass after a cancelled call = %v", err)
	}
}
