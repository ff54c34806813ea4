package flush

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGroupCoversEveryCaller checks the group-commit rule: every caller
// returns only after a flush that started after its call, and concurrent
// callers share flushes.
func TestGroupCoversEveryCaller(t *testing.T) {
	var g Group
	var (
		writes  atomic.Int64 // writes made so far
		durable atomic.Int64 // writes a finished flush has covered
		flushes atomic.Int64
		running atomic.Int32
	)
	flush := func() error {
		if running.Add(1) != 1 {
			t.Error("flushes overlap")
		}
		covered := writes.Load() // a flush covers what was written before it began
		time.Sleep(2 * time.Millisecond)
		flushes.Add(1)
		if durable.Load() < covered {
			durable.Store(covered)
		}
		running.Add(-1)
		return nil
	}
	const callers = 64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			mine := writes.Add(1)
			if err := g.Do(flush); err != nil {
				t.Errorf("Do = %v", err)
			}
			if d := durable.Load(); d < mine {
				t.Errorf("Do returned with write %d not covered (durable up to %d)", mine, d)
			}
		})
	}
	wg.Wait()
	if n := flushes.Load(); n < 1 || n >= callers {
		t.Errorf("%d flushes for %d concurrent callers, want sharing", n, callers)
	}
}

func TestGroupErrors(t *testing.T) {
	var g Group
	boom := errors.New("boom")
	if err := g.Do(func() error { return boom }); err != boom {
		t.Fatalf("failed flush: Do = %v, want %v", err, boom)
	}
	// A caller arriving after the failure gets a new flush of its own.
	if err := g.Do(func() error { return nil }); err != nil {
		t.Fatalf("later good flush: Do = %v, want nil", err)
	}

	// Callers waiting while a flush runs share the next one, and all see
	// its failure.
	release := make(chan struct{})
	started := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- g.Do(func() error { close(started); <-release; return nil })
	}()
	<-started
	var calls atomic.Int32
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			errs <- g.Do(func() error { calls.Add(1); return boom })
		})
	}
	for waiting := 0; waiting < 8; time.Sleep(time.Millisecond) {
		g.mu.Lock()
		waiting = g.waiting
		g.mu.Unlock()
	}
	close(release)
	wg.Wait()
	close(errs)
	if err := <-first; err != nil {
		t.Errorf("first caller: Do = %v, want nil", err)
	}
	for err := range errs {
		if err != boom {
			t.Errorf("waiting caller: Do = %v, want %v", err, boom)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d flushes for 8 waiting callers, want 1", n)
	}
}
