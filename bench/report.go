package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run: what was measured, and how it went.
// Throughput figures are in decimal units (1 MB = 10^6 bytes), as
// `go test -bench` reports them.
type Report struct {
	Workload    string
	Endpoint    string
	Bucket      string
	Prefix      string
	Concurrency int
	Size        SizeDist
	Mix         Mix // mixed workload only
	Seed        uint64
	Warmup      time.Duration
	// Elapsed runs from the end of the warm-up to the completion of the
	// last measured operation.
	Elapsed time.Duration
	// Total sums Ops; its Op is the workload's name.
	Total OpStats
	// Ops has one entry per kind of operation issued, in Op order.
	Ops      []OpStats
	Timeline []Second // one entry per second of the measured phase
	// ErrorSamples holds the first few distinct error messages.
	ErrorSamples []string
	// Interrupted is set when the run's context ended before the run did.
	Interrupted bool
}

// OpStats are the statistics of one kind of operation (or of all).
// Objects counts operations that succeeded (and, for GET, whose body was
// verified); Bytes and Latency cover those only.
type OpStats struct {
	Op             string
	Objects        int64
	Bytes          int64
	Keys           int64 // keys returned by list requests
	Errors         int64 // requests that failed
	VerifyFailures int64 // GETs whose body differed from what was written
	Latency        Histogram
}

func (s *OpStats) add(o *OpStats) {
	s.Objects += o.Objects
	s.Bytes += o.Bytes
	s.Keys += o.Keys
	s.Errors += o.Errors
	s.VerifyFailures += o.VerifyFailures
	s.Latency.Merge(&o.Latency)
}

// Second is the activity of one second of a run, by completion time.
type Second struct {
	Objects int64
	Bytes   int64
	Errors  int64 // failed requests and verify failures
	P99     time.Duration
}

// Progress is the state of a running measurement, passed to
// Config.Progress about once a second.
type Progress struct {
	Warmup         bool          // still warming up: nothing is recorded yet
	Elapsed        time.Duration // since the measured phase began (negative in warm-up)
	Objects        int64
	Bytes          int64
	Errors         int64
	VerifyFailures int64
	LastSecond     Second // the last complete second
}

// OK reports whether the run completed with no failed request and no
// verify failure.
func (r *Report) OK() bool {
	return r.Total.Errors == 0 && r.Total.VerifyFailures == 0 && !r.Interrupted
}

func perSec(n float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return n / d.Seconds()
}

func ms(d time.Duration) float64 { return round(float64(d)/1e6, 3) }

func round(f float64, digits int) float64 {
	p := math.Pow10(digits)
	return math.Round(f*p) / p
}

// opJSON is the machine-readable form of OpStats.
type opJSON struct {
	Op             string  `json:"op"`
	Objects        int64   `json:"objects"`
	Bytes          int64   `json:"bytes"`
	Keys           int64   `json:"keys,omitempty"`
	Seconds        float64 `json:"seconds"`
	MBPerSec       float64 `json:"mb_per_s"`
	OpsPerSec      float64 `json:"ops_per_s"`
	P50ms          float64 `json:"p50_ms"`
	P90ms          float64 `json:"p90_ms"`
	P99ms          float64 `json:"p99_ms"`
	MaxMs          float64 `json:"max_ms"`
	MeanMs         float64 `json:"mean_ms"`
	Errors         int64   `json:"errors"`
	VerifyFailures int64   `json:"verify_failures"`
}

func (s *OpStats) json(elapsed time.Duration) opJSON {
	return opJSON{
		Op:             s.Op,
		Objects:        s.Objects,
		Bytes:          s.Bytes,
		Keys:           s.Keys,
		Seconds:        round(elapsed.Seconds(), 3),
		MBPerSec:       round(perSec(float64(s.Bytes)/1e6, elapsed), 3),
		OpsPerSec:      round(perSec(float64(s.Objects), elapsed), 3),
		P50ms:          ms(s.Latency.Quantile(0.50)),
		P90ms:          ms(s.Latency.Quantile(0.90)),
		P99ms:          ms(s.Latency.Quantile(0.99)),
		MaxMs:          ms(s.Latency.Max()),
		MeanMs:         ms(s.Latency.Mean()),
		Errors:         s.Errors,
		VerifyFailures: s.VerifyFailures,
	}
}

// reportJSON is the one JSON object --json prints.
type reportJSON struct {
	opJSON
	Endpoint     string   `json:"endpoint"`
	Bucket       string   `json:"bucket"`
	Prefix       string   `json:"prefix"`
	Concurrency  int      `json:"concurrency"`
	Size         string   `json:"size"`
	Mix          string   `json:"mix,omitempty"`
	Seed         uint64   `json:"seed"`
	WarmupSec    float64  `json:"warmup_s"`
	Interrupted  bool     `json:"interrupted,omitempty"`
	ErrorSamples []string `json:"error_samples,omitempty"`
	Ops          []opJSON `json:"ops,omitempty"` // per operation, when there are several kinds
}

// WriteJSON writes the report as one JSON object on one line.
func (r *Report) WriteJSON(w io.Writer) error {
	out := reportJSON{
		opJSON:       r.Total.json(r.Elapsed),
		Endpoint:     r.Endpoint,
		Bucket:       r.Bucket,
		Prefix:       r.Prefix,
		Concurrency:  r.Concurrency,
		Size:         r.Size.String(),
		Seed:         r.Seed,
		WarmupSec:    round(r.Warmup.Seconds(), 3),
		Interrupted:  r.Interrupted,
		ErrorSamples: r.ErrorSamples,
	}
	if r.Workload == WorkloadMixed {
		out.Mix = r.Mix.String()
	}
	if len(r.Ops) > 1 {
		for i := range r.Ops {
			out.Ops = append(out.Ops, r.Ops[i].json(r.Elapsed))
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteTable writes the report for people: a summary line, one row per
// kind of operation (and a total for mixed runs), and the error samples.
func (r *Report) WriteTable(w io.Writer) error {
	what := r.Workload
	if r.Workload == WorkloadMixed {
		what += " (" + r.Mix.String() + ")"
	}
	fmt.Fprintf(w, "%s  size %s  concurrency %d  %s  bucket %s  prefix %q\n",
		what, r.Size, r.Concurrency, r.Endpoint, r.Bucket, r.Prefix)
	fmt.Fprintf(w, "measured %.2fs after %s warm-up\n\n", r.Elapsed.Seconds(), r.Warmup)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tobjects\tMB\tMB/s\tobjects/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\tverify failures\t")
	rows := r.Ops
	if len(r.Ops) > 1 {
		rows = append(append([]OpStats(nil), r.Ops...), r.Total)
		rows[len(rows)-1].Op = "total"
	}
	if len(rows) == 0 {
		rows = []OpStats{r.Total}
	}
	for i := range rows {
		j := rows[i].json(r.Elapsed)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n",
			j.Op, j.Objects, num(float64(j.Bytes)/1e6), num(j.MBPerSec), num(j.OpsPerSec),
			num(j.P50ms), num(j.P90ms), num(j.P99ms), num(j.MaxMs), j.Errors, j.VerifyFailures)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Total.Keys > 0 {
		fmt.Fprintf(w, "\nkeys listed: %d\n", r.Total.Keys)
	}
	if r.Interrupted {
		fmt.Fprintln(w, "\ninterrupted before the end of the run")
	}
	if len(r.ErrorSamples) > 0 {
		fmt.Fprintln(w, "\nfirst errors:")
		for _, e := range r.ErrorSamples {
			fmt.Fprintln(w, "  "+e)
		}
	}
	return nil
}

// num formats a figure with two decimals.
func num(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }
