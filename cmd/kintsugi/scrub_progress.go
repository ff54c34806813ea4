package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/kintsugi-store/kintsugi/scrubber"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// isTerminal reports whether w is a terminal, where a redrawn bar beats a
// stream of log records.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressPrinter shows a running pass: a redrawn bar with an ETA on a
// terminal, or a structured log line every interval. The scrubber calls
// update from its workers; drawing happens on a ticker.
type progressPrinter struct {
	env      *environ
	mode     string
	every    time.Duration
	bar      *progressbar.ProgressBar // mode "bar"
	mu       sync.Mutex
	p        scrubber.Progress
	changed  bool
	started  time.Time
	startObj int64 // objects already checked when this run started (a resumed pass)
	startB   int64 // and shard bytes verified
	have     bool
}

func newProgressPrinter(env *environ, mode string, every time.Duration) *progressPrinter {
	return &progressPrinter{env: env, mode: mode, every: every}
}

func (pp *progressPrinter) update(p scrubber.Progress) {
	pp.mu.Lock()
	if !pp.have {
		pp.have, pp.startObj, pp.startB = true, p.Objects, p.Bytes
	}
	pp.p, pp.changed = p, true
	pp.mu.Unlock()
}

// start begins drawing and returns the function that stops it.
func (pp *progressPrinter) start() func() {
	if pp.mode == "none" {
		return func() {}
	}
	pp.started = time.Now()
	every := pp.every
	if pp.mode == "bar" {
		every = 200 * time.Millisecond
		// The bar's own time prediction is off: it would count the
		// objects of a resumed pass as checked in this run's first
		// second, and the walk's estimate is no deadline for the phases
		// after it. The ETA computed in draw goes in the description.
		pp.bar = progressbar.NewOptions64(1,
			progressbar.OptionSetWriter(pp.env.stderr),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionShowDescriptionAtLineEnd(),
		)
	}
	t := time.NewTicker(every)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				pp.draw(false)
			}
		}
	})
	return func() {
		t.Stop()
		close(quit)
		wg.Wait()
		if pp.mode == "bar" && pp.have {
			pp.draw(true)
			fmt.Fprintln(pp.env.stderr)
		}
	}
}

// draw shows the latest progress; final is the last call, after the pass.
func (pp *progressPrinter) draw(final bool) {
	pp.mu.Lock()
	p, changed := pp.p, pp.changed
	pp.changed = false
	startObj, startB := pp.startObj, pp.startB
	pp.mu.Unlock()
	if p.Phase == "" {
		return
	}
	elapsed := time.Since(pp.started)
	rate := float64(p.Bytes-startB) / max(elapsed.Seconds(), 1e-3) / 1e6
	eta := "?"
	if done := p.Objects - startObj; done > 0 && p.Estimated > p.Objects && p.Phase == scrubber.PhaseWalk {
		left := time.Duration(float64(elapsed) / float64(done) * float64(p.Estimated-p.Objects))
		eta = left.Round(time.Second).String()
	} else if p.Estimated > 0 && p.Objects >= p.Estimated {
		eta = "0s"
	}
	if pp.mode == "log" {
		if !changed {
			return
		}
		pp.env.logger.Info("scrub progress", "phase", p.Phase, "bucket", p.Bucket, "key", p.Key,
			"objects", p.Objects, "estimated", p.Estimated, "shard_bytes", p.Bytes, "rebuilt", p.Rebuilt,
			"moves_planned", p.MovesPlanned, "moves_done", p.MovesDone, "bytes_moved", p.BytesMoved,
			"queue", p.Queue, "eta", eta)
		return
	}
	moves := ""
	if p.MovesPlanned > 0 {
		moves = fmt.Sprintf("  moved %d/%d", p.MovesDone, p.MovesPlanned)
	}
	// A bar at its maximum is finished for good, and the estimate can be
	// short, so it reaches the maximum only when the pass has ended.
	total := max(p.Estimated, p.Objects+1)
	if final {
		total = max(p.Estimated, p.Objects, 1)
	}
	pp.bar.ChangeMax64(total)
	pp.bar.Describe(fmt.Sprintf("objects  %.1f MB/s  rebuilt %d%s  %s  ETA %s", rate, p.Rebuilt, moves, p.Phase, eta))
	pp.bar.Set64(p.Objects)
}
