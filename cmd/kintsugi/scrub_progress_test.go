package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/scrubber"
)

func TestProgressPrinter(t *testing.T) {
	walk := scrubber.Progress{Phase: scrubber.PhaseWalk, Objects: 40, Estimated: 100, Rebuilt: 2, MovesPlanned: 4, MovesDone: 1}
	// The estimate was short: the pass checked more than it said.
	// In log mode it is not logged: log lines are the interval's.
	done := scrubber.Progress{Phase: scrubber.PhaseWalk, Objects: 120, Estimated: 100, Rebuilt: 3}
	tests := []struct {
		mode       string
		mid, final []string // in stderr after the first draw, and after stop
		not        []string // in neither
	}{
		{"bar", []string{" 40% |████████████                  | (40/100) objects ", "rebuilt 2  moved 1/4  walk  ETA "},
			[]string{"100% |██████████████████████████████| (120/120) objects ", "rebuilt 3  walk  ETA 0s"}, []string{"level=INFO", "(120/100)"}},
		{"log", []string{"scrub progress", "phase=walk", "objects=40", "estimated=100", "moves_done=1"},
			nil, []string{"|", "/100", "objects=120"}},
		{"none", nil, nil, []string{"40", "scrub progress"}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			var errb bytes.Buffer
			env := &environ{stderr: &errb, logger: slog.New(slog.NewTextHandler(&errb, nil))}
			pp := newProgressPrinter(env, tt.mode, time.Hour)
			stop := pp.start()
			pp.update(scrubber.Progress{Phase: scrubber.PhaseWalk, Objects: 10, Estimated: 100})
			pp.update(walk)
			if tt.mode != "none" {
				pp.draw(false)
			}
			mid := errb.String()
			pp.update(done)
			stop()
			all := errb.String()
			for _, s := range tt.mid {
				if !strings.Contains(mid, s) {
					t.Errorf("after a draw, stderr lacks %q:\n%q", s, mid)
				}
			}
			for _, s := range tt.final {
				if !strings.Contains(all[len(mid):], s) {
					t.Errorf("after stop, stderr lacks %q:\n%q", s, all)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(all, s) {
					t.Errorf("stderr has %q:\n%q", s, all)
				}
			}
		})
	}
}
