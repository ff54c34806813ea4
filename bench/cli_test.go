package bench

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envOf(vars map[string]string) Env {
	return Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string { return vars[k] }}
}

func TestParseArgs(t *testing.T) {
	const ep = "http://127.0.0.1:9000"
	for _, c := range []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, cfg Config, o options)
	}{
		{"contract: flags before and after the workload",
			[]string{"--endpoint", ep, "--access-key", "AK", "--secret-key", "SK", "--bucket", "b1", "put", "--size", "16MiB", "--concurrency", "8", "--duration", "20s", "--json"}, nil,
			func(t *testing.T, cfg Config, o options) {
				want := Config{Endpoint: ep, AccessKey: "AK", SecretKey: "SK", Bucket: "b1", Workload: WorkloadPut,
					Size: SizeDist{16 << 20, 16 << 20}, MatchSize: true, Concurrency: 8, Duration: 20 * time.Second,
					Region: DefaultRegion, Prefix: DefaultPrefix, Seed: DefaultSeed, PageSize: DefaultPageSize, Objects: 32}
				cfg.Logger = nil // Main sets its own
				if !o.json || !reflect.DeepEqual(cfg, want) {
					t.Errorf("got %+v json=%v\nwant %+v", cfg, o.json, want)
				}
			}},
		{"defaults",
			[]string{"get", "--endpoint", ep}, nil,
			func(t *testing.T, cfg Config, o options) {
				if cfg.Workload != WorkloadGet || cfg.Concurrency != DefaultConcurrency || cfg.Duration != DefaultDuration ||
					cfg.Count != 0 || cfg.Warmup != 0 || cfg.Bucket != DefaultBucket || cfg.Prefix != DefaultPrefix ||
					cfg.Size != (SizeDist{1 << 20, 1 << 20}) || cfg.MatchSize || cfg.Mix != (Mix{}) || cfg.SignPayload || o.json || o.chart != "" ||
					cfg.AccessKey != "" {
					t.Errorf("defaults: %+v %+v", cfg, o)
				}
			}},
		{"count alone ends the run by count",
			[]string{"--endpoint", ep, "put", "--count", "20"}, nil,
			func(t *testing.T, cfg Config, _ options) {
				if cfg.Count != 20 || cfg.Duration != 0 {
					t.Errorf("count %d duration %v; want 20 and none", cfg.Count, cfg.Duration)
				}
			}},
		{"count and duration: both bound",
			[]string{"--endpoint", ep, "put", "--count", "20", "--duration", "5s", "--warmup", "2s"}, nil,
			func(t *testing.T, cfg Config, _ options) {
				if cfg.Count != 20 || cfg.Duration != 5*time.Second || cfg.Warmup != 2*time.Second {
					t.Errorf("count %d duration %v warmup %v", cfg.Count, cfg.Duration, cfg.Warmup)
				}
			}},
		{"mixed with ratios and a size range",
			[]string{"--endpoint", ep, "--mix", "put=30,get=70", "mixed", "--size", "4KiB-1MiB", "--chart", "c.html", "--seed", "7"}, nil,
			func(t *testing.T, cfg Config, o options) {
				if cfg.Mix != (Mix{OpPut: 30, OpGet: 70}) || cfg.Size != (SizeDist{4 << 10, 1 << 20}) || o.chart != "c.html" || cfg.Seed != 7 {
					t.Errorf("%+v %+v", cfg, o)
				}
			}},
		{"mixed default mix",
			[]string{"--endpoint", ep, "mixed"}, nil,
			func(t *testing.T, cfg Config, _ options) {
				if cfg.Mix != (Mix{OpPut: 30, OpGet: 70}) {
					t.Errorf("mix %v", cfg.Mix)
				}
			}},
		{"credentials from KINTSUGI_ env",
			[]string{"--endpoint", ep, "list"}, map[string]string{"KINTSUGI_ACCESS_KEY": "kak", "KINTSUGI_SECRET_KEY": "ksk", "AWS_ACCESS_KEY_ID": "aak", "AWS_SECRET_ACCESS_KEY": "ask"},
			func(t *testing.T, cfg Config, _ options) {
				if cfg.AccessKey != "kak" || cfg.SecretKey != "ksk" {
					t.Errorf("keys %q %q", cfg.AccessKey, cfg.SecretKey)
				}
			}},
		{"credentials from AWS_ env",
			[]string{"--endpoint", ep, "list"}, map[string]string{"AWS_ACCESS_KEY_ID": "aak", "AWS_SECRET_ACCESS_KEY": "ask"},
			func(t *testing.T, cfg Config, _ options) {
				if cfg.AccessKey != "aak" || cfg.SecretKey != "ask" {
					t.Errorf("keys %q %q", cfg.AccessKey, cfg.SecretKey)
				}
			}},
		{"flags win over env",
			[]string{"--endpoint", ep, "--access-key", "fak", "--secret-key", "fsk", "delete"}, map[string]string{"KINTSUGI_ACCESS_KEY": "kak", "KINTSUGI_SECRET_KEY": "ksk"},
			func(t *testing.T, cfg Config, _ options) {
				if cfg.AccessKey != "fak" || cfg.SecretKey != "fsk" {
					t.Errorf("keys %q %q", cfg.AccessKey, cfg.SecretKey)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, o, err := parseArgs(c.args, envOf(c.env))
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, cfg, o)
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	const ep = "http://127.0.0.1:9000"
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"put"}, nil, "--endpoint is required"},
		{[]string{"--endpoint", ep}, nil, "no workload"},
		{[]string{"--endpoint", ep, "frob"}, nil, `unknown workload "frob"`},
		{[]string{"--endpoint", ep, "put", "extra"}, nil, `unexpected argument "extra"`},
		{[]string{"--endpoint", ep, "put", "--size", "12XB"}, nil, "--size"},
		{[]string{"--endpoint", ep, "put", "--size", "1MiB-4KiB"}, nil, "end below start"},
		{[]string{"--endpoint", ep, "mixed", "--mix", "put=1,stat=1"}, nil, `unknown op "stat"`},
		{[]string{"--endpoint", ep, "put", "--concurrency", "0"}, nil, "--concurrency 0"},
		{[]string{"--endpoint", ep, "put", "--duration", "-1s"}, nil, "must not be negative"},
		{[]string{"--endpoint", ep, "list", "--page-size", "1001"}, nil, "--page-size"},
		{[]string{"--endpoint", ep, "put", "--access-key", "AK"}, nil, "needs a secret key"},
		{[]string{"--endpoint", ep, "put"}, map[string]string{"KINTSUGI_ACCESS_KEY": "AK"}, "needs a secret key"},
		{[]string{"--endpoint", "ftp://x", "put"}, nil, "want http://host:port"},
		{[]string{"--endpoint", ep, "put", "--no-such-flag"}, nil, "flag provided but not defined"},
	} {
		_, _, err := parseArgs(c.args, envOf(c.env))
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v; want a usage error with %q", c.args, err, c.want)
		}
	}
	if _, _, err := parseArgs([]string{"-h"}, envOf(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}

func TestMainExitCodes(t *testing.T) {
	var stderr bytes.Buffer
	env := Env{Stdout: io.Discard, Stderr: &stderr}
	if code := Main(context.Background(), []string{"put"}, env); code != ExitUsage || !strings.Contains(stderr.String(), "kintsugi bench: --endpoint is required") {
		t.Errorf("no endpoint: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := Main(context.Background(), []string{"--help"}, env); code != ExitOK || !strings.Contains(stderr.String(), "usage: kintsugi bench") {
		t.Errorf("--help: exit %d, stderr %q", code, stderr.String())
	}
	// Nothing listens on port 1: the run cannot be set up.
	stderr.Reset()
	if code := Main(context.Background(), []string{"--endpoint", "http://127.0.0.1:1", "put", "--count", "1"}, env); code != ExitFailed || !strings.Contains(stderr.String(), "connection refused") {
		t.Errorf("unreachable endpoint: exit %d, stderr %q", code, stderr.String())
	}
}
