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
)

func TestDaemon(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	for i, key := range []string{"a", "b", "c"} {
		m := c.put("bk", key, testData(5000, uint64(i)))
		if key == "b" {
			c.flip(m, 3, 1)
		}
	}
	s := c.scrubber(func(cfg *Config) { cfg.StateDir = t.TempDir() })
	d := NewDaemon(s, 100*time.Millisecond)
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for deadline := time.Now().Add(20 * time.Second); s.Stats().PassesOK < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("no second pass: %+v", s.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
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
		st.OldestUnverifiedSeconds <= 0 || st.OldestUnverifiedSeconds > 20 {
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
	run := func(interval time.Duration, until func(*Scrubber, *Daemon) bool) (*Scrubber, *Daemon) {
		t.Helper()
		s := c.scrubber(func(cfg *Config) { cfg.StateDir = state })
		d := NewDaemon(s, interval)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		for deadline := time.Now().Add(10 * time.Second); !until(s, d); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("daemon (interval %v): condition not met after 10s: %+v", interval, d.Status())
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Daemon.Run = %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return s, d
	}
	passed := func(s *Scrubber, _ *Daemon) bool { return s.Stats().PassesOK >= 1 }

	first, _ := run(time.Hour, passed)
	started := first.LastReport().Started
	// Restarted with the same interval: the next pass waits for its hour.
	s, d := run(time.Hour, func(_ *Scrubber, d *Daemon) bool { return !d.Status().NextPass.IsZero() })
	if n := s.Stats().PassesOK; n != 0 {
		t.Errorf("restarted daemon ran %d passes at once; the last one started %v ago", n, time.Since(started))
	}
	if next := d.Status().NextPass; !next.Equal(started.Add(time.Hour)) {
		t.Errorf("next pass at %v, want an hour after the last start %v", next, started)
	}
	// Restarted with an interval already past: a pass at once.
	run(time.Millisecond, passed)
}
