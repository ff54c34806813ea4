package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestObjectPool(t *testing.T) {
	p := newObjectPool()
	for _, k := range []string{"a", "b", "c"} {
		p.add(entry{key: k, size: int64(len(k))})
	}
	p.add(entry{key: "b"}) // duplicates are ignored
	if d := p.sizes(); d != (SizeDist{1, 1}) {
		t.Errorf("sizes = %+v", d)
	}

	// Round robin visits every object once per round.
	var seen []string
	for range 6 {
		e, _ := p.next()
		seen = append(seen, e.key)
	}
	slices.Sort(seen)
	if !slices.Equal(seen, []string{"a", "a", "b", "b", "c", "c"}) {
		t.Errorf("next visited %q", seen)
	}

	// A busy object is never taken; once released it can be.
	r := rand.New(rand.NewPCG(1, 1))
	busy, _ := p.acquire(r)
	var taken []string
	for {
		e, ok := p.take(r)
		if !ok {
			break
		}
		taken = append(taken, e.key)
	}
	if len(taken) != 2 || slices.Contains(taken, busy.key) {
		t.Fatalf("took %q while %q was busy", taken, busy.key)
	}
	p.release(busy.key)
	if e, ok := p.take(r); !ok || e.key != busy.key {
		t.Errorf("after release: take = %q, %v", e.key, ok)
	}
	if _, ok := p.takeLast(); ok {
		t.Error("takeLast on an empty pool")
	}
	if _, ok := p.next(); ok {
		t.Error("next on an empty pool")
	}
}
