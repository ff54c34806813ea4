package main

import (
	"bytes"
	"context"
	"errors"
	"math"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestShouldRelease(t *testing.T) {
	prev := heapStats{allocs: 1000 * mib}
	tests := []struct {
		name string
		cur  heapStats
		want bool
	}{
		{"quiet with free heap", heapStats{allocs: 1001 * mib, free: 40 * mib, objects: 90 * mib, live: 90 * mib}, true},
		{"quiet with garbage", heapStats{allocs: 1001 * mib, free: 0, objects: 130 * mib, live: 90 * mib}, true},
		{"quiet, free and garbage add up", heapStats{allocs: 1000 * mib, free: 8 * mib, objects: 98 * mib, live: 90 * mib}, true},
		{"quiet, little to return", heapStats{allocs: 1002 * mib, free: 4 * mib, objects: 100 * mib, live: 90 * mib}, false},
		{"quiet, objects below last live", heapStats{allocs: 1000 * mib, free: 4 * mib, objects: 60 * mib, live: 90 * mib}, false},
		{"busy", heapStats{allocs: 1016 * mib, free: 400 * mib, objects: 300 * mib, live: 90 * mib}, false},
		{"quiet, just under the bound", heapStats{allocs: 1016*mib - 1, free: 16 * mib}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shouldRelease(prev, tt.cur); got != tt.want {
				t.Errorf("shouldRelease(%+v, %+v) = %v, want %v", prev, tt.cur, got, tt.want)
			}
		})
	}
}

// TestReleaseOnTicks: the loop releases memory after quiet periods with
// something to return, not after busy ones or ones with nothing to
// return, and stops with its context.
func TestReleaseOnTicks(t *testing.T) {
	// The heap as read at each tick (and right after a release).
	script := []heapStats{
		{},                                     // before the first tick
		{allocs: 10 * mib, free: 64 * mib},     // tick 1: quiet, 64 MiB free: release
		{allocs: 10 * mib},                     //   after the release
		{allocs: 500 * mib, free: 64 * mib},    // tick 2: busy
		{allocs: 501 * mib, free: 1 * mib},     // tick 3: quiet, nothing to return
		{allocs: 502 * mib, objects: 90 * mib}, // tick 4: quiet, 90 MiB of garbage: release
		{allocs: 502 * mib},                    //   after the release
		{allocs: 503 * mib},                    // tick 5: quiet, nothing
	}
	var mu sync.Mutex
	next := 0
	var releasedAfter []int // index of the read each release followed
	read := func() heapStats {
		mu.Lock()
		defer mu.Unlock()
		st := script[min(next, len(script)-1)]
		next++
		return st
	}
	release := func() {
		mu.Lock()
		defer mu.Unlock()
		releasedAfter = append(releasedAfter, next-1)
	}
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		releaseOnTicks(ctx, ticks, read, release)
	}()
	for range 5 {
		ticks <- time.Now()
	}
	// An unbuffered send returns when the loop takes the tick; one more
	// makes sure the fifth was handled.
	ticks <- time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("releaseOnTicks did not return after its context ended")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []int{1, 5}; !slices.Equal(releasedAfter, want) {
		t.Errorf("released after reads %v, want %v", releasedAfter, want)
	}
}

// TestReleaseIdleMemoryStops: the real loop ends with its context.
func TestReleaseIdleMemoryStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		releaseIdleMemory(ctx, time.Millisecond)
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("releaseIdleMemory did not return after its context ended")
	}
}

func TestSetMemoryLimit(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(orig) })
	tests := []struct {
		name       string
		gomemlimit string
		limit      int64
		want       int64
	}{
		{"flag", "", 256 * mib, 256 * mib},
		{"zero leaves the runtime's", "", 0, math.MaxInt64},
		{"GOMEMLIMIT wins", "1GiB", 256 * mib, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			env := scrubEnv(&bytes.Buffer{}, &bytes.Buffer{}, map[string]string{"GOMEMLIMIT": tt.gomemlimit})
			setMemoryLimit(env, tt.limit)
			if got := debug.SetMemoryLimit(-1); got != tt.want {
				t.Errorf("memory limit %d, want %d", got, tt.want)
			}
		})
	}
}

func TestDevRefusesBadMemoryAndProfileFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--memory-limit", "lots"}, "--memory-limit"},
		{[]string{"--memory-limit", "-1MiB"}, "--memory-limit"},
		{[]string{"--memory-limit", "0", "--pprof", "0.0.0.0:0"}, "want a loopback address"},
		{[]string{"--memory-limit", "0", "--pprof", "localhost"}, "--pprof localhost"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			env := scrubEnv(&out, &errb, nil)
			args := append([]string{"--data", t.TempDir()}, tt.args...)
			err := runDev(context.Background(), env, args)
			var ee exitError
			if !errors.As(err, &ee) || ee.code != exitUsage {
				t.Fatalf("runDev(%q) = %v, want a usage error", tt.args, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}
