package bench

import (
	"sync"
	"time"
)

// maxErrorSamples is how many distinct error messages a report keeps.
const maxErrorSamples = 5

// outcome is the result of one operation.
type outcome struct {
	op      Op
	start   time.Time
	end     time.Time
	bytes   int64 // payload bytes moved (0 for list and delete)
	keys    int64 // keys returned (list)
	err     error // why the request failed, or how the body differed
	corrupt bool  // the request succeeded but the body was not what was written
}

// recorder accumulates the outcomes of the measured phase. Operations that
// started before the phase began are not its business (warm-up). It is safe
// for concurrent use; one short critical section per operation costs
// nothing next to an HTTP request.
type recorder struct {
	start time.Time // of the measured phase

	mu      sync.Mutex
	ops     [numOps]OpStats
	last    time.Time // latest end of a recorded operation
	seconds []*second // by completion second since start
	errs    []string  // first distinct error messages
}

// second is the activity of one second of the measured phase.
type second struct {
	ops, bytes, errors int64
	lat                Histogram
}

func newRecorder(start time.Time) *recorder {
	return &recorder{start: start, last: start}
}

// add records o if it started in the measured phase; it reports whether it
// did.
func (r *recorder) add(o outcome) bool {
	if o.start.Before(r.start) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if o.end.After(r.last) {
		r.last = o.end
	}
	s := r.second(o.end)
	st := &r.ops[o.op]
	switch {
	case o.corrupt:
		st.VerifyFailures++
		s.errors++
		r.noteError(o.err.Error())
	case o.err != nil:
		st.Errors++
		s.errors++
		r.noteError(o.err.Error())
	default:
		d := o.end.Sub(o.start)
		st.Objects++
		st.Bytes += o.bytes
		st.Keys += o.keys
		st.Latency.Record(d)
		s.ops++
		s.bytes += o.bytes
		s.lat.Record(d)
	}
	return true
}

// second returns the timeline slot for t, growing the timeline.
func (r *recorder) second(t time.Time) *second {
	i := max(int(t.Sub(r.start)/time.Second), 0)
	for len(r.seconds) <= i {
		r.seconds = append(r.seconds, &second{})
	}
	return r.seconds[i]
}

func (r *recorder) noteError(msg string) {
	if len(r.errs) >= maxErrorSamples {
		return
	}
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	for _, e := range r.errs {
		if e == msg {
			return
		}
	}
	r.errs = append(r.errs, msg)
}

// snapshot returns the totals so far and the last complete second.
func (r *recorder) snapshot(now time.Time) Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := Progress{Elapsed: now.Sub(r.start)}
	var total OpStats
	for i := range r.ops {
		total.add(&r.ops[i])
	}
	p.Objects, p.Bytes, p.Errors, p.VerifyFailures = total.Objects, total.Bytes, total.Errors, total.VerifyFailures
	if i := int(now.Sub(r.start)/time.Second) - 1; i >= 0 && i < len(r.seconds) {
		s := r.seconds[i]
		p.LastSecond = Second{Objects: s.ops, Bytes: s.bytes, Errors: s.errors, P99: s.lat.Quantile(0.99)}
	}
	return p
}

// report fills in the statistics of rep.
func (r *recorder) report(rep *Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep.Elapsed = r.last.Sub(r.start)
	for i := range r.ops {
		st := r.ops[i]
		if st.Objects+st.Errors+st.VerifyFailures == 0 {
			continue
		}
		st.Op = Op(i).String()
		rep.Ops = append(rep.Ops, st)
		rep.Total.add(&st)
	}
	rep.Total.Op = rep.Workload
	rep.Timeline = make([]Second, len(r.seconds))
	for i, s := range r.seconds {
		rep.Timeline[i] = Second{Objects: s.ops, Bytes: s.bytes, Errors: s.errors, P99: s.lat.Quantile(0.99)}
	}
	rep.ErrorSamples = append([]string(nil), r.errs...)
}
