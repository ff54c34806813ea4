package scrubber

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/clock"
)

func TestDaemon(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	for i, key := range []string{"a", "b", "c"} {
		m := c.put("bk", key, testData(5000, uint64(i)))
		if key == "b" {
			c.flip(m, 3, 1)
		}
	}
	clk := clock.NewManual(time.Now())
	s := c.scrubber(func(cfg *Config) {
		cfg.StateDir = t.TempDir()
		cfg.Now, cfg.After = clk.Now, clk.After
	})
	const interval = 100 * time.Millisecond
	d := NewDaemon(s, interval)
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	// One pass, then the daemon waits out the interval; moved on by all
	// of it, the clock starts the second.
	clk.BlockUntil(1)
	if n := s.Stats().PassesOK; n != 1 {
		t.Fatalf("%d passes before the interval ran out, want 1", n)
	}
	clk.Advance(interval - time.Nanosecond)
	if n := clk.Waiters(); n != 1 {
		t.Fatalf("the pass timer fired before the interval was over (%d waiting)", n)
	}
	clk.Advance(time.Nanosecond)
	clk.BlockUntil(1)
	if n := s.Stats().PassesOK; n != 2 {
		t.Fatalf("%d passes after one interval, want 2", n)
	}
	clk.Advance(interval / 2) // the age of the oldest unverified shard
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Daemon.Run = %v", err)
	}

	get := func(path string) (string, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", path, resp.Status, b)
		}
		return resp.Header.Get("Content-Type"), string(b)
	}
	_, body := get("/status")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	want := []Level{{"6", 3}, {"5", 0}, {"4", 0}, {"below 4", 0}}
	if st.Running || st.LastPass == nil || !slices.Equal(st.Redundancy, want) || st.IntervalSeconds != 0.1 ||
		st.OldestUnverifiedSeconds != 0.05 {
		t.Errorf("status = %s", body)
	}
	// The first pass repaired b; the last one found it whole.
	if lp := st.LastPass; lp.ShardsRebuilt != 0 || lp.Objects != 3 {
		t.Errorf("last pass = %+v", lp)
	}

	ctype, metrics := get("/metrics")
	if !strings.HasPrefix(ctype, "text/plain") {
		t.Errorf("metrics Content-Type %q", ctype)
	}
	for _, line := range []string{
		"# TYPE kintsugi_scrub_shards_verified_total counter",
		"kintsugi_scrub_shards_corrupt_total 1",
		"kintsugi_scrub_shards_rebuilt_total 1",
		"kintsugi_scrub_shards_missing_total 0",
		`kintsugi_scrub_objects{redundancy="6"} 3`,
		`kintsugi_scrub_objects{redundancy="below 4"} 0`,
		"kintsugi_scrub_objects_unrecoverable 0",
		"kintsugi_scrub_repairs_in_flight 0",
		"kintsugi_scrub_running 0",
		"# TYPE kintsugi_scrub_oldest_unverified_seconds gauge",
		"# TYPE kintsugi_scrub_pass_duration_seconds gauge",
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, metrics)
		}
	}
	for _, prefix := range []string{"kintsugi_scrub_shards_verified_total ", `kintsugi_scrub_passes_total{result="ok"} `, "kintsugi_scrub_bytes_read_total "} {
		i := strings.Index(metrics, "\n"+prefix)
		if i < 0 || strings.HasPrefix(metrics[i+1+len(prefix):], "0\n") {
			t.Errorf("metric %q missing or zero", prefix)
		}
	}
	if _, body := get("/healthz"); body != "ok\n" {
		t.Errorf("healthz = %q", body)
	}
}

// TestDaemonRestartKeepsSchedule: a daemon restarted on the same state
// runs its next pass an interval after the start of the last one, not at
// once; with the interval already past, at once.
func TestDaemonRestartKeepsSchedule(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	c.put("bk", "a", testData(5000, 1))
	state := t.TempDir()
	clk := clock.NewManual(time.Now())
	// run runs a daemon on state until it waits for its next pass.
	run := func(interval time.Duration) (*Scrubber, *Daemon) {
		t.Helper()
		s := c.scrubber(func(cfg *Config) {
			cfg.StateDir = state
			cfg.Now, cfg.After = clk.Now, clk.After
		})
		d := NewDaemon(s, interval)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		clk.BlockUntil(1)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Daemon.Run = %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// The abandoned timer would fire at the next Advance: drain it.
		clk.Advance(time.Hour)
		return s, d
	}

	first, _ := run(time.Hour)
	if n := first.Stats().PassesOK; n != 1 {
		t.Fatalf("first daemon ran %d passes, want 1", n)
	}
	started := first.LastReport().Started
	// Restarted an hour on, with a two-hour interval: the next pass waits
	// until two hours after the last one started.
	s, d := run(2 * time.Hour)
	if n := s.Stats().PassesOK; n != 0 {
		t.Errorf("restarted daemon ran %d passes at once; the last one started %v ago", n, clk.Now().Sub(started))
	}
	if next := d.Status().NextPass; !next.Equal(started.Add(2 * time.Hour)) {
		t.Errorf("next pass at %v, want two hours after the last start %v", next, started)
	}
	// Restarted with an interval already past: a pass at once.
	if s, _ := run(time.Hour); s.Stats().PassesOK != 1 {
		t.Errorf("daemon past its interval ran %d passes at once, want 1", s.Stats().PassesOK)
	}
}
