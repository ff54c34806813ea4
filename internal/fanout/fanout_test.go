package fanout

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestEach(t *testing.T) {
	tests := []struct {
		name     string
		n, limit int
		wantMax  int // most calls seen running at once, at most
	}{
		{"none", 0, 0, 0},
		{"unlimited", 8, 0, 8},
		{"limited", 8, 3, 3},
		{"one at a time", 5, 1, 1},
		{"limit above n", 2, 10, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var running, most atomic.Int64
			var mu sync.Mutex
			seen := make(map[int]int)
			Each(tt.n, tt.limit, func(i int) {
				r := running.Add(1)
				for {
					m := most.Load()
					if r <= m || most.CompareAndSwap(m, r) {
						break
					}
				}
				mu.Lock()
				seen[i]++
				mu.Unlock()
				running.Add(-1)
			})
			if len(seen) != tt.n {
				t.Fatalf("called for %d indexes, want %d", len(seen), tt.n)
			}
			for i, k := range seen {
				if k != 1 || i < 0 || i >= tt.n {
					t.Fatalf("index %d called %d times", i, k)
				}
			}
			if most.Load() > int64(tt.wantMax) {
				t.Fatalf("%d calls ran at once, limit %d", most.Load(), tt.wantMax)
			}
		})
	}
}
