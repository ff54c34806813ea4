package main

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"os"
	"time"

	"github.com/kintsugi-store/kintsugi/gateway"
	"github.com/kintsugi-store/kintsugi/gateway/console"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/placement"
)

func runGateway(ctx context.Context, env *environ, args []string) error {
	fs := flag.NewFlagSet("kintsugi gateway", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9000", "address to serve S3 on")
	clusterFile := fs.String("cluster", "", "cluster map file (YAML, required); re-read when it changes")
	region := fs.String("region", "us-east-1", "S3 region the gateway answers for")
	credFile := fs.String("credentials", "", "file of \"ACCESS_KEY SECRET_KEY\" lines (adds to $KINTSUGI_ACCESS_KEY/$KINTSUGI_SECRET_KEY)")
	secretFile := fs.String("secret-file", "", "file holding the cluster secret (default: $KINTSUGI_CLUSTER_SECRET)")
	poll := fs.Duration("map-poll", 2*time.Second, "how often to check the cluster file for a newer epoch")
	domain := fs.String("domain", "", "domain for virtual-hosted–style requests (<bucket>.DOMAIN); comma-separated for several")
	tlsCert := fs.String("tls-cert", "", "PEM certificate to serve S3 over HTTPS (with --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	caFile := fs.String("ca-file", "", "PEM CA certificates to trust for nodes at https:// addresses (default: system roots)")
	uploadExpiry := fs.Duration("upload-expiry", objects.DefaultUploadExpiry, "age after which an unfinished multipart upload is aborted")
	uploadSweep := fs.Duration("upload-sweep", time.Hour, "how often to abort stale uploads and free unused parts (0: never)")
	slowClient := fs.Duration("slow-client-timeout", gateway.DefaultSlowClient, "longest wait for a client to send or take body bytes before RequestTimeout (negative: no limit)")
	minRate := fs.Int64("min-body-rate", gateway.DefaultMinBodyRate, "slowest average upload, bytes/s, once the slow-client timeout has passed (negative: no limit)")
	metricsAddr := fs.String("metrics-listen", "", "address to serve /metrics (Prometheus), /nodes (node health, JSON) and the console (/) on; empty: off")
	hf := addHealthFlags(fs)
	cf := addConsoleFlags(fs, true)
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	if *clusterFile == "" {
		return usageErr("--cluster is required")
	}
	if err := cf.validate(); err != nil {
		return err
	}
	now, err := processClock(env)
	if err != nil {
		return err
	}
	m, err := placement.Load(*clusterFile)
	if err != nil {
		return usageErr("%v", err)
	}
	secret, err := clusterSecret(env, *secretFile)
	if err != nil {
		return err
	}
	creds, err := loadCredentials(env, *credFile)
	if err != nil {
		return err
	}
	if len(creds) == 0 {
		ak, sk := "kintsugi-"+randomToken(4), randomToken(20)
		creds[ak] = sk
		env.logger.Warn("no credentials configured; generated a key pair for this run",
			"access_key", ak, "secret_key", sk)
	}
	opts, err := nodeClientOptions(secret, *caFile)
	if err != nil {
		return err
	}
	// The tracker's probe needs the store's map and the store needs the
	// tracker: the probe's store is set before heartbeats start.
	ms := newMapSync(nil, opts, env.logger)
	reg := newRegistry()
	hcfg, err := hf.config(env, ms.probe, reg)
	if err != nil {
		return err
	}
	tracker, err := health.New(hcfg)
	if err != nil {
		return err
	}
	store, err := objects.New(objects.Config{
		Map:           m,
		ClientOptions: opts,
		Logger:        env.logger,
		Health:        tracker,
		Now:           now,
		Registerer:    reg,
	})
	if err != nil {
		return err
	}
	ms.store = store
	reg.MustRegister(mapEpochGauge("kintsugi_gateway_map_epoch", "Epoch of the cluster map this gateway routes by.", store))
	cfg := gateway.DefaultConfig()
	cfg.Backend = store
	cfg.Region = *region
	cfg.Domain = *domain
	cfg.SlowClientTimeout = *slowClient
	cfg.MinBodyRate = *minRate
	cfg.Logger = env.logger
	cfg.Registerer = reg
	cfg.Auth = &sigv4.Verifier{Creds: creds, Region: *region, Now: now}
	gw, err := gateway.New(cfg)
	if err != nil {
		return err
	}
	// The console's request charts count what reaches the S3 layer;
	// health probes do not.
	counter := console.NewCounter(nil)
	srv, err := newServer("gateway", *listen, withProbes(counter.Wrap(gw.Handler()), gatewayReady(store)), env.logger)
	if err != nil {
		return usageErr("%v", err)
	}
	if err := srv.useTLS(*tlsCert, *tlsKey); err != nil {
		return err
	}
	servers := []*server{srv}
	kv := []string{"epoch", itoa(m.Epoch)}
	if *metricsAddr != "" {
		msrv, err := newServer("gateway metrics", *metricsAddr, nil, env.logger)
		if err != nil {
			return usageErr("--metrics-listen: %v", err)
		}
		con, err := cf.newConsole(env, consoleDeps{maps: store, tracker: tracker, opts: opts, creds: creds,
			counter: counter, scrubber: *cf.scrubber, addr: msrv.Addr()})
		if err != nil {
			msrv.ln.Close()
			return err
		}
		msrv.srv.Handler = withProbes(withConsole(metricsHandler(reg, tracker, store), con.Handler()), gatewayReady(store))
		servers = append(servers, msrv)
		kv = append(kv, "metrics", msrv.Addr())
		go con.Run(ctx)
		env.logger.Info("serving the console", "url", "http://"+msrv.Addr()+"/")
	}
	go watchMap(ctx, env.logger, *clusterFile, *poll, store)
	go sweepUploads(ctx, env.logger, store, *uploadSweep, *uploadExpiry)
	go tracker.Run(ctx)
	go ms.run(ctx)
	go watchRaftMap(ctx, env.logger, store, opts)
	ready(env, "gateway", srv.Addr(), kv...)
	return serveAll(ctx, env.logger, servers...)
}

// mapSetter is the part of the object store that takes a new cluster map.
type mapSetter interface {
	Map() *placement.Map
	SetMap(*placement.Map)
}

// watchMap polls the cluster file and installs any map with a higher
// epoch. Polling (not inotify) keeps it working on every filesystem and
// with editors that replace files; a few seconds of lag is harmless because
// readers consult both the new and the previous placement. Gateways whose
// file is not updated learn new epochs from the nodes instead (mapSync).
func watchMap(ctx context.Context, logger *slog.Logger, path string, every time.Duration, s mapSetter) {
	if every <= 0 {
		return
	}
	var last []byte
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b, err := os.ReadFile(path)
		if err != nil || bytes.Equal(b, last) {
			continue
		}
		last = b
		m, err := placement.Parse(b)
		if err != nil {
			logger.Warn("cluster file changed but does not validate; keeping the current map", "file", path, "err", err)
			continue
		}
		if cur := s.Map(); m.Epoch > cur.Epoch {
			s.SetMap(m)
			logger.Info("installed new cluster map", "epoch", m.Epoch, "previous", cur.Epoch, "nodes", len(m.Nodes))
		}
	}
}
