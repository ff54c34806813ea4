package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

var updateMetrics = flag.Bool("update-metrics", false, "rewrite testdata/metrics.txt from the metrics the processes expose")

// goldenMetrics is the list of metric names, with their types, that
// dashboards and alerts may use: a rename must show up in review.
const goldenMetrics = "testdata/metrics.txt"

// TestMetricNames starts a storage node, a gateway and a scrubber daemon
// in this process, each with its metrics listener, does a PUT and a GET,
// lets the scrubber finish a pass, and compares every kintsugi_* metric
// they expose with testdata/metrics.txt (rewrite it with -update-metrics
// after a deliberate change, and check deploy/ still uses the names).
func TestMetricNames(t *testing.T) {
	got := scrapeAll(t)
	if *updateMetrics {
		var b strings.Builder
		b.WriteString("# Metric names and types exposed by gateway, storagenode and scrubber.\n")
		b.WriteString("# Regenerate: go test ./cmd/kintsugi -run '^TestMetricNames$' -update-metrics\n")
		for _, name := range slices.Sorted(maps.Keys(got)) {
			fmt.Fprintf(&b, "%s %s\n", name, got[name])
		}
		if err := os.WriteFile(goldenMetrics, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := readGoldenMetrics(t)
	for name, typ := range want {
		switch g, ok := got[name]; {
		case !ok:
			t.Errorf("metric %s (%s) is in %s but no process exposes it", name, typ, goldenMetrics)
		case g != typ:
			t.Errorf("metric %s is a %s, %s says %s", name, g, goldenMetrics, typ)
		}
	}
	for name, typ := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("metric %s (%s) is exposed but not in %s (run with -update-metrics if it is meant)", name, typ, goldenMetrics)
		}
	}
}

// readGoldenMetrics returns the golden list: metric name to type.
func readGoldenMetrics(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(goldenMetrics)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name, typ, ok := strings.Cut(l, " ")
		if !ok {
			t.Fatalf("%s: bad line %q", goldenMetrics, l)
		}
		out[name] = typ
	}
	return out
}

// scrapeAll runs the processes and returns the kintsugi_* metric
// families they expose, by name, with their types.
func scrapeAll(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	vars := map[string]string{
		"KINTSUGI_CLUSTER_SECRET": "metrics-test-secret",
		"KINTSUGI_ACCESS_KEY":     "metrics-ak",
		"KINTSUGI_SECRET_KEY":     "metrics-secret-key",
	}
	start := func(args ...string) map[string]string {
		t.Helper()
		lines := &lineWriter{ch: make(chan string, 16)}
		env := &environ{stdout: lines, stderr: io.Discard, getenv: func(k string) string { return vars[k] }, logger: slog.New(slog.DiscardHandler)}
		wg.Go(func() {
			if code := run(ctx, env, args); code != 0 {
				t.Errorf("%v: exit %d", args, code)
			}
		})
		for {
			var l string
			select {
			case l = <-lines.ch:
			case <-time.After(30 * time.Second):
				t.Fatalf("%v: no ready line", args)
			}
			if !strings.HasPrefix(l, "ready ") {
				continue
			}
			kv := map[string]string{}
			for _, f := range strings.Fields(l) {
				if k, v, ok := strings.Cut(f, "="); ok {
					kv[k] = v
				}
			}
			return kv
		}
	}
	node := start("storagenode", "--id", "n1", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data", filepath.Join(dir, "n1"))
	cluster := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(cluster, []byte("data_shards: 1\nparity_shards: 0\nnodes:\n  - {id: n1, addr: "+node["addr"]+", zone: z1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := start("gateway", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--cluster", cluster)

	cl := s3.New(s3.Options{
		BaseEndpoint: aws.String("http://" + gw["addr"]), Region: "us-east-1", UsePathStyle: true,
		Credentials:      credentials.NewStaticCredentialsProvider(vars["KINTSUGI_ACCESS_KEY"], vars["KINTSUGI_SECRET_KEY"], ""),
		RetryMaxAttempts: 1, HTTPClient: &http.Client{Timeout: time.Minute},
	})
	if _, err := cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("metrics")}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("kintsugi"), 40000) // a shard file of its own
	if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("metrics"), Key: aws.String("k"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
	out, err := cl.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("metrics"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("GET: %d bytes, %v; want the %d bytes put", len(got), err, len(body))
	}

	scrub := start("scrubber", "--cluster", cluster, "--state", filepath.Join(dir, "scrubber"), "--listen", "127.0.0.1:0", "--interval", "1h")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(scrape(t, scrub["addr"]), "kintsugi_scrub_last_pass_end_timestamp_seconds ") {
		if time.Now().After(deadline) {
			t.Fatal("the scrubber finished no pass in 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	names := map[string]string{}
	for _, addr := range []string{node["metrics"], gw["metrics"], scrub["addr"]} {
		sc := bufio.NewScanner(strings.NewReader(scrape(t, addr)))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" && strings.HasPrefix(f[2], "kintsugi_") {
				names[f[2]] = f[3]
			}
		}
	}
	return names
}

// scrape returns the text of addr's /metrics.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics: %s, %v", addr, resp.Status, err)
	}
	return string(b)
}
