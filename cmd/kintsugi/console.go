package main

import (
	"flag"
	"net/http"
	"net/url"
	"time"

	"github.com/kintsugi-store/kintsugi/gateway/console"
	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/prometheus/client_golang/prometheus"
)

// consoleFlags are the console's settings, on the metrics listener of a
// gateway or of `kintsugi dev`.
type consoleFlags struct {
	scrubber     *string
	afr          *float64
	repairWindow *time.Duration
}

func addConsoleFlags(fs *flag.FlagSet, withScrubber bool) *consoleFlags {
	f := &consoleFlags{
		afr: fs.Float64("drive-afr", console.DefaultDriveAFR,
			"annual failure rate of one node's drive assumed by the console's durability estimate (0.02 = 2%)"),
		repairWindow: fs.Duration("repair-window", console.DefaultRepairWindow,
			"how long a lost shard stays lost, for the durability estimate, until the scrubber has measured it"),
	}
	if withScrubber {
		f.scrubber = fs.String("scrubber-status", "",
			"base URL of a scrubber daemon (http://HOST:PORT) whose /status the console shows; empty: redundancy and repairs unknown")
	}
	return f
}

// consoleDeps is what the console reads, from the process that serves it.
type consoleDeps struct {
	maps     mapSetter
	tracker  *health.Tracker
	opts     *client.Options
	creds    console.Secrets
	requests func() console.Sample
	scrubber string // base URL, or empty
	addr     string // the metrics listener's bound address
}

// validate reports bad console flags as a usage error.
func (f *consoleFlags) validate() error {
	if *f.afr < 0 || *f.afr >= 1 {
		return usageErr("--drive-afr %v: want a fraction in [0, 1), e.g. 0.02", *f.afr)
	}
	if *f.repairWindow <= 0 {
		return usageErr("--repair-window %v: want a positive duration", *f.repairWindow)
	}
	if f.scrubber != nil && *f.scrubber != "" {
		u, err := url.Parse(*f.scrubber)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageErr("--scrubber-status %q: want http://HOST:PORT", *f.scrubber)
		}
	}
	return nil
}

// newConsole builds the console. Beyond loopback it asks for S3
// credentials; on loopback it does not, like /metrics beside it.
func (f *consoleFlags) newConsole(env *environ, d consoleDeps) (*console.Console, error) {
	cfg := console.Config{
		Map:           d.maps,
		Health:        d.tracker,
		ClientOptions: d.opts,
		Requests:      d.requests,
		DriveAFR:      *f.afr,
		RepairWindow:  *f.repairWindow,
		Logger:        env.logger,
	}
	if d.scrubber != "" {
		cfg.Scrubber = &console.HTTPScrubber{BaseURL: d.scrubber}
	}
	if !console.Loopback(d.addr) {
		cfg.Credentials = d.creds
	}
	return console.New(cfg)
}

// withConsole serves the console at / and under /console on the metrics
// listener, and everything else from metrics.
func withConsole(metrics, c http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", metrics)
	mux.Handle("GET /{$}", c)
	mux.Handle("GET /console", c)
	mux.Handle("GET /console/", c)
	return mux
}

// requestSamples reads the console's request counters back from the
// gateway's own S3 metrics in g, so that each request is counted once:
// answers and latencies from kintsugi_s3_request_duration_seconds, errors
// from the 5xx class of kintsugi_s3_requests_total, summed over
// operations. A gather that fails gives an empty sample, which the
// console shows as no traffic rather than a wrong rate.
func requestSamples(g prometheus.Gatherer, now func() time.Time) func() console.Sample {
	return func() console.Sample {
		s := console.Sample{At: now()}
		families, err := g.Gather()
		if err != nil {
			return s
		}
		for _, f := range families {
			switch f.GetName() {
			case "kintsugi_s3_request_duration_seconds":
				for _, m := range f.GetMetric() {
					h := m.GetHistogram()
					s.Requests += h.GetSampleCount()
					for i, b := range h.GetBucket() {
						if i == len(s.Buckets) {
							s.Bounds = append(s.Bounds, time.Duration(b.GetUpperBound()*float64(time.Second)))
							s.Buckets = append(s.Buckets, 0)
						}
						s.Buckets[i] += b.GetCumulativeCount()
					}
				}
			case "kintsugi_s3_requests_total":
				for _, m := range f.GetMetric() {
					for _, l := range m.GetLabel() {
						if l.GetName() == "code" && l.GetValue() == "5xx" {
							s.Errors += uint64(m.GetCounter().GetValue())
						}
					}
				}
			}
		}
		return s
	}
}
