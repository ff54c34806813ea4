package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/kintsugi-store/kintsugi/placement"
)

// Liveness and readiness paths every long-running server answers. They
// carry no data: "ok", or a one-line reason with 503.
const (
	pathHealthz = "/healthz" // the process is alive and its listener serves
	pathReadyz  = "/readyz"  // it can take traffic
)

// withProbes answers GET and HEAD on /healthz and /readyz in front of next,
// unauthenticated, for container runtimes, load balancers and Kubernetes.
// ready reports why the server cannot take traffic yet (nil: it can; a nil
// ready means always).
//
// Only requests that carry no Authorization header and no query are
// answered here. On a gateway's path-style S3 listener /healthz is also the
// bucket "healthz": a signed request, or a presigned one (its signature is in
// the query), still reaches S3, and the unsigned ones taken here would have
// been refused as anonymous anyway.
func withProbes(next http.Handler, ready func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.URL.Path != pathHealthz && r.URL.Path != pathReadyz) ||
			(r.Method != http.MethodGet && r.Method != http.MethodHead) ||
			r.Header.Get("Authorization") != "" || r.URL.RawQuery != "" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Path == pathReadyz && ready != nil {
			if err := ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "not ready: %v\n", err)
				return
			}
		}
		io.WriteString(w, "ok\n")
	})
}

// gatewayReady is a gateway's readiness: it holds a valid cluster map and
// serves. It deliberately does not wait for a write quorum of reachable
// nodes: every gateway sees the same nodes, so such a check would take all
// of them out of a load balancer at once, turning S3 503s (which clients
// retry) and reads that still work with d nodes into refused connections.
// Node reachability is on the metrics listener's /nodes and /metrics.
func gatewayReady(maps interface{ Map() *placement.Map }) func() error {
	return func() error {
		m := maps.Map()
		if m == nil || len(m.Nodes) == 0 {
			return fmt.Errorf("no cluster map")
		}
		return nil
	}
}

// runProbe is `kintsugi probe`: GET a URL and exit 0 on a 2xx answer, 1
// otherwise. A scratch image has no shell or curl, and OCI images drop
// HEALTHCHECK, so container health checks and Kubernetes exec probes call
// the binary itself.
func runProbe(ctx context.Context, env *environ, args []string) error {
	fs := flag.NewFlagSet("kintsugi probe", flag.ContinueOnError)
	url := fs.String("url", "", "URL to GET, e.g. http://127.0.0.1:9000/readyz (required)")
	timeout := fs.Duration("timeout", 2*time.Second, "deadline of the whole request")
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	if *url == "" {
		return usageErr("--url is required")
	}
	if *timeout <= 0 {
		return usageErr("--timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return usageErr("--url: %v", err)
	}
	// A probe must not ride a connection another probe left behind, nor
	// leave one: each run is a fresh process anyway.
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return exitError{code: 1, err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	line := strings.TrimSpace(string(body))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return exitError{code: 1, err: fmt.Errorf("%s: %s %s", *url, resp.Status, line)}
	}
	fmt.Fprintln(env.stdout, line)
	return nil
}
