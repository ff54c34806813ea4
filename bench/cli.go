package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// Exit codes of Main.
const (
	ExitOK     = 0 // every request succeeded and every GET verified
	ExitFailed = 1 // a request failed, a GET did not verify, or the run could not be set up
	ExitUsage  = 2 // bad flags
)

// Env is what Main may touch of the outside world.
type Env struct {
	Stdout io.Writer // the report
	Stderr io.Writer // usage, errors and, on a terminal, the live progress line
	Getenv func(string) string
	Logger *slog.Logger // progress when Stderr is not a terminal; nil: text lines on Stderr
}

// usageError is a command-line mistake: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// options are the command-line choices that are not part of Config.
type options struct {
	json  bool
	chart string
}

const usageText = `usage: kintsugi bench [flags] put|get|mixed|list|delete [flags]

Runs one S3 workload against any SigV4 endpoint and reports throughput,
latency percentiles, errors and verify failures. Flags may come before and
after the workload.

  put     writes objects <prefix>obj-<n>-<size>, n counting on from the
          highest an earlier run left, so it never overwrites them
  get     reads the objects a put run left (writing its own first if there
          are none) and verifies every byte against the seed
  mixed   --mix of put, get, delete and list
  list    pages through the prefix
  delete  deletes the objects under the prefix until none is left

Credentials: --access-key/--secret-key, else KINTSUGI_ACCESS_KEY and
KINTSUGI_SECRET_KEY, else AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
Exit status: 0 all good, 1 any failed request or verify failure, 2 usage.

Flags:
`

// parseArgs turns the command line into a Config. It returns flag.ErrHelp
// for -h and a usageError for anything wrong.
func parseArgs(args []string, env Env) (Config, options, error) {
	fs := flag.NewFlagSet("kintsugi bench", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	var (
		cfg  Config
		opts options
	)
	fs.StringVar(&cfg.Endpoint, "endpoint", "", "S3 endpoint URL, e.g. http://127.0.0.1:9000 (required)")
	fs.StringVar(&cfg.AccessKey, "access-key", "", "access key")
	fs.StringVar(&cfg.SecretKey, "secret-key", "", "secret key")
	fs.StringVar(&cfg.Region, "region", DefaultRegion, "region to sign for")
	fs.StringVar(&cfg.Bucket, "bucket", DefaultBucket, "bucket, created if missing")
	fs.StringVar(&cfg.Prefix, "prefix", DefaultPrefix, "key prefix of every object the run touches")
	size := fs.String("size", "1MiB", "object size (16MiB) or uniform range (4KiB-1MiB)")
	mix := fs.String("mix", "put=30,get=70", "op=weight ratios for mixed (put, get, delete, list)")
	fs.IntVar(&cfg.Concurrency, "concurrency", DefaultConcurrency, "requests in flight")
	fs.DurationVar(&cfg.Duration, "duration", DefaultDuration, "length of the measured phase")
	fs.Int64Var(&cfg.Count, "count", 0, "operations to measure (instead of --duration unless both are given)")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "run this long before measuring")
	fs.IntVar(&cfg.Objects, "objects", 0, "objects get/list/delete/mixed write first when the prefix has none (0: max(16, 4*concurrency))")
	fs.Uint64Var(&cfg.Seed, "seed", DefaultSeed, "content seed: get verifies against the content this seed generates")
	fs.IntVar(&cfg.PageSize, "page-size", DefaultPageSize, "keys per list request")
	fs.BoolVar(&cfg.SignPayload, "sign-payload", false, "sign a SHA-256 of every body instead of sending UNSIGNED-PAYLOAD")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "skip TLS certificate verification")
	fs.BoolVar(&opts.json, "json", false, "print the report as one JSON object")
	fs.StringVar(&opts.chart, "chart", "", "also write an HTML chart of throughput and p99 latency per second to this file")

	parse := func(args []string) error {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err.Error()} // the flag package has printed the details
		}
		return nil
	}
	// Flags, the workload word, flags again.
	if err := parse(args); err != nil {
		return Config{}, options{}, err
	}
	if fs.NArg() == 0 {
		return Config{}, options{}, usagef("no workload: want put, get, mixed, list or delete")
	}
	cfg.Workload = fs.Arg(0)
	if err := parse(fs.Args()[1:]); err != nil {
		return Config{}, options{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, options{}, usagef("unexpected argument %q after the flags", fs.Arg(0))
	}
	switch cfg.Workload {
	case WorkloadPut, WorkloadGet, WorkloadMixed, WorkloadList, WorkloadDelete:
	default:
		return Config{}, options{}, usagef("unknown workload %q: want put, get, mixed, list or delete", cfg.Workload)
	}

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	if cfg.Size, err = ParseSizeDist(*size); err != nil {
		return Config{}, options{}, usagef("--size: %v", err)
	}
	// Reads use whatever a put run left unless told which sizes.
	cfg.MatchSize = set["size"]
	if cfg.Workload == WorkloadMixed || set["mix"] {
		if cfg.Mix, err = ParseMix(*mix); err != nil {
			return Config{}, options{}, usagef("--mix: %v", err)
		}
	}
	if cfg.Count > 0 && !set["duration"] {
		cfg.Duration = 0
	}
	if cfg.Concurrency < 1 {
		return Config{}, options{}, usagef("--concurrency %d: want at least 1", cfg.Concurrency)
	}
	if cfg.Duration < 0 || cfg.Count < 0 || cfg.Warmup < 0 || cfg.Objects < 0 || cfg.PageSize < 1 || cfg.PageSize > 1000 {
		return Config{}, options{}, usagef("--duration, --count, --warmup and --objects must not be negative; --page-size is 1..1000")
	}
	if cfg.AccessKey == "" && cfg.SecretKey == "" {
		cfg.AccessKey, cfg.SecretKey = env.Getenv("KINTSUGI_ACCESS_KEY"), env.Getenv("KINTSUGI_SECRET_KEY")
		if cfg.AccessKey == "" && cfg.SecretKey == "" {
			cfg.AccessKey, cfg.SecretKey = env.Getenv("AWS_ACCESS_KEY_ID"), env.Getenv("AWS_SECRET_ACCESS_KEY")
		}
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return Config{}, options{}, usagef("an access key needs a secret key and the other way round")
	}
	if cfg.Endpoint == "" {
		return Config{}, options{}, usagef("--endpoint is required")
	}
	if err := cfg.validate(); err != nil {
		return Config{}, options{}, usagef("%v", err)
	}
	return cfg, opts, nil
}

// Main is the `kintsugi bench` command: it parses args, runs the workload,
// prints the report (a table, or JSON with --json) on env.Stdout and
// returns the exit code.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	cfg, opts, err := parseArgs(args, env)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case err != nil:
		fmt.Fprintf(env.Stderr, "kintsugi bench: %v\n", err)
		return ExitUsage
	}
	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(env.Stderr, nil))
	}
	cfg.Logger = logger
	tty := isTerminal(env.Stderr)
	cfg.Progress = progressPrinter(cfg.Workload, env.Stderr, tty, logger)

	rep, err := Run(ctx, cfg)
	if tty {
		fmt.Fprint(env.Stderr, "\r\033[K") // clear the progress line
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "kintsugi bench: %v\n", err)
		return ExitFailed
	}
	if opts.json {
		err = rep.WriteJSON(env.Stdout)
	} else {
		err = rep.WriteTable(env.Stdout)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "kintsugi bench: writing the report: %v\n", err)
		return ExitFailed
	}
	if opts.chart != "" {
		if err := writeChartFile(opts.chart, rep); err != nil {
			fmt.Fprintf(env.Stderr, "kintsugi bench: --chart: %v\n", err)
			return ExitFailed
		}
	}
	if !rep.OK() {
		return ExitFailed
	}
	return ExitOK
}

func writeChartFile(path string, rep *Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteChart(f, rep); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// isTerminal reports whether w is a terminal, i.e. a person is watching
// and a self-overwriting line beats a stream of log records.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// logEvery is how often progress is logged when nobody watches a terminal.
const logEvery = 5

// progressPrinter returns the Config.Progress callback: a line rewritten
// in place each second on a terminal, a structured log record every
// logEvery seconds otherwise.
func progressPrinter(workload string, w io.Writer, tty bool, logger *slog.Logger) func(Progress) {
	ticks := 0
	return func(p Progress) {
		ticks++
		phase := workload
		if p.Warmup {
			phase += " (warm-up)"
		}
		last := p.LastSecond
		if tty {
			var b strings.Builder
			fmt.Fprintf(&b, "\r\033[K%s  %5.0fs  %d objects  %.1f MB  |  last second: %.1f MB/s  %d objects/s  p99 %.2f ms",
				phase, p.Elapsed.Round(time.Second).Seconds(), p.Objects, float64(p.Bytes)/1e6,
				float64(last.Bytes)/1e6, last.Objects, float64(last.P99)/1e6)
			if p.Errors > 0 || p.VerifyFailures > 0 {
				fmt.Fprintf(&b, "  |  errors %d  verify failures %d", p.Errors, p.VerifyFailures)
			}
			io.WriteString(w, b.String())
			return
		}
		if ticks%logEvery != 0 {
			return
		}
		logger.Info("bench progress", "workload", phase, "elapsed", p.Elapsed.Round(time.Second),
			"objects", p.Objects, "bytes", p.Bytes, "errors", p.Errors, "verify_failures", p.VerifyFailures,
			"last_mb_per_s", round(float64(last.Bytes)/1e6, 2), "last_ops_per_s", last.Objects,
			"last_p99_ms", ms(last.P99))
	}
}
