package console

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/clock"
	"github.com/kintsugi-store/kintsugi/internal/fanout"
	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

//go:embed assets
var assets embed.FS

// Defaults for Config.
const (
	DefaultNodeTimeout = time.Second
	DefaultSampleEvery = 5 * time.Second
	// DefaultSamples keeps ten minutes of samples at DefaultSampleEvery.
	DefaultSamples = 121
	// minCollect is the least time between two collections: page loads
	// and refreshes within it share one round of node calls.
	minCollect = time.Second
)

// MapSource is the gateway's current cluster map.
type MapSource interface {
	Map() *placement.Map
}

// HealthSource is the gateway's view of its nodes (health.Tracker).
type HealthSource interface {
	Status() []health.NodeStatus
}

// Secrets looks up the secret of an access key
// (sigv4.StaticCredentials has this method).
type Secrets interface {
	Secret(accessKey string) (secret string, ok bool)
}

// Config configures a Console. Map and Health are required.
type Config struct {
	Map    MapSource
	Health HealthSource
	// NodeHealth asks one node for its health answer; nil asks it with
	// storagenode/client and ClientOptions.
	NodeHealth    func(ctx context.Context, n placement.Node) (client.Health, error)
	ClientOptions *client.Options
	// NodeTimeout bounds each node's health call (and the scrubber's
	// status call): a stopped node costs the page that long, no more,
	// since the calls run in parallel.
	NodeTimeout time.Duration
	// Scrubber, if set, supplies redundancy, scrub coverage and repairs;
	// without it they show as unknown.
	Scrubber ScrubSource
	// Requests reads the gateway's request counters; nil: no charts.
	Requests    func() Sample
	SampleEvery time.Duration
	Samples     int
	// DriveAFR is the annual failure rate of one node's drive assumed by
	// the durability estimate; RepairWindow the time a lost shard is
	// assumed to stay lost when the scrubber has not measured it.
	DriveAFR     float64
	RepairWindow time.Duration
	// Credentials, if set, must be given (HTTP basic auth: access key and
	// secret) to see the console.
	Credentials Secrets
	Now         func() time.Time
	Logger      *slog.Logger
}

// Console serves the console page. Run must be running for the rate
// charts to fill.
type Console struct {
	cfg   Config
	tmpl  *template.Template
	ring  *ring
	cache struct {
		sync.Mutex
		at   time.Time
		view *view
	}
}

// New returns a Console for cfg, with zero fields set to their defaults.
func New(cfg Config) (*Console, error) {
	const op = "console.New"
	if cfg.Map == nil || cfg.Health == nil {
		return nil, kerr.E(op, kerr.Invalid, errors.New("Map and Health are required"))
	}
	if cfg.NodeHealth == nil {
		opts := cfg.ClientOptions
		cfg.NodeHealth = func(ctx context.Context, n placement.Node) (client.Health, error) {
			return client.New(n.Addr, opts).Health(ctx)
		}
	}
	cfg.NodeTimeout = cmp.Or(cfg.NodeTimeout, DefaultNodeTimeout)
	cfg.SampleEvery = cmp.Or(cfg.SampleEvery, DefaultSampleEvery)
	cfg.Samples = max(cmp.Or(cfg.Samples, DefaultSamples), 2)
	if cfg.DriveAFR < 0 || cfg.DriveAFR >= 1 {
		return nil, kerr.E(op, kerr.Invalid, errors.New("DriveAFR must be in [0, 1)"))
	}
	cfg.DriveAFR = cmp.Or(cfg.DriveAFR, DefaultDriveAFR)
	cfg.RepairWindow = cmp.Or(cfg.RepairWindow, DefaultRepairWindow)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tmpl, err := template.New("console").Funcs(funcs).ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, kerr.E(op, kerr.Internal, err)
	}
	return &Console{cfg: cfg, tmpl: tmpl, ring: newRing(cfg.Samples)}, nil
}

// Run samples the request counters every SampleEvery until ctx is done.
func (c *Console) Run(ctx context.Context) {
	if c.cfg.Requests == nil {
		return
	}
	sample := func() { c.ring.add(c.cfg.Requests()) }
	sample()
	clock.Every(ctx, nil, c.cfg.SampleEvery, sample)
}

// Handler serves the page at / and /console, the part of it that
// refreshes at /console/panel, and its stylesheet and script under
// /console/static/. With Credentials set every one of them asks for
// them.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.page)
	mux.HandleFunc("GET /console", c.page)
	mux.HandleFunc("GET /console/panel", c.panel)
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	if c.cfg.Credentials == nil {
		return mux
	}
	return c.authenticate(mux)
}

// authenticate asks for the access key as user and its secret as
// password, comparing secrets in constant time.
func (c *Console) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		secret, known := c.cfg.Credentials.Secret(user)
		if !known {
			// Compare anyway, so that an unknown key takes as long.
			secret = "\x00no such key\x00"
		}
		if !ok || subtle.ConstantTimeCompare([]byte(pass), []byte(secret)) != 1 || !known {
			w.Header().Set("WWW-Authenticate", `Basic realm="kintsugi console", charset="UTF-8"`)
			http.Error(w, "the console wants an S3 access key and its secret", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (c *Console) page(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, "page")
}

func (c *Console) panel(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, "panel")
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, name string) {
	v := c.snapshot(r.Context())
	var buf bytes.Buffer
	if err := c.tmpl.ExecuteTemplate(&buf, name, v); err != nil {
		c.cfg.Logger.Error("console: rendering the page", "err", err)
		http.Error(w, "could not render the console", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// snapshot returns the view of the cluster, collecting it anew unless the
// last one is younger than minCollect.
func (c *Console) snapshot(ctx context.Context) *view {
	c.cache.Lock()
	defer c.cache.Unlock()
	now := c.cfg.Now()
	if c.cache.view != nil && now.Sub(c.cache.at) < minCollect && now.After(c.cache.at) {
		return c.cache.view
	}
	// The view is shared by every page for a moment: one client going
	// away must not leave the others a view of nodes that "failed".
	v := c.collect(context.WithoutCancel(ctx))
	c.cache.at, c.cache.view = now, v
	return v
}

// collect asks every node of the map and the scrubber at once, each under
// NodeTimeout, and builds the page's view from their answers, the
// gateway's node health and the rate samples.
func (c *Console) collect(ctx context.Context) *view {
	m := c.cfg.Map.Map()
	answers := make([]nodeAnswer, len(m.Nodes))
	var scrub *ScrubStatus
	var scrubErr error
	var wg sync.WaitGroup
	if c.cfg.Scrubber != nil {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, 2*c.cfg.NodeTimeout)
			defer cancel()
			scrub, scrubErr = c.cfg.Scrubber.ScrubStatus(sctx)
		})
	}
	fanout.Each(len(m.Nodes), 0, func(i int) {
		n := m.Nodes[i]
		if n.State == placement.StateRemoved {
			answers[i].skipped = true
			return
		}
		nctx, cancel := context.WithTimeout(ctx, c.cfg.NodeTimeout)
		defer cancel()
		answers[i].h, answers[i].err = c.cfg.NodeHealth(nctx, n)
	})
	wg.Wait()
	return c.build(m, answers, c.cfg.Health.Status(), scrub, scrubErr)
}

// nodeAnswer is one node's answer to its health call.
type nodeAnswer struct {
	h       client.Health
	err     error
	skipped bool // a removed node is never asked
}

// Loopback reports whether addr (host:port) listens on loopback only. An
// empty host, or one that is not an IP address other than localhost,
// listens beyond it.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sortedZones returns the zones of nodes in name order.
func sortedZones(nodes []nodeRow) []string {
	var zones []string
	for _, n := range nodes {
		if !slices.Contains(zones, n.Zone) {
			zones = append(zones, n.Zone)
		}
	}
	slices.Sort(zones)
	return zones
}
