package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/chromedp/chromedp"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
)

// findBrowser returns the path of a Chromium-like browser, or "" with the
// names tried. KINTSUGI_BROWSER names one explicitly.
func findBrowser() (string, string) {
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}
	if b := os.Getenv("KINTSUGI_BROWSER"); b != "" {
		names = []string{b}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, ""
		}
	}
	return "", strings.Join(names, ", ")
}

// requireBrowser returns the browser test needs, or skips it; with
// CI=true a missing browser fails it instead.
func requireBrowser(t *testing.T, test string) string {
	t.Helper()
	browser, tried := findBrowser()
	if browser == "" {
		msg := "NO BROWSER: " + test + " needs Chromium (apt-get install -y chromium); looked for " + tried
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return browser
}

// headlessBrowser starts browser headless for the test and returns its
// context; it is closed when the test ends.
func headlessBrowser(t *testing.T, ctx context.Context, browser string) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		// The test machine may have no network: nothing may dial out.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	return bctx
}

// artifactDir is where tests leave files for people to look at:
// KINTSUGI_TEST_ARTIFACTS if set, else a directory removed after the test.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("KINTSUGI_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestConsoleInBrowser loads a gateway's console in headless Chromium
// against a multi-process cluster (6 nodes, a gateway with a metrics
// listener, a scrubber daemon): the figures on the page must match the
// gateway's /nodes and /metrics and the scrubber's /status, the page must
// fit a phone's width in one column, and after a node is killed (SIGKILL)
// the open page must show it down, in red, within a few seconds, by its
// own refresh. Screenshots are saved (see artifactDir) and their paths
// logged.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and a browser; run without -short")
	}
	browser := requireBrowser(t, "TestConsoleInBrowser")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	artifacts := artifactDir(t)

	c := proctest.StartCluster(t, testBin, proctest.Options{})
	const bucket, objects = "console", 12
	for i := range objects {
		putOnce(t, ctx, c.Endpoint(0), c, bucket, i)
	}
	// The scrubber starts after the writes, so that its first pass, at
	// once, counts them all.
	scrubAddr, err := proctest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	scrub, err := proctest.Start(ctx, "scrubber", c.Bin, filepath.Join(c.Dir, "scrubber.log"), procEnv(c),
		"scrubber", "--cluster", c.MapFile, "--state", filepath.Join(c.Dir, "scrub-state"), "--listen", scrubAddr, "--interval", "1h")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(scrub.Close)
	var st struct {
		Redundancy []struct {
			Level   string `json:"level"`
			Objects int64  `json:"objects"`
		} `json:"redundancy"`
		LastPass *struct{ Objects int64 } `json:"last_pass"`
	}
	waitFor(t, time.Minute, "a finished scrub pass", func() (bool, string) {
		if err := getJSON(ctx, "http://"+scrubAddr+"/status", &st); err != nil {
			return false, err.Error()
		}
		return st.LastPass != nil, fmt.Sprintf("%+v", st)
	})

	g := startHealthGateway(t, c, "console-gateway", c.MapFile, "--scrubber-status", "http://"+scrubAddr)
	t.Cleanup(g.Close)
	g.waitNodeState(t, "n1", "up", 10*time.Second)
	// Traffic through the console's own gateway, for its rate charts.
	for i := range 4 {
		putOnce(t, ctx, "http://"+g.Addr, c, bucket, objects+i)
	}

	bctx := headlessBrowser(t, ctx, browser)
	page := "http://" + g.metrics + "/"
	if err := chromedp.Do(bctx,
		chromedp.EmulateViewport(1280, 1000),
		chromedp.Navigate(page),
		chromedp.WaitVisible(`tr[data-node="n6"]`),
	); err != nil {
		t.Fatalf("loading %s in %s: %v", page, browser, err)
	}
	// eval runs js in the page and decodes its value into out.
	eval := func(js string, out any) {
		t.Helper()
		raw, err := chromedp.Run(bctx, chromedp.Evaluate[json.RawMessage](js))
		if err == nil {
			err = json.Unmarshal(raw, out)
		}
		if err != nil {
			t.Fatalf("evaluating %s: %v", js, err)
		}
	}
	// shot saves the whole page, or with viewport only what the screen
	// shows.
	shot := func(name string, viewport bool) {
		t.Helper()
		take := chromedp.FullScreenshot(100)
		if viewport {
			take = chromedp.CaptureScreenshot()
		}
		png, err := chromedp.Run(bctx, take)
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(artifacts, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}

	// The page against the gateway's own answers.
	var shown struct {
		Epoch string
		Nodes map[string]struct{ Seen, Objects, Answered string }
		Level map[string]string
	}
	readPage := `({
		Epoch: document.querySelector("[data-epoch]").dataset.epoch,
		Nodes: Object.fromEntries([...document.querySelectorAll("tr[data-node]")].map(r =>
			[r.dataset.node, {Seen: r.dataset.seen, Objects: r.dataset.objects, Answered: r.dataset.answered}])),
		Level: Object.fromEntries([...document.querySelectorAll("tr[data-level]")].map(r =>
			[r.dataset.level, r.querySelector(".num").textContent])),
	})`
	eval(readPage, &shown)
	nv, err := g.nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if shown.Epoch != strconv.FormatUint(nv.Epoch, 10) {
		t.Errorf("page shows epoch %s, /nodes %d", shown.Epoch, nv.Epoch)
	}
	states, err := nodeStateMetrics(ctx, g.metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nv.Nodes {
		got := shown.Nodes[n.ID]
		if got.Seen != n.State {
			t.Errorf("page shows %s %q, /nodes %q", n.ID, got.Seen, n.State)
		}
		if want := map[string]string{"0": "up", "1": "suspect", "2": "down"}[states[n.ID]]; got.Seen != want {
			t.Errorf("page shows %s %q, /metrics kintsugi_node_state %s", n.ID, got.Seen, states[n.ID])
		}
		// 4+2 on 6 nodes: every node holds a shard of every object.
		if got.Answered != "true" || got.Objects != strconv.Itoa(objects+4) {
			t.Errorf("page shows %s answered %s with %s objects, want %d", n.ID, got.Answered, got.Objects, objects+4)
		}
	}
	if len(shown.Nodes) != len(c.Map.Nodes) || len(nv.Nodes) != len(c.Map.Nodes) {
		t.Errorf("page shows %d nodes, /nodes %d, the map %d", len(shown.Nodes), len(nv.Nodes), len(c.Map.Nodes))
	}
	for _, l := range st.Redundancy {
		if shown.Level[l.Level] != strconv.FormatInt(l.Objects, 10) {
			t.Errorf("page shows %q objects at level %s, the scrubber %d", shown.Level[l.Level], l.Level, l.Objects)
		}
	}
	if shown.Level["6"] != strconv.Itoa(objects) {
		t.Errorf("page shows %q objects at full redundancy, want the %d scrubbed", shown.Level["6"], objects)
	}
	// The rate charts fill from samples every 5s and the page refreshes
	// itself every 2s: with reads going on, the request chart must show a
	// line of a few intervals and a rate above zero.
	readCtx, stopReads := context.WithCancel(ctx)
	readsDone := make(chan struct{})
	go func() {
		defer close(readsDone)
		cl := s3.New(s3.Options{
			BaseEndpoint: aws.String("http://" + g.Addr), Region: "us-east-1", UsePathStyle: true,
			Credentials:      credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, ""),
			RetryMaxAttempts: 1,
		})
		for i := 0; readCtx.Err() == nil; i++ {
			getBytes(readCtx, cl, bucket, fmt.Sprintf("obj-%d", i%objects))
			time.Sleep(50 * time.Millisecond)
		}
	}()
	var chart struct {
		Latest string
		Points int
	}
	waitFor(t, 30*time.Second, "a request rate on the chart", func() (bool, string) {
		eval(`(() => { const c = document.querySelector('[data-chart="requests"]'), l = c.querySelector("polyline");
			return {Latest: c.dataset.latest, Points: l ? l.points.numberOfItems : 0}; })()`, &chart)
		rate, _ := strconv.ParseFloat(chart.Latest, 64)
		return chart.Points >= 3 && rate > 0, fmt.Sprintf("%+v", chart)
	})
	stopReads()
	<-readsDone
	shot("console-desktop.png", false)

	// A phone: one column, nothing wider than the screen, and every
	// node's state and object count in sight without scrolling sideways.
	var phone struct {
		Columns     string
		ScrollWidth float64
		Width       float64
		BadgeRight  float64
	}
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	eval(`({Columns: getComputedStyle(document.querySelector("main")).gridTemplateColumns,
		ScrollWidth: document.documentElement.scrollWidth, Width: window.innerWidth,
		BadgeRight: Math.max(...[...document.querySelectorAll("tr[data-node] .badge, tr[data-node] .num")].map(b => b.getBoundingClientRect().right))})`, &phone)
	if strings.Count(strings.TrimSpace(phone.Columns), " ") != 0 || phone.ScrollWidth > phone.Width+1 || phone.BadgeRight > phone.Width {
		t.Errorf("on a 390px phone: columns %q, page %vpx wide, node states up to %vpx, in a %vpx window; want one column that fits",
			phone.Columns, phone.ScrollWidth, phone.BadgeRight, phone.Width)
	}
	shot("console-phone.png", true)
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1280, 1000)); err != nil {
		t.Fatal(err)
	}

	// Kill a node; the open page, refreshing itself, must show it down
	// and red within a few seconds, and still answer for the others.
	victim := nodeProc(c, "n3")
	killed := time.Now()
	victim.Kill()
	var row struct{ Seen, Answered, Background string }
	waitFor(t, 10*time.Second, "the page to show n3 down", func() (bool, string) {
		eval(`(() => { const r = document.querySelector('tr[data-node="n3"]');
			return {Seen: r.dataset.seen, Answered: r.dataset.answered,
				Background: getComputedStyle(r.querySelector("td")).backgroundColor}; })()`, &row)
		return row.Seen == "down", fmt.Sprintf("%+v", row)
	})
	t.Logf("the page showed n3 down %v after SIGKILL", time.Since(killed).Round(100*time.Millisecond))
	if row.Answered != "false" {
		t.Errorf("n3 killed, yet the page says it answered: %+v", row)
	}
	if row.Background != "rgb(255, 235, 233)" {
		t.Errorf("n3's row has background %s, want the red of a down node", row.Background)
	}
	g.waitNodeState(t, "n3", "down", time.Second)
	var badge string
	eval(`getComputedStyle(document.querySelector('tr[data-seen-node="n3"] .badge')).backgroundColor`, &badge)
	if badge != "rgb(207, 34, 46)" {
		t.Errorf("n3's health badge is %s, want red", badge)
	}
	eval(readPage, &shown)
	for id, n := range shown.Nodes {
		if id != "n3" && (n.Seen != "up" || n.Answered != "true") {
			t.Errorf("with n3 down the page shows %s as %+v", id, n)
		}
	}
	shot("console-node-down.png", false)
}

// putOnce writes object i of the console test through endpoint.
func putOnce(t *testing.T, ctx context.Context, endpoint string, c *proctest.Cluster, bucket string, i int) {
	t.Helper()
	cl := s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint), Region: "us-east-1", UsePathStyle: true,
		Credentials:      credentials.NewStaticCredentialsProvider(c.AccessKey, c.SecretKey, ""),
		RetryMaxAttempts: 1, HTTPClient: &http.Client{Timeout: time.Minute},
	})
	if i == 0 {
		mustCreateBucket(t, ctx, cl, bucket)
	}
	body := genBytes(int64(i), 64<<10)
	if err := putObject(ctx, cl, bucket, fmt.Sprintf("obj-%d", i), bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatalf("PUT obj-%d: %v", i, err)
	}
}

func getJSON(ctx context.Context, url string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// nodeStateMetrics reads kintsugi_node_state{node=...} from a gateway's
// /metrics: node id to value ("0" up, "1" suspect, "2" down).
func nodeStateMetrics(ctx context.Context, addr string) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, `kintsugi_node_state{node="`)
		if !ok {
			continue
		}
		id, val, ok := strings.Cut(rest, `"} `)
		if ok {
			out[id] = strings.TrimSpace(val)
		}
	}
	return out, sc.Err()
}
