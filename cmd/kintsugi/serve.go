package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/clock"
)

// drainTimeout bounds how long SIGTERM waits for in-flight requests.
const drainTimeout = 30 * time.Second

// server is one HTTP listener of the process.
type server struct {
	name   string // for logs: "gateway", "storagenode n1"
	ln     net.Listener
	srv    *http.Server
	scheme string // "http", or "https" after useTLS
}

func newServer(name, addr string, h http.Handler, logger *slog.Logger) (*server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return &server{
		name:   name,
		ln:     ln,
		scheme: "http",
		srv: &http.Server{
			Handler: h,
			// Slow clients must not pin connections: headers have a hard
			// deadline; bodies are streamed and bounded by the handlers.
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			// A hard stop only: the gateway refuses headers beyond its
			// own, smaller limit with an S3 error.
			MaxHeaderBytes: 256 << 10,
			ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
	}, nil
}

// Addr is the address actually bound (port 0 resolved).
func (s *server) Addr() string { return s.ln.Addr().String() }

// URL is the base URL clients reach s at.
func (s *server) URL() string { return s.scheme + "://" + s.Addr() }

// serveAll serves every server until ctx is done, then drains them all.
// It returns the first serve error, or nil after a clean drain.
func serveAll(ctx context.Context, logger *slog.Logger, servers ...*server) error {
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() {
			err := s.srv.Serve(s.ln)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errc <- err
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		if err != nil {
			logger.Error("server failed", "err", err)
		}
	}
	logger.Info("shutting down: draining in-flight requests", "timeout", drainTimeout)
	dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	for _, s := range servers {
		if serr := s.srv.Shutdown(dctx); serr != nil && err == nil {
			err = fmt.Errorf("%s: shutdown: %w", s.name, serr)
		}
	}
	return err
}

// clusterSecret reads the cluster secret: --secret-file wins over
// KINTSUGI_CLUSTER_SECRET. Empty means unauthenticated cluster traffic.
func clusterSecret(env *environ, file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usageErr("--secret-file: %v", err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return nil, usageErr("--secret-file %s is empty", file)
		}
		return []byte(s), nil
	}
	if s := env.getenv("KINTSUGI_CLUSTER_SECRET"); s != "" {
		return []byte(s), nil
	}
	return nil, nil
}

// processClock is this process's wall clock, for every Config's Now: the
// system clock, shifted by KINTSUGI_CLOCK_OFFSET when that is set (a
// testing knob, see internal/clock). An unparsable offset is a usage
// error; a set one is logged, so that no one mistakes a shifted process
// for a healthy one.
func processClock(env *environ) (func() time.Time, error) {
	now, err := clock.FromEnv(env.getenv)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	if s := env.getenv(clock.EnvOffset); s != "" {
		env.logger.Warn("wall clock shifted for testing", "offset", s)
	}
	return now, nil
}

// randomToken returns n random bytes, hex encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// ready prints the one line supervisors and tests wait for.
func ready(env *environ, role, addr string, kv ...string) {
	line := "ready addr=" + addr + " role=" + role
	for i := 0; i+1 < len(kv); i += 2 {
		line += " " + kv[i] + "=" + kv[i+1]
	}
	fmt.Fprintln(env.stdout, line)
}
