package console

import (
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Sample is a reading of cumulative request counters: everything since the
// process started, never reset. Rates and percentiles come from the
// difference of two samples, so any source of monotonic counters (this
// package's Counter, or a Prometheus histogram read back) can feed the
// console.
type Sample struct {
	At       time.Time
	Requests uint64 // requests answered
	Errors   uint64 // of them, answered with a 5xx status
	// Buckets counts requests by latency: Buckets[i] took at most
	// Bounds[i] (cumulative over i, as Prometheus buckets are). Requests
	// slower than the last bound count only in Requests.
	Bounds  []time.Duration
	Buckets []uint64
}

// latencyBounds are the Counter's bucket bounds: roughly 1-2-5 steps from
// a millisecond to half a minute, enough resolution for a p99 on a chart.
var latencyBounds = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
}

// Counter counts the requests of an http.Handler by outcome and latency.
// It is the minimal source of Samples for a gateway that exports no
// request metrics of its own. The zero value is not ready: use NewCounter.
// It is safe for concurrent use.
type Counter struct {
	now      func() time.Time
	requests atomic.Uint64
	errors   atomic.Uint64
	buckets  []atomic.Uint64 // not cumulative; Sample sums them
}

// NewCounter returns a Counter reading time from now (nil: time.Now).
func NewCounter(now func() time.Time) *Counter {
	if now == nil {
		now = time.Now
	}
	return &Counter{now: now, buckets: make([]atomic.Uint64, len(latencyBounds))}
}

// Wrap returns next with every request counted once it returns. The
// latency is the handler's whole run, so a streamed GET counts its body.
func (c *Counter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := c.now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			c.observe(sw.status(), c.now().Sub(start))
		}()
		next.ServeHTTP(sw, r)
	})
}

func (c *Counter) observe(status int, d time.Duration) {
	c.requests.Add(1)
	if status >= 500 {
		c.errors.Add(1)
	}
	for i, b := range latencyBounds {
		if d <= b {
			c.buckets[i].Add(1)
			return
		}
	}
}

// Sample reads the counters.
func (c *Counter) Sample() Sample {
	s := Sample{At: c.now(), Bounds: latencyBounds, Buckets: make([]uint64, len(latencyBounds))}
	var sum uint64
	for i := range c.buckets {
		sum += c.buckets[i].Load()
		s.Buckets[i] = sum
	}
	// Read last: a request counted in a bucket is then counted here too.
	s.Errors = c.errors.Load()
	s.Requests = c.requests.Load()
	return s
}

// statusWriter remembers the status an answer was sent with. Unwrap lets
// http.ResponseController reach the connection beneath (the gateway sets
// per-read deadlines through it), and Flush keeps streamed answers
// streaming.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// status is the status sent, 200 if the handler wrote nothing (as
// net/http answers then).
func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Point is one interval of a rate chart: what happened between two
// samples.
type Point struct {
	At     time.Time // the end of the interval
	Rate   float64   // requests per second
	Errors float64   // 5xx answers per second
	P99    time.Duration
	// P99Known is false when the interval had no requests.
	P99Known bool
}

// ring keeps the last samples, oldest first, overwriting the oldest once
// full. It is safe for concurrent use.
type ring struct {
	mu      sync.Mutex
	samples []Sample
	next    int
	full    bool
}

func newRing(n int) *ring { return &ring{samples: make([]Sample, n)} }

func (r *ring) add(s Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples[r.next] = s
	r.next = (r.next + 1) % len(r.samples)
	if r.next == 0 {
		r.full = true
	}
}

// points returns the intervals between consecutive samples, oldest first.
func (r *ring) points() []Point {
	r.mu.Lock()
	var ordered []Sample
	if r.full {
		ordered = append(ordered, r.samples[r.next:]...)
	}
	ordered = append(ordered, r.samples[:r.next]...)
	r.mu.Unlock()
	var out []Point
	for i := 1; i < len(ordered); i++ {
		out = append(out, between(ordered[i-1], ordered[i]))
	}
	return out
}

// between is the interval from a to b. Counters that went backwards (a
// source that restarted) count as a fresh start.
func between(a, b Sample) Point {
	p := Point{At: b.At}
	secs := b.At.Sub(a.At).Seconds()
	if secs <= 0 {
		return p
	}
	reqs, errs := delta(a.Requests, b.Requests), delta(a.Errors, b.Errors)
	p.Rate, p.Errors = float64(reqs)/secs, float64(errs)/secs
	if reqs == 0 {
		return p
	}
	var counts []uint64
	if len(a.Buckets) == len(b.Buckets) {
		for i := range b.Buckets {
			counts = append(counts, delta(a.Buckets[i], b.Buckets[i]))
		}
	} else {
		counts = b.Buckets
	}
	p.P99, p.P99Known = quantile(0.99, reqs, b.Bounds, counts), true
	return p
}

func delta(a, b uint64) uint64 {
	if b < a {
		return b
	}
	return b - a
}

// quantile estimates the q-quantile of total observations from cumulative
// bucket counts, interpolating linearly inside the bucket that holds it
// (as Prometheus's histogram_quantile does). Observations beyond the last
// bound are reported as that bound: the chart then shows "at least".
func quantile(q float64, total uint64, bounds []time.Duration, cum []uint64) time.Duration {
	if total == 0 || len(bounds) == 0 || len(cum) != len(bounds) {
		return 0
	}
	rank := q * float64(total)
	var lo time.Duration
	var below uint64
	for i, b := range bounds {
		if float64(cum[i]) >= rank {
			in := cum[i] - below
			if in == 0 {
				return b
			}
			frac := (rank - float64(below)) / float64(in)
			return lo + time.Duration(math.Round(frac*float64(b-lo)))
		}
		lo, below = b, cum[i]
	}
	return bounds[len(bounds)-1]
}
