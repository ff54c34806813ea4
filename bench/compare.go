package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// A CompareRow is one line of the comparison table: a workload at a fixed
// object size and concurrency.
type CompareRow struct {
	Workload    string // WorkloadPut or WorkloadGet
	Size        int64
	Concurrency int
	// PerObject reports objects/s instead of MB/s: small objects are
	// bounded by requests, not bytes.
	PerObject bool
}

// Name is the row's label, e.g. "PUT 16 MiB, MB/s".
func (r CompareRow) Name() string {
	unit := "MB/s"
	if r.PerObject {
		unit = "objects/s"
	}
	return fmt.Sprintf("%s %s c%d, %s", strings.ToUpper(r.Workload), humanSize(r.Size), r.Concurrency, unit)
}

// CompareRows are the rows `kintsugi bench compare` runs: large, medium and
// small objects, each written then read back, so that the GET of a row
// reads what its PUT left.
var CompareRows = []CompareRow{
	{WorkloadPut, 16 << 20, 8, false},
	{WorkloadGet, 16 << 20, 8, false},
	{WorkloadPut, 1 << 20, 8, false},
	{WorkloadGet, 1 << 20, 8, false},
	{WorkloadPut, 4 << 10, 16, true},
	{WorkloadGet, 4 << 10, 16, true},
}

// A Target is one S3 endpoint of a comparison.
type Target struct {
	Label     string
	Endpoint  string
	AccessKey string
	SecretKey string
}

// compareOptions are the choices of `kintsugi bench compare`.
type compareOptions struct {
	targets  []Target
	duration time.Duration
	warmup   time.Duration
	region   string
	bucket   string
	prefix   string
	insecure bool
}

const compareUsage = `usage: kintsugi bench compare [flags] ENDPOINT AK SK [ENDPOINT2 AK2 SK2]

Runs the same six rows against one S3 endpoint, or two one after the
other, and prints a markdown table; with two endpoints a last column gives
the ratio of the first to the second:

  PUT and GET of 16 MiB objects at 8 in flight   (MB/s)
  PUT and GET of 1 MiB objects at 8 in flight    (MB/s)
  PUT and GET of 4 KiB objects at 16 in flight   (objects/s)

Each run writes under a fresh prefix of its own, so earlier objects do not
change what it measures. Exit status: 0 all good, 1 any failed request or
verify failure (the table is printed anyway), 2 usage.

Flags:
`

func parseCompareArgs(args []string, stderr io.Writer) (compareOptions, error) {
	fs := flag.NewFlagSet("kintsugi bench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), compareUsage)
		fs.PrintDefaults()
	}
	var o compareOptions
	labels := fs.String("labels", "", "comma-separated column names for the endpoints (default: their host:port)")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "length of each row's measured phase")
	fs.DurationVar(&o.warmup, "warmup", 0, "run each row this long before measuring")
	fs.StringVar(&o.region, "region", DefaultRegion, "region to sign for")
	fs.StringVar(&o.bucket, "bucket", DefaultBucket, "bucket, created if missing")
	fs.StringVar(&o.prefix, "prefix", "compare/", "key prefix; each run adds a fresh part under it")
	fs.BoolVar(&o.insecure, "insecure", false, "skip TLS certificate verification")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, usageError{err.Error()}
	}
	pos := fs.Args()
	if len(pos) != 3 && len(pos) != 6 {
		return o, usagef("want ENDPOINT AK SK, optionally followed by ENDPOINT2 AK2 SK2; got %d arguments", len(pos))
	}
	var names []string
	if *labels != "" {
		names = strings.Split(*labels, ",")
		if len(names) != len(pos)/3 {
			return o, usagef("--labels: %d names for %d endpoints", len(names), len(pos)/3)
		}
	}
	for i := 0; i < len(pos); i += 3 {
		t := Target{Endpoint: pos[i], AccessKey: pos[i+1], SecretKey: pos[i+2]}
		probe := Config{Endpoint: t.Endpoint, Workload: WorkloadPut, AccessKey: t.AccessKey, SecretKey: t.SecretKey}
		if err := probe.validate(); err != nil {
			return o, usagef("%v", err)
		}
		t.Label = strings.TrimPrefix(strings.TrimPrefix(t.Endpoint, "http://"), "https://")
		if names != nil {
			t.Label = strings.TrimSpace(names[i/3])
		}
		o.targets = append(o.targets, t)
	}
	if o.duration <= 0 || o.warmup < 0 {
		return o, usagef("--duration must be positive and --warmup not negative")
	}
	return o, nil
}

// A CompareResult is one row's figure on one target.
type CompareResult struct {
	Value  float64 // MB/s or objects/s
	Failed bool    // a request failed or a GET did not verify
	Err    error   // the run could not be done at all
}

// compare runs every row on every target, one at a time, so that the
// targets never compete for the machine. run is Run outside tests.
func compare(ctx context.Context, o compareOptions, run func(context.Context, Config) (*Report, error), progress func(string)) [][]CompareResult {
	res := make([][]CompareResult, len(CompareRows))
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	for ti, t := range o.targets {
		prefix := fmt.Sprintf("%s%s-%d/", o.prefix, stamp, ti)
		for ri, row := range CompareRows {
			if res[ri] == nil {
				res[ri] = make([]CompareResult, len(o.targets))
			}
			progress(fmt.Sprintf("%s: %s", t.Label, row.Name()))
			cfg := Config{
				Endpoint: t.Endpoint, Region: o.region, AccessKey: t.AccessKey, SecretKey: t.SecretKey,
				Bucket: o.bucket, Prefix: prefix, Workload: row.Workload,
				Size: SizeDist{Min: row.Size, Max: row.Size}, MatchSize: true,
				Concurrency: row.Concurrency, Duration: o.duration, Warmup: o.warmup,
				Seed: DefaultSeed, PageSize: DefaultPageSize, Insecure: o.insecure,
			}
			rep, err := run(ctx, cfg)
			if err != nil {
				res[ri][ti] = CompareResult{Err: err}
				continue
			}
			v := perSec(float64(rep.Total.Bytes)/1e6, rep.Elapsed)
			if row.PerObject {
				v = perSec(float64(rep.Total.Objects), rep.Elapsed)
			}
			res[ri][ti] = CompareResult{Value: v, Failed: !rep.OK()}
		}
	}
	return res
}

// writeCompareTable prints the results as a markdown table; with two
// targets the last column is the first's figure over the second's.
func writeCompareTable(w io.Writer, targets []Target, res [][]CompareResult) error {
	var b strings.Builder
	b.WriteString("| workload |")
	for _, t := range targets {
		fmt.Fprintf(&b, " %s |", t.Label)
	}
	if len(targets) == 2 {
		b.WriteString(" ratio |")
	}
	b.WriteString("\n|---|")
	for range targets {
		b.WriteString("---:|")
	}
	if len(targets) == 2 {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for ri, row := range CompareRows {
		fmt.Fprintf(&b, "| %s |", row.Name())
		for _, r := range res[ri] {
			fmt.Fprintf(&b, " %s |", cell(r))
		}
		if len(targets) == 2 {
			a, c := res[ri][0], res[ri][1]
			ratio := "–"
			if a.Err == nil && c.Err == nil && c.Value > 0 {
				ratio = strconv.FormatFloat(a.Value/c.Value, 'f', 2, 64)
			}
			fmt.Fprintf(&b, " %s |", ratio)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func cell(r CompareResult) string {
	if r.Err != nil {
		return "error"
	}
	s := strconv.FormatFloat(r.Value, 'f', 0, 64)
	if r.Value < 10 {
		s = strconv.FormatFloat(r.Value, 'f', 1, 64)
	}
	if r.Failed {
		s += " (failures)"
	}
	return s
}

// humanSize prints whole binary units: 16 MiB, 4 KiB, 100 B.
func humanSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// compareMain is `kintsugi bench compare`.
func compareMain(ctx context.Context, args []string, env Env, run func(context.Context, Config) (*Report, error)) int {
	o, err := parseCompareArgs(args, env.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case err != nil:
		fmt.Fprintf(env.Stderr, "kintsugi bench compare: %v\n", err)
		return ExitUsage
	}
	res := compare(ctx, o, run, func(s string) { fmt.Fprintf(env.Stderr, "kintsugi bench compare: %s\n", s) })
	if err := writeCompareTable(env.Stdout, o.targets, res); err != nil {
		fmt.Fprintf(env.Stderr, "kintsugi bench compare: writing the table: %v\n", err)
		return ExitFailed
	}
	code := ExitOK
	for ri := range res {
		for ti, r := range res[ri] {
			if r.Err != nil {
				fmt.Fprintf(env.Stderr, "kintsugi bench compare: %s, %s: %v\n", o.targets[ti].Label, CompareRows[ri].Name(), r.Err)
			}
			if r.Err != nil || r.Failed {
				code = ExitFailed
			}
		}
	}
	return code
}
