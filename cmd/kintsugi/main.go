// Command kintsugi is the single binary of a Kintsugi cluster: storage
// nodes, gateways, the scrubber, the load generator and admin tools are its
// subcommands. This package parses flags and configuration and wires the
// packages together; it holds no storage logic of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// exitUsage is the exit code for bad flags or configuration.
const exitUsage = 2

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *environ, args []string) error
}

// environ is what a subcommand may touch of the outside world; tests swap
// it out instead of mutating process globals.
type environ struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	logger *slog.Logger
}

func commands() []command {
	return []command{
		{"dev", "run a gateway and storage nodes in one process (local cluster)", runDev},
		{"server", "serve S3 from one process over one storage node per drive (single box)", runServer},
		{"storagenode", "run one storage node", runStorageNode},
		{"gateway", "run a stateless S3 gateway", runGateway},
		{"admin", "cluster status and map changes: nodes add/drain/remove, map show", runAdmin},
		{"scrub", "one full verify-and-repair pass over the cluster, for cron", runScrub},
		{"scrubber", "verify-and-repair passes on an interval, with /status and /metrics", runScrubber},
		{"bench", "S3 load generator for any endpoint (PUT/GET/mixed/list/delete)", runBench},
		{"probe", "GET a URL, exit 0 on 2xx: a health check for images without a shell", runProbe},
		{"version", "print the version", runVersion},
	}
}

func main() {
	env := &environ{
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
	}
	env.logger = newLogger(env)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, env, os.Args[1:]))
}

func run(ctx context.Context, env *environ, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		default:
			var ec exitError
			if errors.As(err, &ec) {
				if ec.err != nil {
					fmt.Fprintf(env.stderr, "kintsugi %s: %v\n", c.name, ec.err)
				}
				return ec.code
			}
			fmt.Fprintf(env.stderr, "kintsugi %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(env.stderr, "kintsugi: unknown command %q\n", args[0])
	usage(env.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: kintsugi <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'kintsugi <command> -h' for a command's flags.")
}

// exitError carries a specific exit code out of a subcommand.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e exitError) Unwrap() error { return e.err }

// usageErr reports bad flags or configuration: exit code 2.
func usageErr(format string, args ...any) error {
	return exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// parseFlags parses args into fs, turning flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, env *environ, args []string) error {
	fs.SetOutput(env.stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitError{code: exitUsage}
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// newLogger logs structured lines to stderr; KINTSUGI_LOG_LEVEL picks the
// level (debug, info, warn, error) and KINTSUGI_LOG_FORMAT=json switches to
// JSON for log shippers.
func newLogger(env *environ) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(env.getenv("KINTSUGI_LOG_LEVEL"))); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if env.getenv("KINTSUGI_LOG_FORMAT") == "json" {
		return slog.New(slog.NewJSONHandler(env.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(env.stderr, opts))
}
