package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWithProbes(t *testing.T) {
	notReady := func() error { return errors.New("no cluster map") }
	tests := []struct {
		name     string
		method   string
		target   string
		auth     string
		ready    func() error
		wantCode int
		wantBody string // prefix; "next" when the wrapped handler answers
	}{
		{"healthz", "GET", "/healthz", "", nil, 200, "ok"},
		{"readyz", "GET", "/readyz", "", nil, 200, "ok"},
		{"head readyz", "HEAD", "/readyz", "", nil, 200, ""},
		{"readyz not ready", "GET", "/readyz", "", notReady, 503, "not ready: no cluster map"},
		{"healthz ignores readiness", "GET", "/healthz", "", notReady, 200, "ok"},
		{"signed request is S3's", "GET", "/healthz", "AWS4-HMAC-SHA256 Credential=x", nil, 299, "next"},
		{"presigned request is S3's", "GET", "/readyz?X-Amz-Signature=abc", "", nil, 299, "next"},
		{"list query is S3's", "GET", "/healthz?list-type=2", "", nil, 299, "next"},
		{"put is S3's", "PUT", "/healthz", "", nil, 299, "next"},
		{"key under the bucket", "GET", "/healthz/x", "", nil, 299, "next"},
		{"other path", "GET", "/v1/health", "", nil, 299, "next"},
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(299)
		io.WriteString(w, "next")
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			withProbes(next, tc.ready).ServeHTTP(rec, req)
			if rec.Code != tc.wantCode || !strings.HasPrefix(rec.Body.String(), tc.wantBody) {
				t.Errorf("%s %s: got %d %q, want %d %q", tc.method, tc.target, rec.Code, rec.Body.String(), tc.wantCode, tc.wantBody)
			}
		})
	}
}

func TestProbeCommand(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			io.WriteString(w, "ok\n")
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/down":
			http.Error(w, "not ready: no cluster map", http.StatusServiceUnavailable)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		name string
		args []string
		want int
	}{
		{"2xx", []string{"--url", srv.URL + "/ok"}, 0},
		{"204", []string{"--url", srv.URL + "/nocontent"}, 0},
		{"503", []string{"--url", srv.URL + "/down"}, 1},
		{"404", []string{"--url", srv.URL + "/missing"}, 1},
		{"timeout", []string{"--url", srv.URL + "/slow", "--timeout", "100ms"}, 1},
		{"refused", []string{"--url", closedURL + "/readyz"}, 1},
		{"no url", nil, exitUsage},
		{"bad timeout", []string{"--url", srv.URL, "--timeout", "0s"}, exitUsage},
		{"bad url", []string{"--url", "http://[::1"}, exitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, out := testEnv()
			start := time.Now()
			got := run(context.Background(), env, append([]string{"probe"}, tc.args...))
			if got != tc.want {
				t.Errorf("probe %v: exit %d, want %d; output:\n%s", tc.args, got, tc.want, out.String())
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("probe %v took %v; the timeout was not kept", tc.args, d)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	env, out := testEnv()
	if code := run(context.Background(), env, []string{"version"}); code != 0 {
		t.Fatalf("version: exit %d: %s", code, out)
	}
	if !strings.HasPrefix(out.String(), "kintsugi ") {
		t.Errorf("version printed %q", out)
	}
	old := versionStamp
	versionStamp = "v9.9.9-test"
	defer func() { versionStamp = old }()
	env, out = testEnv()
	run(context.Background(), env, []string{"version"})
	if !strings.HasPrefix(out.String(), "kintsugi v9.9.9-test ") {
		t.Errorf("stamped version printed %q", out)
	}
}

// TestProbeEndpoints runs a storage node, a gateway and the dev cluster in
// this process and probes their listeners as a container runtime would:
// unauthenticated, while the node API itself still demands the cluster
// secret.
func TestProbeEndpoints(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	getenv := func(k string) string {
		return map[string]string{
			"KINTSUGI_CLUSTER_SECRET": "probe-test-secret",
			"KINTSUGI_ACCESS_KEY":     "probe-ak",
			"KINTSUGI_SECRET_KEY":     "probe-secret-key",
		}[k]
	}
	// start runs a command and returns the key=value fields of its ready
	// line.
	start := func(args ...string) map[string]string {
		t.Helper()
		lines := &lineWriter{ch: make(chan string, 16)}
		env := &environ{stdout: lines, stderr: io.Discard, getenv: getenv, logger: slog.New(slog.DiscardHandler)}
		wg.Go(func() {
			if code := run(ctx, env, args); code != 0 {
				t.Errorf("%v: exit %d", args, code)
			}
		})
		deadline := time.After(30 * time.Second)
		for {
			var l string
			select {
			case l = <-lines.ch:
			case <-deadline:
				t.Fatalf("%v: no ready line", args)
			}
			if !strings.HasPrefix(l, "ready ") {
				continue // dev prints its endpoints first
			}
			kv := map[string]string{}
			for _, f := range strings.Fields(l) {
				if k, v, ok := strings.Cut(f, "="); ok {
					kv[k] = v
				}
			}
			return kv
		}
	}
	nodeAddr := start("storagenode", "--id", "n1", "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "n1"))["addr"]
	cluster := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(cluster, []byte("data_shards: 1\nparity_shards: 0\nnodes:\n  - {id: n1, addr: "+nodeAddr+", zone: z1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := start("gateway", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--cluster", cluster)

	dev := start("dev", "--data", filepath.Join(dir, "dev"), "--listen", "127.0.0.1:0", "--node-base-port", "0", "--scrub-interval", "0",
		"--memory-limit", "0") // no process-wide memory limit for the tests that follow

	for _, url := range []string{
		"http://" + dev["addr"] + "/healthz", "http://" + dev["addr"] + "/readyz",
		"http://" + nodeAddr + "/healthz", "http://" + nodeAddr + "/readyz",
		"http://" + gw["addr"] + "/healthz", "http://" + gw["addr"] + "/readyz",
		"http://" + gw["metrics"] + "/healthz", "http://" + gw["metrics"] + "/readyz",
	} {
		env, out := testEnv()
		if code := run(ctx, env, []string{"probe", "--url", url}); code != 0 || strings.TrimSpace(out.String()) != "ok" {
			t.Errorf("probe %s: exit %d, output %q", url, code, out)
		}
	}
	// The probes opened no hole: the node API still wants a signature.
	resp, err := http.Get("http://" + nodeAddr + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned GET /v1/health: %s, want 401", resp.Status)
	}
}

// testEnv returns an environ whose stdout and stderr go to one buffer.
func testEnv() (*environ, *bytes.Buffer) {
	var out bytes.Buffer
	w := &lockedWriter{w: &out}
	return &environ{stdout: w, stderr: w, getenv: func(string) string { return "" }, logger: slog.New(slog.DiscardHandler)}, &out
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// lineWriter sends each line written to it on ch.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	ch  chan string
}

func (lw *lineWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.buf = append(lw.buf, p...)
	for {
		i := bytes.IndexByte(lw.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case lw.ch <- string(lw.buf[:i]):
		default:
		}
		lw.buf = lw.buf[i+1:]
	}
}
