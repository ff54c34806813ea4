package main

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"os"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/clock"
	"github.com/kintsugi-store/kintsugi/placement"
)

func runGateway(ctx context.Context, env *environ, args []string) error {
	fs := flag.NewFlagSet("kintsugi gateway", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9000", "address to serve S3 on")
	clusterFile := fs.String("cluster", "", "cluster map file (YAML, required); re-read when it changes")
	credFile := fs.String("credentials", "", "file of \"ACCESS_KEY SECRET_KEY\" lines (adds to $KINTSUGI_ACCESS_KEY/$KINTSUGI_SECRET_KEY)")
	secretFile := fs.String("secret-file", "", "file holding the cluster secret (default: $KINTSUGI_CLUSTER_SECRET)")
	poll := fs.Duration("map-poll", 2*time.Second, "how often to check the cluster file for a newer epoch")
	tlsCert := fs.String("tls-cert", "", "PEM certificate to serve S3 over HTTPS (with --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	caFile := fs.String("ca-file", "", "PEM CA certificates to trust for nodes at https:// addresses (default: system roots)")
	sf := addS3Flags(fs)
	metricsAddr := fs.String("metrics-listen", "", "address to serve /metrics (Prometheus), /nodes (node health, JSON) and the console (/) on; empty: off")
	pprofAddr := fs.String("pprof", "", "loopback address to serve Go runtime profiles on, under /debug/pprof/ (off when empty)")
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
	creds, err := credentialsOrGenerated(env, *credFile)
	if err != nil {
		return err
	}
	opts, err := nodeClientOptions(secret, *caFile)
	if err != nil {
		return err
	}
	// The tracker's probe needs the store's map and the store needs the
	// tracker: the probe's store is set before heartbeats start.
	ms := newMapSync(nil, opts, env.logger)
	f, err := newFront(env, sf.frontConfig(frontConfig{m: m, opts: opts, creds: creds, listen: *listen,
		tlsCert: *tlsCert, tlsKey: *tlsKey, probe: ms.probe, hf: hf, reg: newRegistry(), now: now}))
	if err != nil {
		return err
	}
	ms.store = f.store
	servers := []*server{f.srv}
	kv := []string{"epoch", itoa(m.Epoch)}
	if *metricsAddr != "" {
		msrv, err := newServer("gateway metrics", *metricsAddr, nil, env.logger)
		if err != nil {
			return usageErr("--metrics-listen: %v", err)
		}
		if err := f.serveConsole(ctx, env, cf, msrv, *cf.scrubber); err != nil {
			return err
		}
		servers = append(servers, msrv)
		kv = append(kv, "metrics", msrv.Addr())
		env.logger.Info("serving the console", "url", "http://"+msrv.Addr()+"/")
	}
	if servers, kv, err = withPprof(*pprofAddr, env.logger, servers, kv); err != nil {
		return err
	}
	go watchMap(ctx, env.logger, *clusterFile, *poll, f.store)
	f.start(ctx, env, sf)
	go ms.run(ctx)
	go watchRaftMap(ctx, env.logger, f.store, opts)
	ready(env, "gateway", f.srv.Addr(), kv...)
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
	clock.Every(ctx, nil, every, func() {
		b, err := os.ReadFile(path)
		if err != nil || bytes.Equal(b, last) {
			return
		}
		last = b
		m, err := placement.Parse(b)
		if err != nil {
			logger.Warn("cluster file changed but does not validate; keeping the current map", "file", path, "err", err)
			return
		}
		if cur := s.Map(); m.Epoch > cur.Epoch {
			s.SetMap(m)
			logger.Info("installed new cluster map", "epoch", m.Epoch, "previous", cur.Epoch, "nodes", len(m.Nodes))
		}
	})
}
