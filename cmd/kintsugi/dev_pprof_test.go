package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestPprofServer(t *testing.T) {
	srv, err := pprofServer("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.ln.Close()
	if !strings.HasPrefix(srv.Addr(), "127.0.0.1:") {
		t.Errorf("bound %s, want 127.0.0.1", srv.Addr())
	}
	ts := httptest.NewServer(srv.srv.Handler)
	defer ts.Close()
	for path, prefix := range map[string]string{
		"/debug/pprof/heap?debug=1":      "heap profile: ",
		"/debug/pprof/goroutine?debug=1": "goroutine profile: ",
		"/debug/pprof/cmdline":           os.Args[0],
	} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		if !strings.HasPrefix(string(body), prefix) {
			t.Errorf("GET %s: body starts %q, want %q", path, body[:min(len(body), 40)], prefix)
		}
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics: %d, want 404: the listener serves profiles only", resp.StatusCode)
	}
}
