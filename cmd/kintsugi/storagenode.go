package main

import (
	"context"
	"flag"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/clock"
	"github.com/kintsugi-store/kintsugi/storagenode"
)

func runStorageNode(ctx context.Context, env *environ, args []string) error {
	fs := flag.NewFlagSet("kintsugi storagenode", flag.ContinueOnError)
	id := fs.String("id", "", "node id as named in the cluster map (required)")
	listen := fs.String("listen", "127.0.0.1:9101", "address to serve the internal node API on")
	dir := fs.String("data", "", "data directory (required)")
	secretFile := fs.String("secret-file", "", "file holding the cluster secret (default: $KINTSUGI_CLUSTER_SECRET)")
	grace := fs.Duration("staging-grace", 24*time.Hour, "age after which a staged shard is swept, once a newer version is committed on the node (the scrubber settles the rest)")
	superseded := fs.Duration("superseded-grace", storagenode.DefaultSupersededGrace, "how long an overwritten or deleted version's shards stay readable for reads already under way before the sweep removes them (0: removed at once)")
	hold := fs.Duration("underwritten-hold", storagenode.DefaultUnderwrittenHold, "how much longer an overwritten version's shards stay when the overwrite failed to stage one of its shards, so that a reader or scrub pass can still fall back to them until the new version is repaired (0: no longer than --superseded-grace)")
	sweep := fs.Duration("sweep-interval", 10*time.Minute, "how often to sweep stale staged shards")
	scrubRate := fs.Int64("scrub-rate", storagenode.DefaultScrubRate, "bytes per second the background verifier may re-hash (0 disables it)")
	scrubPeriod := fs.Duration("scrub-period", storagenode.DefaultScrubPeriod, "how often the background verifier starts a full pass over the node's shards")
	inlineMax := fs.Int64("inline-max", storagenode.DefaultInlineMax, "largest shard stream (bytes, frames included) kept in the node's index instead of a file of its own (0: none)")
	packMax := fs.Int64("pack-max", storagenode.DefaultPackMax, "largest shard stream (bytes, frames included) appended to a shared pack file instead of a file of its own (0: none)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate to serve the node API over HTTPS (with --tls-key); name the node https://HOST:PORT in the map")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	metricsAddr := fs.String("metrics-listen", "", "address to serve /metrics (Prometheus), /healthz and /readyz on, unauthenticated; empty: off")
	pprofAddr := fs.String("pprof", "", "loopback address to serve Go runtime profiles on, under /debug/pprof/ (off when empty)")
	rf := addRaftFlags(fs)
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	// A node has no clock seam yet (it stamps with time.Now), so the
	// offset is only checked here, and not logged as applied: a bad value
	// must fail every process alike, not just the gateways.
	if _, err := clock.FromEnv(env.getenv); err != nil {
		return usageErr("%v", err)
	}
	secret, err := clusterSecret(env, *secretFile)
	if err != nil {
		return err
	}
	cfg := storagenode.DefaultConfig()
	cfg.ID = *id
	cfg.Dir = *dir
	cfg.Secret = secret
	cfg.StagingGrace = *grace
	cfg.SupersededGrace = *superseded
	cfg.UnderwrittenHold = *hold
	cfg.SweepInterval = *sweep
	cfg.ScrubRate = *scrubRate
	cfg.ScrubPeriod = *scrubPeriod
	cfg.InlineMax = *inlineMax
	cfg.PackMax = *packMax
	cfg.Logger = env.logger.With("node", *id)
	reg := newRegistry()
	cfg.Registerer = nodeRegisterer(reg, *id)
	if err := cfg.Validate(); err != nil {
		return usageErr("%v", err)
	}
	if secret == nil {
		env.logger.Warn("no cluster secret: node API is unauthenticated; set KINTSUGI_CLUSTER_SECRET")
	}
	node, err := storagenode.Open(cfg)
	if err != nil {
		return err
	}
	defer node.Close()
	closeRaft, err := rf.start(cfg.Logger, node, *id, *dir, secret, *tlsCert, *tlsKey)
	if err != nil {
		return err
	}
	defer closeRaft()
	srv, err := newServer("storagenode "+*id, *listen, withProbes(node.Handler(), nil), env.logger)
	if err != nil {
		return usageErr("%v", err)
	}
	if err := srv.useTLS(*tlsCert, *tlsKey); err != nil {
		return err
	}
	servers := []*server{srv}
	kv := []string{"id", *id}
	if *metricsAddr != "" {
		msrv, err := newServer("storagenode "+*id+" metrics", *metricsAddr, withProbes(promHandler(reg), nil), env.logger)
		if err != nil {
			return usageErr("--metrics-listen: %v", err)
		}
		servers = append(servers, msrv)
		kv = append(kv, "metrics", msrv.Addr())
	}
	if servers, kv, err = withPprof(*pprofAddr, env.logger, servers, kv); err != nil {
		return err
	}
	ready(env, "storagenode", srv.Addr(), kv...)
	return serveAll(ctx, env.logger, servers...)
}
