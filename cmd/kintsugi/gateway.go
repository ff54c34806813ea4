package main

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"os"
	"time"

	"github.com/kintsugi-store/kintsugi/gateway"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

func runGateway(ctx context.Context, env *environ, args []string) error {
	fs := flag.NewFlagSet("kintsugi gateway", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9000", "address to serve S3 on")
	clusterFile := fs.String("cluster", "", "cluster map file (YAML, required); re-read when it changes")
	region := fs.String("region", "us-east-1", "S3 region the gateway answers for")
	credFile := fs.String("credentials", "", "file of \"ACCESS_KEY SECRET_KEY\" lines (adds to $KINTSUGI_ACCESS_KEY/$KINTSUGI_SECRET_KEY)")
	secretFile := fs.String("secret-file", "", "file holding the cluster secret (default: $KINTSUGI_CLUSTER_SECRET)")
	poll := fs.Duration("map-poll", 2*time.Second, "how often to check the cluster file for a newer epoch")
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	if *clusterFile == "" {
		return usageErr("--cluster is required")
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
	store, err := objects.New(objects.Config{
		Map:           m,
		ClientOptions: &client.Options{Secret: secret},
		Logger:        env.logger,
	})
	if err != nil {
		return err
	}
	cfg := gateway.DefaultConfig()
	cfg.Backend = store
	cfg.Region = *region
	cfg.Logger = env.logger
	cfg.Auth = &sigv4.Verifier{Creds: creds, Region: *region}
	gw, err := gateway.New(cfg)
	if err != nil {
		return err
	}
	srv, err := newServer("gateway", *listen, gw.Handler(), env.logger)
	if err != nil {
		return usageErr("%v", err)
	}
	go watchMap(ctx, env.logger, *clusterFile, *poll, store)
	ready(env, "gateway", srv.Addr(), "epoch", itoa(m.Epoch))
	return serveAll(ctx, env.logger, srv)
}

// mapSetter is the part of the object store that takes a new cluster map.
type mapSetter interface {
	Map() *placement.Map
	SetMap(*placement.Map)
}

// watchMap polls the cluster file and installs any map with a higher
// epoch. Polling (not inotify) keeps it working on every filesystem and
// with editors that replace files; a few seconds of lag is harmless because
// readers consult both the new and the previous placement.
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
