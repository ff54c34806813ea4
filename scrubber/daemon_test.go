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
