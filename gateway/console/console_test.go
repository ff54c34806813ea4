package console

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/scrubber"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

type fakeMap struct{ m *placement.Map }

func (f fakeMap) Map() *placement.Map { return f.m }

type fakeHealth []health.NodeStatus

func (f fakeHealth) Status() []health.NodeStatus { return f }

type fakeScrub struct {
	st  *ScrubStatus
	err error
}

func (f fakeScrub) ScrubStatus(context.Context) (*ScrubStatus, error) { return f.st, f.err }

func testMap() *placement.Map {
	m := &placement.Map{Epoch: 7, DataShards: 4, ParityShards: 2}
	for i, z := range []string{"a", "a", "b", "b", "c", "c"} {
		m.Nodes = append(m.Nodes, placement.Node{ID: "n" + string(rune('1'+i)), Addr: "127.0.0.1:1", Zone: z})
	}
	return m.WithDefaults()
}

// nodeHealth answers for every node but n2 (refused) and n3 (stopped: it
// never answers before the deadline).
func nodeHealth(ctx context.Context, n placement.Node) (client.Health, error) {
	switch n.ID {
	case "n2":
		return client.Health{}, errors.New("connection refused")
	case "n3":
		<-ctx.Done()
		return client.Health{}, ctx.Err()
	}
	return client.Health{ID: n.ID, Epoch: 7, Objects: 42, DiskTotal: 100 << 30, DiskFree: 75 << 30}, nil
}

func get(t *testing.T, h http.Handler, path string, auth ...string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if len(auth) == 2 {
		req.SetBasicAuth(auth[0], auth[1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// TestPage renders the page from fakes of every source and checks that
// each figure appears, labelled with its source, and that nodes that do
// not answer cost one deadline, not one each.
func TestPage(t *testing.T) {
	seen := fakeHealth{
		{ID: "n1", State: health.Up, Breaker: "closed"},
		{ID: "n2", State: health.Down, Breaker: "open", LastErr: "connection refused"},
		{ID: "n3", State: health.Suspect, Breaker: "closed"},
	}
	finished := time.Now().Add(-time.Hour)
	scrub := &ScrubStatus{
		IntervalSeconds: 86400, OldestUnverifiedSeconds: 7200, MapEpoch: 7, RepairsInFlight: 3,
		Redundancy: []ScrubLevel{{"6", 90}, {"5", 10}, {"4", 0}, {"below 4", 0}},
		LastPass:   &ScrubReport{Finished: finished, Seconds: 60, Objects: 100, ShardsRebuilt: 5, MovesPlanned: 8, MovesDone: 2},
		NextPass:   time.Now().Add(23 * time.Hour),
	}
	cases := []struct {
		name    string
		scrub   ScrubSource
		want    []string
		notWant []string
	}{
		{
			name:  "with a scrubber",
			scrub: fakeScrub{st: scrub},
			want: []string{
				`data-epoch="7"`, `data-zone="a"`, `data-zone="c"`,
				`data-node="n1" data-seen="up" data-answered="true" data-objects="42"`,
				`data-node="n2" data-seen="down" data-answered="false"`,
				`data-node="n3" data-seen="suspect" data-answered="false"`,
				`data-node="n4" data-seen="untracked"`,
				"25.0 GiB of 100.0 GiB", "connection refused", "as seen by this gateway",
				`data-level="5"`, "2h00m of a 24h00m window", "2 of 8 done", "repairs in flight</dt><dd>3",
				"measured: scrub interval", `data-chart="p99"`,
			},
			notWant: []string{`data-scrub="unknown"`},
		},
		{
			name:    "without a scrubber",
			want:    []string{`data-scrub="unknown"`, "no scrubber daemon named", `data-nines="unknown"`, "assumed (--repair-window)"},
			notWant: []string{`data-level=`},
		},
		{
			name:  "scrubber not answering",
			scrub: fakeScrub{err: errors.New("dial tcp: connection refused")},
			want:  []string{`data-scrub="unknown"`, "the scrubber did not answer"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			con, err := New(Config{
				Map: fakeMap{testMap()}, Health: seen, NodeHealth: nodeHealth, NodeTimeout: 200 * time.Millisecond,
				Scrubber: c.scrub, Requests: NewCounter(nil).Sample,
			})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			code, body := get(t, con.Handler(), "/")
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("page took %v with one node stopped; want about one node deadline", took)
			}
			if code != http.StatusOK {
				t.Fatalf("GET /: %d\n%s", code, body)
			}
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(body, w) {
					t.Errorf("page has %q", w)
				}
			}
			for _, path := range []string{"/console", "/console/panel", "/console/static/console.css", "/console/static/console.js"} {
				if code, _ := get(t, con.Handler(), path); code != http.StatusOK {
					t.Errorf("GET %s: %d", path, code)
				}
			}
		})
	}
}

// TestAuth: with credentials, every path wants the access key as user and
// its secret as password.
func TestAuth(t *testing.T) {
	con, err := New(Config{
		Map: fakeMap{testMap()}, Health: fakeHealth{}, NodeHealth: nodeHealth, NodeTimeout: 10 * time.Millisecond,
		Credentials: secrets{"AKID": "s3cret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		auth []string
		want int
	}{
		{"none", nil, http.StatusUnauthorized},
		{"wrong secret", []string{"AKID", "guess"}, http.StatusUnauthorized},
		{"unknown key", []string{"OTHER", "s3cret"}, http.StatusUnauthorized},
		{"empty", []string{"", ""}, http.StatusUnauthorized},
		{"right", []string{"AKID", "s3cret"}, http.StatusOK},
	}
	for _, c := range cases {
		for _, path := range []string{"/", "/console/panel", "/console/static/console.css"} {
			if code, _ := get(t, con.Handler(), path, c.auth...); code != c.want {
				t.Errorf("%s: GET %s: %d, want %d", c.name, path, code, c.want)
			}
		}
	}
}

type secrets map[string]string

func (s secrets) Secret(k string) (string, bool) { v, ok := s[k]; return v, ok }

func TestLoopback(t *testing.T) {
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:9200", true},
		{"127.0.0.2:9200", true},
		{"[::1]:9200", true},
		{"localhost:9200", true},
		{"0.0.0.0:9200", false},
		{"[::]:9200", false},
		{":9200", false},
		{"10.0.0.1:9200", false},
		{"example.com:9200", false},
		{"nonsense", false},
	} {
		if got := Loopback(c.addr); got != c.want {
			t.Errorf("Loopback(%q) = %v, want %v", c.addr, got, c.want)
		}
	}
}

// TestCounterPoints counts requests through the middleware on a fake
// clock and reads rates, errors and p99 back from the ring.
func TestCounterPoints(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	c := NewCounter(clock)
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.URL.Query().Get("took"))
		now.Add(int64(d))
		if r.URL.Query().Has("fail") {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	r := newRing(4)
	r.add(c.Sample())
	// 100 requests in the first 10s: 98 of 1.5ms, 2 failing after 300ms.
	for range 98 {
		get(t, h, "/?took=1.5ms")
	}
	get(t, h, "/?took=300ms&fail")
	get(t, h, "/?took=300ms&fail")
	now.Store(clock().Add(10*time.Second - 98*1500*time.Microsecond - 600*time.Millisecond).UnixNano())
	r.add(c.Sample())
	// Then 10s with nothing.
	now.Add(int64(10 * time.Second))
	r.add(c.Sample())

	pts := r.points()
	if len(pts) != 2 {
		t.Fatalf("%d points, want 2", len(pts))
	}
	if p := pts[0]; p.Rate != 10 || p.Errors != 0.2 || !p.P99Known {
		t.Errorf("first interval %+v, want 10 req/s, 0.2 errors/s, a p99", p)
	}
	// The 99th of 100 requests is one of the two in the 200-500ms bucket:
	// rank 99 is halfway through it, 200ms + (99-98)/2 × 300ms = 350ms.
	if got := pts[0].P99; got != 350*time.Millisecond {
		t.Errorf("p99 %v, want 350ms", got)
	}
	if p := pts[1]; p.Rate != 0 || p.P99Known {
		t.Errorf("idle interval %+v, want no requests and no p99", p)
	}
	// The ring keeps its last 4 samples, oldest first.
	for range 5 {
		now.Add(int64(time.Second))
		r.add(c.Sample())
	}
	if pts := r.points(); len(pts) != 3 || !pts[0].At.Before(pts[2].At) {
		t.Errorf("after wrapping: %d points, want 3 in time order", len(pts))
	}
}

// TestCounterKeepsConnectionControl: the gateway sets per-read deadlines
// through http.ResponseController; the counter's writer must not hide the
// connection from it.
func TestCounterKeepsConnectionControl(t *testing.T) {
	c := NewCounter(nil)
	errc := make(chan error, 1)
	srv := httptest.NewServer(c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		errc <- http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Minute))
	})))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-errc; err != nil {
		t.Errorf("SetReadDeadline through the counter: %v", err)
	}
	if s := c.Sample(); s.Requests != 1 || s.Errors != 0 {
		t.Errorf("sample %+v, want one request, no error", s)
	}
}

// TestScrubStatusWire decodes what a scrubber daemon serves, so that a
// renamed field of scrubber.Status fails here rather than showing zeros.
func TestScrubStatusWire(t *testing.T) {
	fin := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	in := scrubber.Status{
		Running: true, RepairsInFlight: 2, MovesInFlight: 1, MapEpoch: 9, IntervalSeconds: 3600,
		NextPass: fin.Add(time.Hour), OldestUnverifiedSeconds: 12,
		Progress:   &scrubber.Progress{Phase: "objects", Objects: 5, Estimated: 10, MovesPlanned: 4, MovesDone: 3},
		Redundancy: scrubber.Levels(map[int]int64{6: 8, 5: 1, 2: 1}, 4, 6),
		LastPass:   &scrubber.Report{Finished: fin, Seconds: 30, Objects: 10, ShardsRebuilt: 3, MovesDone: 1},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()
	st, err := (&HTTPScrubber{BaseURL: srv.URL + "/"}).ScrubStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running || st.RepairsInFlight != 2 || st.MovesInFlight != 1 || st.MapEpoch != 9 || st.IntervalSeconds != 3600 ||
		!st.NextPass.Equal(in.NextPass) || st.OldestUnverifiedSeconds != 12 ||
		st.Progress == nil || st.Progress.Objects != 5 || st.Progress.MovesDone != 3 ||
		st.LastPass == nil || !st.LastPass.Finished.Equal(fin) || st.LastPass.ShardsRebuilt != 3 || st.LastPass.MovesDone != 1 {
		t.Errorf("decoded %+v", st)
	}
	if got, want := st.RepairWindow(), time.Hour+30*time.Second; got != want {
		t.Errorf("repair window %v, want %v", got, want)
	}
	levels := st.Levels(4, 6)
	want := []LevelCount{{6, 8}, {5, 1}, {4, 0}, {3, 1}}
	if len(levels) != len(want) {
		t.Fatalf("levels %v, want %v", levels, want)
	}
	for i := range want {
		if levels[i] != want[i] {
			t.Errorf("levels %v, want %v", levels, want)
			break
		}
	}
}
