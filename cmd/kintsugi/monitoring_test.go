package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// metricRef finds metric names in a PromQL expression.
var metricRef = regexp.MustCompile(`\bkintsugi_[a-z0-9_]+`)

// knownMetric reports whether name, as a query may spell it, is a metric
// of the golden list: a histogram is queried through its _bucket, _sum
// and _count series.
func knownMetric(golden map[string]string, name string) bool {
	if _, ok := golden[name]; ok {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok && golden[base] == "histogram" {
			return true
		}
	}
	return false
}

// TestDashboardMetrics checks that every query of the Grafana dashboard
// and every alert rule uses only metric names the processes expose (the
// golden list TestMetricNames keeps honest), so a rename cannot leave a
// panel or an alert silently empty.
func TestDashboardMetrics(t *testing.T) {
	golden := readGoldenMetrics(t)
	b, err := os.ReadFile("../../deploy/grafana/kintsugi.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []dashPanel `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("deploy/grafana/kintsugi.json: %v", err)
	}
	queries := 0
	var walk func(ps []dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				queries++
				names := metricRef.FindAllString(tg.Expr, -1)
				if len(names) == 0 {
					t.Errorf("panel %q: query %q names no kintsugi metric", p.Title, tg.Expr)
				}
				for _, n := range names {
					if !knownMetric(golden, n) {
						t.Errorf("panel %q: query uses %s, which no process exposes (%s)", p.Title, n, goldenMetrics)
					}
				}
			}
		}
	}
	walk(dash.Panels)
	if queries == 0 {
		t.Fatal("the dashboard has no queries")
	}

	rules, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range metricRef.FindAllString(string(rules), -1) {
		if !knownMetric(golden, n) {
			t.Errorf("deploy/prometheus/alerts.yml uses %s, which no process exposes (%s)", n, goldenMetrics)
		}
	}
}

type dashPanel struct {
	Type    string      `json:"type"`
	Title   string      `json:"title"`
	Panels  []dashPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// needTool returns the path of an external tool the test needs, or skips
// the test loudly when it is missing; under CI=true a missing tool fails
// it instead, so CI cannot pass without running the check.
func needTool(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found, and CI=true: %s", name, install)
	}
	t.Skipf("SKIPPED: %s not found (%s)", name, install)
	return ""
}

// TestAlertRules runs promtool over deploy/prometheus: the rules and the
// scrape configuration must load, and every alert's unit test in
// alerts_test.yml must pass (each makes its alert fire).
func TestAlertRules(t *testing.T) {
	promtool := needTool(t, "promtool", "apt-get install --no-install-recommends prometheus")
	dir, err := filepath.Abs("../../deploy/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"check", "config", "prometheus.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	// Every alert of alerts.yml has a case in alerts_test.yml.
	rules, err := os.ReadFile(filepath.Join(dir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join(dir, "alerts_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert: (\S+)`).FindAllStringSubmatch(string(rules), -1) {
		if !regexp.MustCompile(`alertname: ` + m[1] + `\s*\n\s*exp_alerts:\s*\n\s*- exp_labels`).Match(tests) {
			t.Errorf("alert %s has no test in alerts_test.yml that makes it fire", m[1])
		}
	}
}
