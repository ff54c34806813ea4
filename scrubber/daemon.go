package scrubber

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Daemon runs a pass every interval and serves the scrubber's status and
// metrics over HTTP.
type Daemon struct {
	s        *Scrubber
	interval time.Duration
	reg      *prometheus.Registry

	mu      sync.Mutex
	next    time.Time
	lastErr string
}

// NewDaemon returns a Daemon running s's passes every interval (measured
// from the start of one pass to the start of the next; a pass that takes
// longer is followed at once), on the clock of s's Config (Now, After).
func NewDaemon(s *Scrubber, interval time.Duration) *Daemon {
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	return &Daemon{s: s, interval: interval, reg: reg}
}

// Run runs passes until ctx is done. It returns nil when ctx ends. The
// first pass is the unfinished one of an earlier process, if any, or the
// one due an interval after the start of the last finished pass: a
// restart neither skips a pass nor starts one early (over a million
// objects a pass takes most of an hour on a small machine). A last pass
// that ran under another map, or left work, is followed at once.
//
// A newer cluster map (SetMap) interrupts the pass in flight, which then
// resumes from its checkpoint under the new map, and a pass that ran
// partly under an older map is followed by another at once, so the
// rebalance after a change starts within moments and covers every
// object. Between passes, a new map starts one at once.
func (d *Daemon) Run(ctx context.Context) error {
	if next := d.firstPass(); d.s.now().Before(next) {
		d.mu.Lock()
		d.next = next
		d.mu.Unlock()
		if !d.wait(ctx, next) {
			return nil
		}
	}
	for {
		start := d.s.now()
		pctx, cancel := context.WithCancelCause(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			select {
			case <-d.s.newMap:
				cancel(errNewMap)
			case <-pctx.Done():
			}
		}()
		rep, err := d.s.Run(pctx)
		newMap := errors.Is(context.Cause(pctx), errNewMap)
		cancel(nil)
		<-watched
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && newMap {
			d.s.log.Info("scrub: new cluster map; resuming the pass under it", "epoch", d.s.Map().Epoch)
			continue
		}
		d.mu.Lock()
		d.lastErr = ""
		if err != nil {
			d.lastErr = err.Error()
			d.s.log.Error("scrub: pass failed", "err", err)
		} else if !rep.Healthy() {
			d.s.log.Warn("scrub: pass left work", "unrecoverable", rep.UnrecoverableCount, "incomplete", rep.IncompleteCount)
		}
		d.next = start.Add(d.interval)
		if newMap || (err == nil && rep.MapChanged) {
			// Objects were checked under an older map: go over them again.
			d.next = d.s.now()
		}
		next := d.next
		d.mu.Unlock()
		if !d.wait(ctx, next) {
			return nil
		}
	}
}

// wait waits until next or a new map, and reports false if ctx ended
// first.
func (d *Daemon) wait(ctx context.Context, next time.Time) bool {
	select {
	case <-ctx.Done():
		return false
	case <-d.s.cfg.After(next.Sub(d.s.now())):
	case <-d.s.newMap:
	}
	return true
}

// firstPass is when Run starts its first pass (see Run); the zero time
// is at once.
func (d *Daemon) firstPass() time.Time {
	last := d.s.LastReport()
	if last == nil || last.DryRun || d.s.passPending() || last.MapChanged || last.MapEpoch != d.s.Map().Epoch || !last.Healthy() {
		return time.Time{}
	}
	return last.Started.Add(d.interval)
}

// Status is the answer of GET /status.
type Status struct {
	Running         bool      `json:"running"`
	Progress        *Progress `json:"progress,omitempty"`
	RepairsInFlight int64     `json:"repairs_in_flight"`
	MovesInFlight   int64     `json:"moves_in_flight"`
	// MapEpoch is the epoch of the newest cluster map the scrubber knows.
	MapEpoch        uint64    `json:"map_epoch"`
	IntervalSeconds float64   `json:"interval_seconds"`
	NextPass        time.Time `json:"next_pass,omitzero"`
	LastError       string    `json:"last_error,omitempty"`
	// Redundancy counts the objects of the last pass by healthy shards
	// once it was done with them: n, n-1, ..., d, below d.
	Redundancy              []Level `json:"redundancy"`
	OldestUnverifiedSeconds float64 `json:"oldest_unverified_seconds"`
	LastPass                *Report `json:"last_pass,omitempty"`
}

// Status returns what GET /status serves.
func (d *Daemon) Status() Status {
	st := d.s.Stats()
	out := Status{
		Running:                 st.Running,
		RepairsInFlight:         st.RepairsInFlight,
		MovesInFlight:           st.MovesInFlight,
		IntervalSeconds:         d.interval.Seconds(),
		OldestUnverifiedSeconds: d.s.OldestUnverified().Seconds(),
		LastPass:                d.s.LastReport(),
	}
	if st.Running {
		p := d.s.Progress()
		out.Progress = &p
	}
	d.mu.Lock()
	out.NextPass, out.LastError = d.next, d.lastErr
	d.mu.Unlock()
	counts := map[int]int64{}
	if out.LastPass != nil {
		counts = out.LastPass.RedundancyAfter
	}
	m := d.s.Map()
	out.MapEpoch = m.Epoch
	out.Redundancy = Levels(counts, m.DataShards, m.N())
	return out
}

// Handler serves GET /status (JSON), GET /metrics (Prometheus) and GET
// /healthz.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		body, err := json.MarshalIndent(d.Status(), "", "  ")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(body, '\n'))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	return mux
}
