package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/scrubber"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Exit codes of `kintsugi scrub`.
const (
	exitScrubLost   = 1 // data the pass could not repair
	exitScrubFailed = 2 // the pass itself failed or could not cover everything
)

// scrubFlags are the flags `scrub` and `scrubber` share.
type scrubFlags struct {
	cluster      *string
	state        *string
	rate         *float64
	concurrency  *int
	stagingGrace *time.Duration
	markerGrace  *time.Duration
	secretFile   *string
	lifecycleDay *time.Duration
}

func addScrubFlags(fs *flag.FlagSet) *scrubFlags {
	return &scrubFlags{
		cluster:      fs.String("cluster", "", "cluster map file (YAML, required)"),
		state:        fs.String("state", "", "checkpoint directory, so an interrupted pass resumes (default: one per cluster file under $XDG_STATE_HOME or ~/.local/state)"),
		rate:         fs.Float64("rate", 0, "MB/s (10^6 bytes) of shard data verified on nodes or read to rebuild; 0 = unlimited"),
		concurrency:  fs.Int("concurrency", scrubber.DefaultConcurrency, "objects checked or repaired at once"),
		stagingGrace: fs.Duration("staging-grace", scrubber.DefaultStagingGrace, "age after which an uncommitted staged version is swept"),
		markerGrace:  fs.Duration("marker-grace", scrubber.DefaultMarkerGrace, "age after which a delete marker held by every node is dropped"),
		secretFile:   fs.String("secret-file", "", "file holding the cluster secret (default: $KINTSUGI_CLUSTER_SECRET)"),
		lifecycleDay: fs.Duration("lifecycle-day", scrubber.DefaultLifecycleDay, "how long a day of the buckets' lifecycle rules lasts (shorten it only to test rules)"),
	}
}

// config turns the flags into a scrubber.Config.
func (f *scrubFlags) config(env *environ) (scrubber.Config, error) {
	if *f.cluster == "" {
		return scrubber.Config{}, usageErr("--cluster is required")
	}
	m, err := placement.Load(*f.cluster)
	if err != nil {
		return scrubber.Config{}, usageErr("%v", err)
	}
	switch {
	case *f.rate < 0:
		return scrubber.Config{}, usageErr("--rate %v: must not be negative", *f.rate)
	case *f.concurrency < 1 || *f.concurrency > 1024:
		return scrubber.Config{}, usageErr("--concurrency %d: want 1..1024", *f.concurrency)
	case *f.stagingGrace <= 0 || *f.markerGrace <= 0:
		return scrubber.Config{}, usageErr("--staging-grace and --marker-grace must be positive")
	case *f.lifecycleDay <= 0:
		return scrubber.Config{}, usageErr("--lifecycle-day %v: must be positive", *f.lifecycleDay)
	}
	now, err := processClock(env)
	if err != nil {
		return scrubber.Config{}, err
	}
	secret, err := clusterSecret(env, *f.secretFile)
	if err != nil {
		return scrubber.Config{}, err
	}
	if secret == nil {
		env.logger.Warn("no cluster secret: node requests are unsigned; set KINTSUGI_CLUSTER_SECRET")
	}
	state := *f.state
	if state == "" {
		if state, err = defaultStateDir(env, *f.cluster); err != nil {
			return scrubber.Config{}, err
		}
	}
	return scrubber.Config{
		Map:           m,
		ClientOptions: &client.Options{Secret: secret},
		StateDir:      state,
		Concurrency:   *f.concurrency,
		Rate:          int64(*f.rate * 1e6),
		StagingGrace:  *f.stagingGrace,
		MarkerGrace:   *f.markerGrace,
		LifecycleDay:  *f.lifecycleDay,
		Logger:        env.logger,
		Now:           now,
	}, nil
}

// defaultStateDir is a stable directory per cluster file, so that cron runs
// of the same cluster resume each other's passes.
func defaultStateDir(env *environ, clusterFile string) (string, error) {
	abs, err := filepath.Abs(clusterFile)
	if err != nil {
		return "", usageErr("--cluster: %v", err)
	}
	base := env.getenv("XDG_STATE_HOME")
	if base == "" {
		if home := env.getenv("HOME"); home != "" {
			base = filepath.Join(home, ".local", "state")
		} else {
			base = os.TempDir()
		}
	}
	sum := sha256.Sum256([]byte(abs))
	dir := filepath.Join(base, "kintsugi", "scrub-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", usageErr("state directory: %v (set --state)", err)
	}
	return dir, nil
}

func runScrub(ctx context.Context, env *environ, args []string) error {
	fs := flag.NewFlagSet("kintsugi scrub", flag.ContinueOnError)
	sf := addScrubFlags(fs)
	dry := fs.Bool("dry-run", false, "report without repairing anything (and without touching the checkpoint)")
	report := fs.String("report", "text", "summary format on stdout: text or json")
	progress := fs.String("progress", "auto", "progress display on stderr: auto (a bar on a terminal, else log lines), bar, log or none")
	logEvery := fs.Duration("log-every", 10*time.Second, "interval of progress log lines")
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	if *report != "text" && *report != "json" {
		return usageErr("--report %q: want text or json", *report)
	}
	if *logEvery <= 0 {
		return usageErr("--log-every must be positive")
	}
	mode := *progress
	switch mode {
	case "auto":
		mode = "log"
		if isTerminal(env.stderr) {
			mode = "bar"
		}
	case "bar", "log", "none":
	default:
		return usageErr("--progress %q: want auto, bar, log or none", mode)
	}
	cfg, err := sf.config(env)
	if err != nil {
		return err
	}
	cfg.DryRun = *dry
	pr := newProgressPrinter(env, mode, *logEvery)
	cfg.Progress = pr.update
	s, err := scrubber.New(cfg)
	if err != nil {
		return exitError{code: exitScrubFailed, err: err}
	}
	defer s.Close()

	stop := pr.start()
	rep, runErr := s.Run(ctx)
	stop()
	if rep != nil {
		if *report == "json" {
			enc := json.NewEncoder(env.stdout)
			enc.SetIndent("", "  ")
			enc.Encode(rep)
		} else {
			printSummary(env.stdout, rep, cfg.Map.WithDefaults(), runErr)
		}
	}
	switch {
	case runErr != nil:
		return exitError{code: exitScrubFailed, err: fmt.Errorf("pass failed (resumable from its checkpoint): %w", runErr)}
	case rep.UnrecoverableCount > 0:
		return exitError{code: exitScrubLost, err: fmt.Errorf("%d objects cannot be repaired", rep.UnrecoverableCount)}
	case rep.IncompleteCount > 0:
		return exitError{code: exitScrubFailed, err: fmt.Errorf("pass incomplete: %d problems (nodes unreachable or repairs failed)", rep.IncompleteCount)}
	}
	return nil
}

func runScrubber(ctx context.Context, env *environ, args []string) error {
	fs := flag.NewFlagSet("kintsugi scrubber", flag.ContinueOnError)
	sf := addScrubFlags(fs)
	interval := fs.Duration("interval", 24*time.Hour, "time from the start of one pass to the start of the next")
	listen := fs.String("listen", "127.0.0.1:9300", "address to serve /status and /metrics on")
	poll := fs.Duration("map-poll", 2*time.Second, "how often to check the cluster file for a newer epoch (a new map starts a rebalance at once)")
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	if *interval <= 0 {
		return usageErr("--interval must be positive")
	}
	cfg, err := sf.config(env)
	if err != nil {
		return err
	}
	s, err := scrubber.New(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	d := scrubber.NewDaemon(s, *interval)
	srv, err := newServer("scrubber", *listen, d.Handler(), env.logger)
	if err != nil {
		return usageErr("%v", err)
	}
	// The passes stop with the server, whichever ends first.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	go watchMap(ctx, env.logger, *sf.cluster, *poll, s)
	go watchRaftMap(ctx, env.logger, s, cfg.ClientOptions)
	ready(env, "scrubber", srv.Addr(), "interval", interval.String(), "epoch", itoa(s.Map().Epoch))
	err = serveAll(ctx, env.logger, srv)
	cancel()
	<-done
	return err
}

// printSummary writes the human summary of a pass.
func printSummary(w io.Writer, r *scrubber.Report, m *placement.Map, runErr error) {
	status := "complete"
	switch {
	case runErr != nil:
		status = "FAILED"
	case r.UnrecoverableCount > 0:
		status = "complete, DATA CANNOT BE REPAIRED"
	case r.IncompleteCount > 0:
		status = "INCOMPLETE"
	}
	dry := ""
	if r.DryRun {
		dry = " (dry run: nothing repaired)"
	}
	fmt.Fprintf(w, "scrub %s%s in %s\n", status, dry, time.Duration(r.Seconds*float64(time.Second)).Round(time.Millisecond))
	if r.Resumed > 0 && r.ResumedFrom != nil {
		fmt.Fprintf(w, "  resumed:          %d time(s); this run took over at %s %s/%s and checked %d objects\n",
			r.Resumed, r.ResumedFrom.Phase, r.ResumedFrom.Bucket, r.ResumedFrom.Key, r.RunObjects)
	}
	rate := 0.0
	if r.Seconds > 0 {
		rate = float64(r.ShardBytes) / r.Seconds / 1e6
	}
	fmt.Fprintf(w, "  objects verified: %d (%s) in %d buckets; %d delete markers, %d multipart manifests\n",
		r.Objects, sizeStr(r.Bytes), r.Buckets, r.Markers, r.Manifests)
	fmt.Fprintf(w, "  shards verified:  %d (%s hashed on the nodes, %.1f MB/s)\n", r.ShardsVerified, sizeStr(r.ShardBytes), rate)
	fmt.Fprintf(w, "  shards missing:   %d\n", r.ShardsMissing)
	fmt.Fprintf(w, "  shards corrupt:   %d\n", r.ShardsCorrupt)
	fmt.Fprintf(w, "  shards rebuilt:   %d (%s)", r.ShardsRebuilt, sizeStr(r.BytesRebuilt))
	if r.RepairsFailed > 0 {
		fmt.Fprintf(w, ", %d failed", r.RepairsFailed)
	}
	fmt.Fprintln(w)
	if r.MovesPlanned+r.MovesDone+r.CopiesDropped > 0 || r.MapChanged {
		fmt.Fprintf(w, "  rebalance:        %d of %d shard moves done (%s moved), %d failed, %d old copies dropped; map epoch %d\n",
			r.MovesDone, r.MovesPlanned, sizeStr(r.BytesMoved), r.MovesFailed, r.CopiesDropped, r.MapEpoch)
		if r.MapChanged {
			fmt.Fprintf(w, "                    the map changed during the pass: run it again to cover every object under epoch %d\n", r.MapEpoch)
		}
	}
	fmt.Fprintf(w, "  unrecoverable:    %d objects\n", r.UnrecoverableCount)
	if r.Raised > 0 {
		fmt.Fprintf(w, "  raised parity:    %d objects (%s) written while nodes were down; %d of them (%s) re-coded to %d+%d, the others kept at their own layout\n",
			r.Raised, sizeStr(r.RaisedBytes), r.Recoded, sizeStr(r.RecodedBytes), m.DataShards, m.ParityShards)
	}
	var levels []string
	for _, l := range scrubber.Levels(r.RedundancyAfter, m.DataShards, m.N()) {
		levels = append(levels, fmt.Sprintf("%s: %d", l.Level, l.Objects))
	}
	fmt.Fprintf(w, "  redundancy now:   %s\n", strings.Join(levels, ", "))
	if r.RolledForward+r.StagedAborted+r.MarkersRepaired+r.MarkersRemoved+r.ManifestsRepaired+r.HintsConsumed+
		int64(r.BucketsRepaired)+r.Changed+r.Unacknowledged > 0 {
		fmt.Fprintf(w, "  also:             %d hints consumed, %d shards rolled forward, %d staged shards swept (%s), "+
			"%d delete markers copied, %d dropped, %d manifests copied, %d bucket records copied, "+
			"%d objects changed under the pass, %d unacknowledged versions\n",
			r.HintsConsumed, r.RolledForward, r.StagedAborted, sizeStr(r.StagedBytes), r.MarkersRepaired, r.MarkersRemoved,
			r.ManifestsRepaired, r.BucketsRepaired, r.Changed, r.Unacknowledged)
	}
	for _, u := range r.Unrecoverable {
		fmt.Fprintf(w, "UNRECOVERABLE %s/%s version %s: %s\n", u.Bucket, u.Key, u.Version, u.Reason)
	}
	if n := r.UnrecoverableCount - int64(len(r.Unrecoverable)); n > 0 {
		fmt.Fprintf(w, "UNRECOVERABLE ... and %d more (see --report json)\n", n)
	}
	printIncomplete(w, r)
}

// printIncomplete writes what kept the pass from covering or repairing
// everything, one INCOMPLETE line per kind with its count and the first
// few examples: with a node down every object it holds is incomplete, and
// a line each would bury the one fact that matters. --report json lists
// them (up to scrubber.MaxListed).
func printIncomplete(w io.Writer, r *scrubber.Report) {
	for _, k := range r.IncompleteSummary() {
		fmt.Fprintf(w, "INCOMPLETE %s: %d\n", k.Kind, k.Count)
		for _, e := range k.Examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
		if n := k.Count - int64(len(k.Examples)); n > 0 {
			fmt.Fprintf(w, "  ... and %d more (see --report json)\n", n)
		}
	}
}

// sizeStr formats a byte count in binary units, one decimal from KiB up
// ("12.0 MiB"). Not go-humanize: its IBytes drops the decimal from 10 up
// ("12 MiB"), and the admin and scrub outputs print this form.
func sizeStr(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
