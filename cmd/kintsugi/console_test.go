package main

import (
	"flag"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/gateway/console"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/prometheus/client_golang/prometheus"
)

type staticMap struct{ m *placement.Map }

func (s staticMap) Map() *placement.Map { return s.m }
func (staticMap) SetMap(*placement.Map) {} // the console never sets one

// TestConsoleWiring: the metrics listener serves the console at / and
// under /console, and /metrics and /nodes as before; the console asks for
// S3 credentials when the listener is beyond loopback, and only then.
func TestConsoleWiring(t *testing.T) {
	tr, err := health.New(health.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	m := (&placement.Map{Epoch: 3, DataShards: 1, ParityShards: 0, Nodes: []placement.Node{{ID: "n1", Addr: "127.0.0.1:1", Zone: "z"}}}).WithDefaults()
	env, _ := testEnv()
	cases := []struct {
		addr     string
		wantAuth bool
	}{
		{"127.0.0.1:9200", false},
		{"[::1]:9200", false},
		{"0.0.0.0:9200", true},
		{"10.1.2.3:9200", true},
	}
	for _, c := range cases {
		t.Run(c.addr, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			cf := addConsoleFlags(fs, true)
			if err := fs.Parse([]string{"--drive-afr", "0.03"}); err != nil {
				t.Fatal(err)
			}
			if err := cf.validate(); err != nil {
				t.Fatal(err)
			}
			con, err := cf.newConsole(env, consoleDeps{maps: staticMap{m}, tracker: tr, creds: sigv4.StaticCredentials{"AK": "SK"},
				requests: requestSamples(newRegistry(), time.Now), addr: c.addr})
			if err != nil {
				t.Fatal(err)
			}
			h := withConsole(metricsHandler(newRegistry(), tr, staticMap{m}), con.Handler())
			for _, path := range []string{"/", "/console", "/console/panel"} {
				for _, auth := range []bool{false, true} {
					req := httptest.NewRequest(http.MethodGet, path, nil)
					if auth {
						req.SetBasicAuth("AK", "SK")
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					want := http.StatusOK
					if c.wantAuth && !auth {
						want = http.StatusUnauthorized
					}
					if rec.Code != want {
						t.Errorf("GET %s (credentials %v): %d, want %d", path, auth, rec.Code, want)
					}
				}
			}
			for _, path := range []string{"/metrics", "/nodes"} {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != http.StatusOK {
					t.Errorf("GET %s: %d", path, rec.Code)
				}
			}
		})
	}
}

func TestConsoleFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		ok   bool
	}{
		{nil, true},
		{[]string{"--drive-afr", "0.01", "--repair-window", "6h", "--scrubber-status", "http://127.0.0.1:9300"}, true},
		{[]string{"--drive-afr", "2"}, false},
		{[]string{"--drive-afr", "-0.1"}, false},
		{[]string{"--repair-window", "0s"}, false},
		{[]string{"--scrubber-status", "127.0.0.1:9300"}, false},
	} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		cf := addConsoleFlags(fs, true)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		if err := cf.validate(); (err == nil) != c.ok {
			t.Errorf("%q: validate() = %v, want ok %v", c.args, err, c.ok)
		}
	}
}

// TestDevMetricsFallback: `kintsugi dev` takes another port when its
// default console address is taken, but not when the address was asked
// for.
func TestDevMetricsFallback(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	env, _ := testEnv()
	for _, c := range []struct {
		args []string
		ok   bool
	}{
		{nil, true},
		{[]string{"--metrics-listen", taken.Addr().String()}, false},
	} {
		fs := flag.NewFlagSet("dev", flag.ContinueOnError)
		addr := fs.String("metrics-listen", taken.Addr().String(), "")
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		srv, err := devMetricsServer(env, fs, *addr)
		if (err == nil) != c.ok {
			t.Errorf("%q: error %v, want ok %v", c.args, err, c.ok)
		}
		if err == nil {
			if srv.Addr() == taken.Addr().String() || !console.Loopback(srv.Addr()) {
				t.Errorf("%q: serving on %s, want another loopback port", c.args, srv.Addr())
			}
			srv.ln.Close()
		}
	}
}

// TestRequestSamples: the console's request counters are the gateway's S3
// metrics read back, summed over operations, with 5xx answers as errors.
func TestRequestSamples(t *testing.T) {
	reg := prometheus.NewRegistry()
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kintsugi_s3_request_duration_seconds",
		Buckets: []float64{0.001, 0.01, 0.1},
	}, []string{"operation"})
	req := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kintsugi_s3_requests_total"}, []string{"operation", "code"})
	reg.MustRegister(lat, req)
	lat.WithLabelValues("GetObject").Observe(0.0005)
	lat.WithLabelValues("GetObject").Observe(0.05)
	lat.WithLabelValues("PutObject").Observe(0.005)
	lat.WithLabelValues("PutObject").Observe(3) // slower than every bound
	req.WithLabelValues("GetObject", "2xx").Add(2)
	req.WithLabelValues("PutObject", "2xx").Add(1)
	req.WithLabelValues("PutObject", "5xx").Add(1)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	got := requestSamples(reg, func() time.Time { return at })()
	want := console.Sample{
		At: at, Requests: 4, Errors: 1,
		Bounds:  []time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond},
		Buckets: []uint64{1, 2, 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sample %+v, want %+v", got, want)
	}
}
