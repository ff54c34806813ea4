package bench

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseCompareArgs(t *testing.T) {
	for _, c := range []struct {
		name    string
		args    []string
		targets []Target
		dur     time.Duration
		err     bool
	}{
		{"one endpoint, defaults", []string{"http://127.0.0.1:9000", "AK", "SK"},
			[]Target{{"127.0.0.1:9000", "http://127.0.0.1:9000", "AK", "SK"}}, 15 * time.Second, false},
		{"two endpoints, labels, duration", []string{"--duration", "3s", "--labels", "kintsugi, minio",
			"http://a:1", "A", "B", "https://b:2", "C", "D"},
			[]Target{{"kintsugi", "http://a:1", "A", "B"}, {"minio", "https://b:2", "C", "D"}}, 3 * time.Second, false},
		{"missing secret", []string{"http://a:1", "AK"}, nil, 0, true},
		{"four arguments", []string{"http://a:1", "A", "B", "http://b:2"}, nil, 0, true},
		{"not a URL", []string{"a:1", "A", "B"}, nil, 0, true},
		{"labels do not match", []string{"--labels", "x,y", "http://a:1", "A", "B"}, nil, 0, true},
		{"zero duration", []string{"--duration", "0s", "http://a:1", "A", "B"}, nil, 0, true},
		{"unknown flag", []string{"--nope", "http://a:1", "A", "B"}, nil, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := parseCompareArgs(c.args, io.Discard)
			if c.err {
				var ue usageError
				if !errors.As(err, &ue) {
					t.Fatalf("err = %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(o.targets) != len(c.targets) || o.duration != c.dur {
				t.Fatalf("got %+v duration %v, want %+v %v", o.targets, o.duration, c.targets, c.dur)
			}
			for i := range c.targets {
				if o.targets[i] != c.targets[i] {
					t.Errorf("target %d = %+v, want %+v", i, o.targets[i], c.targets[i])
				}
			}
		})
	}
	if _, err := parseCompareArgs([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: err = %v, want flag.ErrHelp", err)
	}
}

// fakeRun reports fixed figures: MB/s and objects/s both equal to the
// endpoint's number times the row's size in KiB, so each cell is known.
func fakeRun(per map[string]float64, seen *[]Config) func(context.Context, Config) (*Report, error) {
	return func(_ context.Context, cfg Config) (*Report, error) {
		*seen = append(*seen, cfg)
		f, ok := per[cfg.Endpoint]
		if !ok {
			return nil, errors.New("connection refused")
		}
		rep := &Report{Elapsed: 2 * time.Second}
		rep.Total.Objects = int64(2 * f)
		rep.Total.Bytes = int64(2 * f * 1e6)
		if cfg.Workload == WorkloadGet && cfg.Size.Min == 4<<10 {
			rep.Total.VerifyFailures = 1
		}
		return rep, nil
	}
}

func TestCompareTable(t *testing.T) {
	var seen []Config
	run := fakeRun(map[string]float64{"http://a:1": 300, "http://b:2": 200}, &seen)
	var out, errs bytes.Buffer
	code := compareMain(context.Background(), []string{"--duration", "2s", "--labels", "k,m",
		"http://a:1", "A", "B", "http://b:2", "C", "D"}, Env{Stdout: &out, Stderr: &errs}, run)
	if code != ExitFailed {
		t.Errorf("exit code %d, want %d (a row had verify failures)", code, ExitFailed)
	}
	want := `| workload | k | m | ratio |
|---|---:|---:|---:|
| PUT 16 MiB c8, MB/s | 300 | 200 | 1.50 |
| GET 16 MiB c8, MB/s | 300 | 200 | 1.50 |
| PUT 1 MiB c8, MB/s | 300 | 200 | 1.50 |
| GET 1 MiB c8, MB/s | 300 | 200 | 1.50 |
| PUT 4 KiB c16, objects/s | 300 | 200 | 1.50 |
| GET 4 KiB c16, objects/s | 300 (failures) | 200 (failures) | 1.50 |
`
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
	if len(seen) != 12 {
		t.Fatalf("%d runs, want 12", len(seen))
	}
	// Every run of a target shares its prefix (GET reads what PUT left);
	// the two targets' prefixes differ.
	for i, c := range seen {
		row := CompareRows[i%6]
		if c.Workload != row.Workload || c.Size.Min != row.Size || c.Size.Max != row.Size || !c.MatchSize ||
			c.Concurrency != row.Concurrency || c.Duration != 2*time.Second || c.Prefix != seen[i/6*6].Prefix {
			t.Errorf("run %d: %+v does not match row %+v", i, c, row)
		}
	}
	if seen[0].Prefix == seen[6].Prefix || !strings.HasPrefix(seen[0].Prefix, "compare/") {
		t.Errorf("prefixes %q and %q", seen[0].Prefix, seen[6].Prefix)
	}
}

func TestCompareOneEndpointAndErrors(t *testing.T) {
	var seen []Config
	var out, errs bytes.Buffer
	code := compareMain(context.Background(), []string{"http://down:1", "A", "B"},
		Env{Stdout: &out, Stderr: &errs}, fakeRun(nil, &seen))
	if code != ExitFailed {
		t.Errorf("exit code %d, want %d", code, ExitFailed)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 8 || lines[0] != "| workload | down:1 |" || lines[2] != "| PUT 16 MiB c8, MB/s | error |" {
		t.Errorf("table:\n%s", out.String())
	}
	if !strings.Contains(errs.String(), "connection refused") {
		t.Errorf("stderr does not say why: %s", errs.String())
	}
	if code := compareMain(context.Background(), []string{"http://a:1"}, Env{Stdout: io.Discard, Stderr: io.Discard}, fakeRun(nil, &seen)); code != ExitUsage {
		t.Errorf("usage: exit code %d, want %d", code, ExitUsage)
	}
}
