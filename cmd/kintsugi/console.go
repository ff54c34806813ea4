package main

import (
	"flag"
	"net/http"
	"net/url"
	"time"

	"github.com/kintsugi-store/kintsugi/gateway/console"
	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
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
	counter  *console.Counter
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
		Requests:      d.counter.Sample,
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
