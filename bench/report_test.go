package bench

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// testReport is a mixed run of 2.5 s: 100 PUTs of 1 MiB at 10 ms and 300
// GETs of 1 MiB at 2 ms, one failed GET and one that did not verify.
func testReport() *Report {
	start := time.Unix(1000, 0)
	rec := newRecorder(start)
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	for i := range 100 {
		t := at(float64(i) * 0.02)
		rec.add(outcome{op: OpPut, start: t, end: t.Add(10 * time.Millisecond), bytes: 1 << 20})
	}
	for i := range 300 {
		t := at(float64(i) * 0.008)
		rec.add(outcome{op: OpGet, start: t, end: t.Add(2 * time.Millisecond), bytes: 1 << 20})
	}
	rec.add(outcome{op: OpGet, start: at(1), end: at(1.1), err: errString("connection refused")})
	rec.add(outcome{op: OpGet, start: at(1), end: at(2.5), err: &MismatchError{Key: "k", Offset: 3, Size: 9, Got: -1}, corrupt: true})
	// Warm-up: started before the measured phase, not recorded.
	if rec.add(outcome{op: OpPut, start: at(-0.5), end: at(0.5), bytes: 1 << 20}) {
		panic("warm-up operation recorded")
	}
	rep := &Report{
		Workload: WorkloadMixed, Endpoint: "http://127.0.0.1:9000", Bucket: "b", Prefix: "p/",
		Concurrency: 8, Size: SizeDist{1 << 20, 1 << 20}, Mix: Mix{OpPut: 1, OpGet: 3}, Seed: 1, Warmup: time.Second,
	}
	rec.report(rep)
	return rep
}

type errString string

func (e errString) Error() string { return string(e) }

func TestReportJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := testReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("want one line, got %q", buf.String())
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	wantKeys := []string{"bucket", "bytes", "concurrency", "endpoint", "error_samples", "errors", "max_ms", "mb_per_s", "mean_ms",
		"mix", "objects", "op", "ops", "ops_per_s", "p50_ms", "p90_ms", "p99_ms", "prefix", "seconds", "seed", "size",
		"verify_failures", "warmup_s"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("keys %q\nwant %q", keys, wantKeys)
	}
	const mib = 1 << 20
	want := map[string]any{
		"op": "mixed", "objects": 400.0, "bytes": 400.0 * mib, "seconds": 2.5,
		"mb_per_s": 167.772, "ops_per_s": 160.0, "errors": 1.0, "verify_failures": 1.0,
		"concurrency": 8.0, "size": "1MiB", "mix": "put=1,get=3", "seed": 1.0, "warmup_s": 1.0,
		"endpoint": "http://127.0.0.1:9000", "bucket": "b", "prefix": "p/",
		// The median is a 2 ms GET, reported as the top of its bucket
		// (2031615 ns): not clamped, as the maximum is 10 ms.
		"p50_ms": 2.032, "max_ms": 10.0, "mean_ms": 4.0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	// p90 and p99 are 10 ms PUTs; the top of their bucket is above the
	// maximum, so they are clamped to it.
	for _, k := range []string{"p90_ms", "p99_ms"} {
		if v := got[k].(float64); v != 10 {
			t.Errorf("%s = %v, want 10 (clamped to the max)", k, v)
		}
	}
	samples := got["error_samples"].([]any)
	if len(samples) != 2 || samples[0] != "connection refused" || samples[1] != "bench: k: content differs at byte 3 of 9" {
		t.Errorf("error_samples = %q", samples)
	}
	ops := got["ops"].([]any)
	if len(ops) != 2 {
		t.Fatalf("ops = %v", ops)
	}
	put, get := ops[0].(map[string]any), ops[1].(map[string]any)
	if put["op"] != "put" || put["objects"] != 100.0 || put["p50_ms"] != 10.0 || put["errors"] != 0.0 ||
		get["op"] != "get" || get["objects"] != 300.0 || get["p99_ms"] != 2.0 || get["errors"] != 1.0 || get["verify_failures"] != 1.0 {
		t.Errorf("ops = %v", ops)
	}
}

func TestReportSingleOpJSON(t *testing.T) {
	rec := newRecorder(time.Unix(0, 0))
	for i := range 10 {
		s := time.Unix(0, int64(i)*int64(100*time.Millisecond))
		rec.add(outcome{op: OpPut, start: s, end: s.Add(100 * time.Millisecond), bytes: 4096})
	}
	rep := &Report{Workload: WorkloadPut, Concurrency: 1, Size: SizeDist{4096, 4096}}
	rec.report(rep)
	var buf bytes.Buffer
	rep.WriteJSON(&buf)
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ops", "mix", "error_samples", "interrupted", "keys"} {
		if _, ok := got[k]; ok {
			t.Errorf("single-op report has %q: %v", k, got)
		}
	}
	if got["objects"] != 10.0 || got["seconds"] != 1.0 || got["ops_per_s"] != 10.0 || got["mb_per_s"] != 0.041 || got["p50_ms"] != 100.0 {
		t.Errorf("report %v", got)
	}
	if !rep.OK() {
		t.Error("OK() = false for a clean run")
	}
}

func TestReportTimeline(t *testing.T) {
	rep := testReport()
	if len(rep.Timeline) != 3 {
		t.Fatalf("timeline has %d seconds, want 3", len(rep.Timeline))
	}
	var objects, bytes, errs int64
	for _, s := range rep.Timeline {
		objects += s.Objects
		bytes += s.Bytes
		errs += s.Errors
	}
	if objects != 400 || bytes != 400<<20 || errs != 2 {
		t.Errorf("timeline sums: %d objects, %d bytes, %d errors", objects, bytes, errs)
	}
	if rep.Timeline[0].P99 < 10*time.Millisecond || rep.Timeline[0].P99 > 11*time.Millisecond {
		t.Errorf("second 1 p99 = %v, want about 10ms", rep.Timeline[0].P99)
	}
	if rep.OK() {
		t.Error("OK() = true with errors")
	}
}

func TestReportTable(t *testing.T) {
	var buf bytes.Buffer
	if err := testReport().WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"mixed (put=1,get=3)  size 1MiB  concurrency 8  http://127.0.0.1:9000  bucket b  prefix \"p/\"\n",
		"measured 2.50s after 1s warm-up\n",
		"MB/s", "objects/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "verify failures",
		"first errors:\n  connection refused\n  bench: k: content differs at byte 3 of 9\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(out, "\n")
	var rows []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 11 && f[0] != "mixed" {
			rows = append(rows, strings.Join(f, " "))
		}
	}
	want := []string{
		"put 100 104.86 41.94 40.00 10.00 10.00 10.00 10.00 0 0",
		"get 300 314.57 125.83 120.00 2.00 2.00 2.00 2.00 1 1",
		"total 400 419.43 167.77 160.00 2.03 10.00 10.00 10.00 1 1",
	}
	if !slices.Equal(rows, want) {
		t.Errorf("rows:\n%s\nwant:\n%s\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"), out)
	}
}

func TestChart(t *testing.T) {
	rep := testReport()
	rep.Prefix = `<script>alert("x")</script>`
	var buf bytes.Buffer
	if err := WriteChart(&buf, rep); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if strings.Contains(strings.ToLower(page), "<script") {
		t.Error("chart has a script element (the prefix was not escaped?)")
	}
	if strings.Contains(page, "http-equiv") || strings.Contains(page, "src=") || strings.Contains(page, "href=") {
		t.Error("chart refers to an external resource")
	}
	if n := strings.Count(page, "<svg "); n != 3 {
		t.Errorf("%d SVG charts, want 3", n)
	}
	if n := strings.Count(page, "<polyline "); n != 3 {
		t.Errorf("%d lines, want 3", n)
	}
	for _, want := range []string{"<!DOCTYPE html>", "Throughput (MB/s) per second", "p99 latency (ms) per second",
		"<td>total</td><td>400</td><td>167.77</td>", "<title>1s: "} {
		if !strings.Contains(page, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	// An empty run still renders.
	buf.Reset()
	if err := WriteChart(&buf, &Report{Workload: WorkloadPut}); err != nil || !strings.Contains(buf.String(), "</html>") {
		t.Errorf("empty report: %v", err)
	}
}

func TestNiceCeil(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{{0, 1}, {0.3, 0.5}, {1, 1}, {1.1, 2}, {3, 5}, {7, 10}, {420, 500}, {1999, 2000}} {
		if got := niceCeil(c.in); got != c.want {
			t.Errorf("niceCeil(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
