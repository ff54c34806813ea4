package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	// Every value falls in a bucket whose bounds hold it, bucket indexes
	// never decrease with the value, and a bucket is at most 1/32 of its
	// lower bound wide.
	vals := []int64{0, 1, 31, 32, 33, 63, 64, 65, 127, 128, 1000, 1 << 20, 1<<20 + 1, 1<<40 - 1, 1 << 40, 1<<62 + 12345}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		vals = append(vals, r.Int64N(1<<uint(r.IntN(62)+1)))
	}
	slices.Sort(vals)
	prev := -1
	for _, v := range vals {
		i := bucketOf(v)
		lo, hi := bucketBounds(i)
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d [%d, %d]", v, i, lo, hi)
		}
		if i < prev {
			t.Fatalf("value %d: bucket %d after bucket %d", v, i, prev)
		}
		if lo >= subBuckets && float64(hi-lo+1) > float64(lo)/subBuckets {
			t.Fatalf("bucket %d [%d, %d] wider than 1/%d of its start", i, lo, hi, subBuckets)
		}
		prev = i
	}
	// Buckets tile the number line: each starts right after the last ends.
	for i := 1; i < 40*subBuckets; i++ {
		_, prevHi := bucketBounds(i - 1)
		lo, _ := bucketBounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, bucket %d ends at %d", i, lo, i-1, prevHi)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	t.Run("empty", func(t *testing.T) {
		var h Histogram
		if h.Count() != 0 || h.Quantile(0.5) != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 {
			t.Errorf("empty histogram: count %d p50 %v max %v min %v mean %v", h.Count(), h.Quantile(0.5), h.Max(), h.Min(), h.Mean())
		}
	})
	t.Run("small values are exact", func(t *testing.T) {
		var h Histogram
		for v := 1; v <= 20; v++ {
			h.Record(time.Duration(v))
		}
		for _, c := range []struct {
			q    float64
			want time.Duration
		}{{0, 1}, {0.05, 1}, {0.5, 10}, {0.51, 11}, {0.9, 18}, {0.99, 20}, {1, 20}} {
			if got := h.Quantile(c.q); got != c.want {
				t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
			}
		}
	})
	t.Run("one value", func(t *testing.T) {
		var h Histogram
		h.Record(1234567 * time.Nanosecond)
		for _, q := range []float64{0, 0.5, 0.99, 1} {
			if got := h.Quantile(q); got != 1234567 {
				t.Errorf("Quantile(%v) = %v, want the value itself (clamped to min/max)", q, got)
			}
		}
	})
	t.Run("uniform milliseconds", func(t *testing.T) {
		// 1ms, 2ms, ..., 1000ms in shuffled order: the q-quantile by
		// nearest rank is ceil(q*1000) ms; the histogram may overstate it
		// by at most one bucket, 1/32.
		var h Histogram
		r := rand.New(rand.NewPCG(3, 4))
		for _, i := range r.Perm(1000) {
			h.Record(time.Duration(i+1) * time.Millisecond)
		}
		for _, c := range []struct {
			q    float64
			want time.Duration
		}{{0.5, 500 * time.Millisecond}, {0.9, 900 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.999, 999 * time.Millisecond}} {
			got := h.Quantile(c.q)
			if got < c.want || float64(got-c.want) > float64(c.want)/subBuckets {
				t.Errorf("Quantile(%v) = %v, want %v (+ at most 1/%d)", c.q, got, c.want, subBuckets)
			}
		}
		if h.Count() != 1000 || h.Min() != time.Millisecond || h.Max() != time.Second {
			t.Errorf("count %d min %v max %v", h.Count(), h.Min(), h.Max())
		}
		if h.Mean() != 500500*time.Microsecond {
			t.Errorf("mean %v, want 500.5ms", h.Mean())
		}
		if got := h.Quantile(1); got != time.Second {
			t.Errorf("Quantile(1) = %v, want the max exactly", got)
		}
	})
	t.Run("tail", func(t *testing.T) {
		// 990 fast requests and 10 slow ones: p99 is the last fast one,
		// p99.1 the first slow one.
		var h Histogram
		for range 990 {
			h.Record(2 * time.Millisecond)
		}
		for range 10 {
			h.Record(3 * time.Second)
		}
		if got := h.Quantile(0.99); got < 2*time.Millisecond || got > 2*time.Millisecond+2*time.Millisecond/subBuckets {
			t.Errorf("p99 = %v, want ~2ms", got)
		}
		if got := h.Quantile(0.991); got != 3*time.Second {
			t.Errorf("p99.1 = %v, want 3s", got)
		}
	})
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 5000 {
		d := time.Duration(r.Int64N(int64(time.Second)))
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{})
	if m.Count() != all.Count() || m.Min() != all.Min() || m.Max() != all.Max() {
		t.Fatalf("merged count/min/max %d %v %v, want %d %v %v", m.Count(), m.Min(), m.Max(), all.Count(), all.Min(), all.Max())
	}
	for _, q := range []float64{0, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
		if m.Quantile(q) != all.Quantile(q) {
			t.Errorf("Quantile(%v): merged %v, direct %v", q, m.Quantile(q), all.Quantile(q))
		}
	}
	if !slices.Equal(m.counts, all.counts) {
		t.Error("merged buckets differ from recording everything in one")
	}
}

func TestHistogramNegative(t *testing.T) {
	var h Histogram
	h.Record(-time.Second)
	if h.Min() != 0 || h.Max() != 0 || h.Count() != 1 {
		t.Errorf("negative duration: min %v max %v count %d, want counted as 0", h.Min(), h.Max(), h.Count())
	}
}
