package main

import (
	"context"
	"flag"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kintsugi-store/kintsugi/gateway"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/scrubber"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// frontConfig is what the S3 front end needs. The gateway, dev and server
// commands build the same front end; they differ only in where the map,
// the nodes and the credentials come from.
type frontConfig struct {
	m          *placement.Map
	opts       *client.Options
	creds      sigv4.StaticCredentials
	region     string
	domain     string
	listen     string
	tlsCert    string
	tlsKey     string
	slowClient time.Duration
	minRate    int64
	// probe is the heartbeat of the node health tracker.
	probe func(context.Context, string) error
	// dial, if set, makes the store's node clients (objects.Config.Dial).
	dial func(placement.Node) client.Node
	hf   *healthFlags
	reg  *prometheus.Registry
	now  func() time.Time
}

// front is a running S3 front end: the object store over the nodes, their
// health, and the S3 listener.
type front struct {
	store   *objects.Store
	tracker *health.Tracker
	srv     *server
	reg     *prometheus.Registry
	creds   sigv4.StaticCredentials
	opts    *client.Options
}

// newFront wires the object store, node health and the S3 handler, and
// listens on c.listen. Nothing runs until start.
func newFront(env *environ, c frontConfig) (*front, error) {
	// A stopped node is skipped at once, slow data shards are hedged,
	// stragglers not waited for.
	hcfg, err := c.hf.config(env, c.probe, c.reg)
	if err != nil {
		return nil, err
	}
	tracker, err := health.New(hcfg)
	if err != nil {
		return nil, err
	}
	store, err := objects.New(objects.Config{
		Map:           c.m,
		Dial:          c.dial,
		ClientOptions: c.opts,
		Logger:        env.logger,
		Health:        tracker,
		Now:           c.now,
		Registerer:    c.reg,
	})
	if err != nil {
		return nil, err
	}
	c.reg.MustRegister(mapEpochGauge("kintsugi_gateway_map_epoch", "Epoch of the cluster map this gateway routes by.", store))
	cfg := gateway.DefaultConfig()
	cfg.Backend = store
	cfg.Region = c.region
	cfg.Domain = c.domain
	cfg.SlowClientTimeout = c.slowClient
	cfg.MinBodyRate = c.minRate
	cfg.Logger = env.logger
	cfg.Registerer = c.reg
	cfg.Auth = &sigv4.Verifier{Creds: c.creds, Region: c.region, Now: c.now}
	gw, err := gateway.New(cfg)
	if err != nil {
		return nil, err
	}
	srv, err := newServer("gateway", c.listen, withProbes(gw.Handler(), gatewayReady(store)), env.logger)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	if err := srv.useTLS(c.tlsCert, c.tlsKey); err != nil {
		srv.ln.Close()
		return nil, err
	}
	return &front{store: store, tracker: tracker, srv: srv, reg: c.reg, creds: c.creds, opts: c.opts}, nil
}

// start runs the health heartbeats and the sweeper of stale uploads
// until ctx ends.
func (f *front) start(ctx context.Context, env *environ, sf *s3Flags) {
	go f.tracker.Run(ctx)
	go sweepUploads(ctx, env.logger, f.store, *sf.uploadSweep, *sf.uploadExpiry, *sf.lifecycleDay)
}

// serveConsole puts the console, /metrics (of the shared registry), /nodes
// and the probes on msrv; scrubURL is the scrubber's base URL, or empty.
func (f *front) serveConsole(ctx context.Context, env *environ, cf *consoleFlags, msrv *server, scrubURL string) error {
	con, err := cf.newConsole(env, consoleDeps{maps: f.store, tracker: f.tracker, opts: f.opts, creds: f.creds,
		requests: requestSamples(f.reg, time.Now), scrubber: scrubURL, addr: msrv.Addr()})
	if err != nil {
		msrv.ln.Close()
		return err
	}
	msrv.srv.Handler = withProbes(withConsole(metricsHandler(f.reg, f.tracker, f.store), con.Handler()), gatewayReady(f.store))
	go con.Run(ctx)
	return nil
}

// s3Flags are the flags of the S3 front end that gateway, dev and server
// share.
type s3Flags struct {
	region       *string
	domain       *string
	uploadExpiry *time.Duration
	uploadSweep  *time.Duration
	slowClient   *time.Duration
	minRate      *int64
	lifecycleDay *time.Duration
}

func addS3Flags(fs *flag.FlagSet) *s3Flags {
	return &s3Flags{
		region:       fs.String("region", "us-east-1", "S3 region the gateway answers for"),
		domain:       fs.String("domain", "", "domain for virtual-hosted–style requests (<bucket>.DOMAIN); comma-separated for several"),
		uploadExpiry: fs.Duration("upload-expiry", objects.DefaultUploadExpiry, "age after which an unfinished multipart upload is aborted"),
		uploadSweep:  fs.Duration("upload-sweep", time.Hour, "how often to abort stale uploads and free unused parts (0: never)"),
		slowClient:   fs.Duration("slow-client-timeout", gateway.DefaultSlowClient, "longest wait for a client to send or take body bytes before RequestTimeout (negative: no limit)"),
		minRate:      fs.Int64("min-body-rate", gateway.DefaultMinBodyRate, "slowest average upload, bytes/s, once the slow-client timeout has passed (negative: no limit)"),
		lifecycleDay: fs.Duration("lifecycle-day", scrubber.DefaultLifecycleDay, "how long a day of the buckets' lifecycle rules lasts, for the upload sweep (and an embedded scrubber); shorten it only to test rules"),
	}
}

// frontConfig fills the front end's settings from the flags.
func (f *s3Flags) frontConfig(c frontConfig) frontConfig {
	c.region, c.domain, c.slowClient, c.minRate = *f.region, *f.domain, *f.slowClient, *f.minRate
	return c
}

// credentialsOrGenerated loads the S3 key pairs; with none configured it
// makes one for this run and logs it, so that a first start can be used.
func credentialsOrGenerated(env *environ, file string) (sigv4.StaticCredentials, error) {
	creds, err := loadCredentials(env, file)
	if err != nil {
		return nil, err
	}
	if len(creds) == 0 {
		ak, sk := "kintsugi-"+randomToken(4), randomToken(20)
		creds[ak] = sk
		env.logger.Warn("no credentials configured; generated a key pair for this run",
			"access_key", ak, "secret_key", sk)
	}
	return creds, nil
}
