// Package clock gives a process its wall clock. Every kintsugi process
// takes it from FromEnv, so that KINTSUGI_CLOCK_OFFSET can shift one
// process's clock against the others': a testing knob that lets processes
// on one machine disagree about the time as hosts whose clocks drift do,
// and so shows what clock skew does to the object protocol (version names
// are drawn from the clock).
//
// It holds no global state and must never: the clock is a func handed to
// each Config's Now (and a timer func to its After, where a Config waits
// on the clock). Every is the loop of a periodic background task. Manual
// is a clock for tests, moved by hand, whose timers (After) fire when it
// passes them, so that tests drive TTLs, heartbeats and schedules instead
// of sleeping through them.
package clock

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// EnvOffset names the environment variable FromEnv reads: a Go duration
// ("-10s", "7s", "1m30s") added to the wall clock.
const EnvOffset = "KINTSUGI_CLOCK_OFFSET"

// FromEnv returns the process's clock: time.Now, shifted by the duration
// in getenv(EnvOffset) when that is set and not zero. An unparsable value
// is an error, so that a mistyped offset never silently runs a test with
// synchronised clocks.
func FromEnv(getenv func(string) string) (func() time.Time, error) {
	s := getenv(EnvOffset)
	if s == "" {
		return time.Now, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: want a duration such as -10s or 7s: %w", EnvOffset, s, err)
	}
	return Offset(d), nil
}

// Offset returns a clock that runs d ahead of time.Now (behind for a
// negative d). Durations between two of its readings are time.Now's: the
// offset shifts every reading alike.
func Offset(d time.Duration) func() time.Time {
	if d == 0 {
		return time.Now
	}
	return func() time.Time { return time.Now().Add(d) }
}

// Every calls f every d until ctx is done: the loop of a background
// task that polls on a period. It waits with after (nil: time.After),
// first d from now and then d from the end of each call, so a call that
// overruns delays the next instead of queueing ticks. A manual clock's
// After lets a test run the task on cue.
func Every(ctx context.Context, after func(time.Duration) <-chan time.Time, d time.Duration, f func()) {
	if after == nil {
		after = time.After
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-after(d):
			f()
		}
	}
}

// Manual is a clock that moves only when told to, for tests that drive
// TTLs and timers instead of sleeping through them. It is safe for
// concurrent use; the zero value reads the zero time.
type Manual struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	changed *sync.Cond // signalled when waiters grows; lazily made
}

type waiter struct {
	at time.Time
	c  chan time.Time
}

// NewManual returns a Manual clock reading start.
func NewManual(start time.Time) *Manual { return &Manual{now: start} }

// Now returns the clock's time. Pass the method value as a Config's Now.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Advance moves the clock d forward and fires every After channel whose
// time has come.
func (m *Manual) Advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = m.now.Add(d)
	kept := m.waiters[:0]
	for _, w := range m.waiters {
		if w.at.After(m.now) {
			kept = append(kept, w)
			continue
		}
		w.c <- m.now // buffered: never blocks
	}
	clear(m.waiters[len(kept):])
	m.waiters = kept
}

// After is time.After on this clock: the channel receives the clock's time
// once Advance has moved it d on. A d of zero or less fires at once. Pass
// the method value as a Config's After.
func (m *Manual) After(d time.Duration) <-chan time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := make(chan time.Time, 1)
	if d <= 0 {
		c <- m.now
		return c
	}
	m.waiters = append(m.waiters, waiter{at: m.now.Add(d), c: c})
	m.cond().Broadcast()
	return c
}

// BlockUntil waits until n After channels are pending, so that a test
// advances the clock only once the code under test waits on it.
// Abandoned channels (a select that took another case) stay pending until
// their time comes.
func (m *Manual) BlockUntil(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.waiters) < n {
		m.cond().Wait()
	}
}

// Waiters returns how many After channels are pending.
func (m *Manual) Waiters() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.waiters)
}

// cond returns m's condition variable. REQUIRES: m.mu held.
func (m *Manual) cond() *sync.Cond {
	if m.changed == nil {
		m.changed = sync.NewCond(&m.mu)
	}
	return m.changed
}
