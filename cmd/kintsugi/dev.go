package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kintsugi-store/kintsugi/bench"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
)

// runDev runs the embedded local cluster: storage nodes and a gateway in one
// process, on loopback, with state under --data so a restart keeps objects,
// credentials and the cluster secret.
func runDev(ctx context.Context, env *environ, args []string) error {
	fset := flag.NewFlagSet("kintsugi dev", flag.ContinueOnError)
	listen := fset.String("listen", "127.0.0.1:9000", "S3 gateway address")
	dataDir := fset.String("data", "./data", "data directory for all nodes")
	nodes := fset.Int("nodes", 6, "number of storage nodes")
	dataShards := fset.Int("data-shards", 4, "data shards per object (d)")
	parityShards := fset.Int("parity-shards", 2, "parity shards per object (p)")
	basePort := fset.Int("node-base-port", 9101, "first storage node port (0 = any free port)")
	tlsCert := fset.String("tls-cert", "", "PEM certificate (valid for 127.0.0.1) to serve the gateway and the nodes over HTTPS, with --tls-key")
	tlsKey := fset.String("tls-key", "", "PEM private key of --tls-cert")
	caFile := fset.String("ca-file", "", "PEM CA the nodes' certificate chains to (default: --tls-cert itself)")
	sf := addS3Flags(fset)
	// A pass asks every node about every object: about a minute per 30k
	// objects on two cores. Every minute, a dev cluster holding data was
	// never idle.
	scrubInterval := fset.Duration("scrub-interval", time.Hour, "interval of the embedded scrubber's passes (0 disables it)")
	scrubListen := fset.String("scrub-listen", "127.0.0.1:9300", "address of the embedded scrubber's /status and /metrics")
	memLimit := fset.String("memory-limit", defaultDevMemoryLimit, "soft limit on the memory the Go runtime holds, e.g. 256MiB (0: none; GOMEMLIMIT, when set, wins)")
	pprofAddr := fset.String("pprof", "", "loopback address to serve Go runtime profiles on, under /debug/pprof/ (off when empty)")
	metricsAddr := fset.String("metrics-listen", defaultDevMetrics, "address of the gateway's console (/), /metrics of the gateway and every node (one registry, node series labelled node=ID), /nodes, /healthz and /readyz (empty: off; default port 0 when --listen's port is 0)")
	loopback := fset.Bool("loopback-nodes", false, "call the nodes over loopback HTTP, as separate processes are called, instead of in process (to measure the difference)")
	hf := addHealthFlags(fset)
	cf := addConsoleFlags(fset, false)
	if err := parseFlags(fset, env, args); err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return err
	}
	if !flagSet(fset, "metrics-listen") && strings.HasSuffix(*listen, ":0") {
		// A dev started on any free port (tests, scripts) must not
		// collide on the fixed metrics port either.
		*metricsAddr = "127.0.0.1:0"
	}
	if *nodes < 1 || *nodes > 64 {
		return usageErr("--nodes %d: want 1..64", *nodes)
	}
	if *basePort < 0 || *basePort+*nodes > 65535 {
		return usageErr("--node-base-port %d: out of range", *basePort)
	}
	limit, err := bench.ParseSize(*memLimit)
	if err != nil {
		return usageErr("--memory-limit: %v", err)
	}
	now, err := processClock(env)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return usageErr("--data: %v", err)
	}
	setMemoryLimit(env, limit)
	mctx, stopReleasing := context.WithCancel(ctx)
	defer stopReleasing()
	go releaseIdleMemory(mctx, releaseEvery)
	var servers []*server
	if *pprofAddr != "" {
		psrv, err := pprofServer(*pprofAddr, env.logger)
		if err != nil {
			return err
		}
		servers = append(servers, psrv)
		env.logger.Info("serving runtime profiles", "url", "http://"+psrv.Addr()+"/debug/pprof/")
	}
	secret, err := devSecret(env, *dataDir)
	if err != nil {
		return err
	}
	ak, sk, err := devCredentials(env, *dataDir)
	if err != nil {
		return err
	}
	ca := *caFile
	if ca == "" {
		ca = *tlsCert
	}
	opts, err := nodeClientOptions(secret, ca)
	if err != nil {
		return err
	}

	reg := newRegistry()
	nodeList := make([]localNode, *nodes)
	for i := range nodeList {
		id := fmt.Sprintf("n%d", i+1)
		addr := "127.0.0.1:0"
		if *basePort > 0 {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(*basePort+i))
		}
		nodeList[i] = localNode{id: id, dir: filepath.Join(*dataDir, id), zone: "z" + strconv.Itoa(i+1), addr: addr}
	}
	lc, err := openLocalNodes(env, nodeList, *dataShards, *parityShards, secret, *tlsCert, *tlsKey, reg, "try --node-base-port 0")
	if err != nil {
		return err
	}
	defer lc.close()
	servers = append(servers, lc.servers...)
	// The map is held by a single-voter Raft group (dev_raft.go).
	dr, m, err := startDevRaft(ctx, env.logger, *dataDir, secret, lc.m, lc.nodes, opts)
	if err != nil {
		return err
	}
	defer dr.Close()
	lc.m, lc.follow = m, dr.follow
	nodeURLs := lc.urls
	// The map is written out so that the scrub, admin and bench commands can
	// be pointed at the dev cluster.
	mapFile := filepath.Join(*dataDir, "cluster.yaml")
	if b, err := m.Marshal(); err != nil {
		return err
	} else if err := os.WriteFile(mapFile, b, 0o644); err != nil {
		return err
	}

	// Node health as `kintsugi gateway` has it. The nodes run in this
	// process, but `kintsugi dev` is also what people measure against.
	creds := sigv4.StaticCredentials{ak: sk}
	f, err := newFront(env, sf.frontConfig(frontConfig{m: m, opts: opts, creds: creds, listen: *listen,
		tlsCert: *tlsCert, tlsKey: *tlsKey, probe: lc.probe(opts, *loopback), dial: lc.gatewayDial(opts, *loopback), hf: hf, reg: reg, now: now}))
	if err != nil {
		return err
	}
	gsrv := f.srv
	dr.follow(f.store)
	servers = append(servers, gsrv)
	f.start(ctx, env, sf)
	scrubAddr := ""
	if *scrubInterval > 0 {
		ssrv, stop, err := startScrubber(ctx, env, lc, opts, now, filepath.Join(*dataDir, "scrubber"), *scrubInterval, *sf.lifecycleDay, *scrubListen, "--scrub-listen")
		if err != nil {
			return err
		}
		defer stop()
		servers = append(servers, ssrv)
		scrubAddr = ssrv.Addr()
	}

	consoleURL, metricsURL := "", ""
	if *metricsAddr != "" {
		msrv, err := devMetricsServer(env, fset, *metricsAddr)
		if err != nil {
			return err
		}
		scrubURL := ""
		if scrubAddr != "" {
			scrubURL = "http://" + scrubAddr
		}
		if err := f.serveConsole(ctx, env, cf, msrv, scrubURL); err != nil {
			return err
		}
		servers = append(servers, msrv)
		consoleURL = "http://" + msrv.Addr() + "/"
		metricsURL = "http://" + msrv.Addr()
	}

	endpoint := gsrv.URL()
	fmt.Fprintf(env.stdout, "Kintsugi dev cluster: %d nodes, %d+%d erasure coding, data in %s\n",
		*nodes, m.DataShards, m.ParityShards, *dataDir)
	style := "path-style"
	if *sf.domain != "" {
		style += ", or virtual-hosted as <bucket>." + *sf.domain
	}
	fmt.Fprintf(env.stdout, "  S3 endpoint:  %s  (region %s, %s)\n", endpoint, *sf.region, style)
	fmt.Fprintf(env.stdout, "  access key:   %s\n  secret key:   %s\n", ak, sk)
	fmt.Fprintf(env.stdout, "  cluster map:  %s\n", mapFile)
	if consoleURL != "" {
		fmt.Fprintf(env.stdout, "  console:      %s\n", consoleURL)
	}
	if metricsURL != "" {
		fmt.Fprintf(env.stdout, "  metrics:      %s/metrics (gateway and nodes), /nodes, /healthz, /readyz\n", metricsURL)
	}
	fmt.Fprintf(env.stdout, "  health:       %s/healthz and /readyz; nodes the same at %s\n", endpoint, strings.Join(nodeURLs, " "))
	if scrubAddr != "" {
		fmt.Fprintf(env.stdout, "  scrubber:     http://%s/status, /metrics and /healthz, a pass every %v\n", scrubAddr, *scrubInterval)
	}
	fmt.Fprintf(env.stdout, "  try:  AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s aws --endpoint-url %s s3 mb s3://demo\n", ak, sk, endpoint)
	kv := []string{"nodes", strconv.Itoa(*nodes)}
	if consoleURL != "" {
		kv = append(kv, "console", consoleURL, "metrics", strings.TrimPrefix(metricsURL, "http://"))
	}
	ready(env, "dev", gsrv.Addr(), kv...)
	return serveAll(ctx, env.logger, servers...)
}

// defaultDevMetrics is where `kintsugi dev` serves its console unless told
// otherwise.
const defaultDevMetrics = "127.0.0.1:9200"

// devMetricsServer listens for the console and metrics. When the default
// address is taken (another dev cluster, or tests running several) and no
// address was asked for, it takes any free loopback port instead: the
// console is a convenience, not worth failing `make run` for. Its URL is
// printed either way.
func devMetricsServer(env *environ, fset *flag.FlagSet, addr string) (*server, error) {
	msrv, err := newServer("dev metrics", addr, nil, env.logger)
	if err == nil {
		return msrv, nil
	}
	if flagSet(fset, "metrics-listen") {
		return nil, usageErr("--metrics-listen: %v", err)
	}
	msrv, err2 := newServer("dev metrics", "127.0.0.1:0", nil, env.logger)
	if err2 != nil {
		return nil, usageErr("--metrics-listen: %v", err)
	}
	env.logger.Warn("console: default address taken; serving on another port", "wanted", addr, "err", err, "addr", msrv.Addr())
	return msrv, nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// devSecret returns the cluster secret: the environment's, else the one
// kept in the data directory, else a new one saved there.
func devSecret(env *environ, dir string) ([]byte, error) {
	if s := env.getenv("KINTSUGI_CLUSTER_SECRET"); s != "" {
		return []byte(s), nil
	}
	s, err := readOrCreate(filepath.Join(dir, "cluster.secret"), func() string { return randomToken(32) })
	return []byte(s), err
}

// devCredentials returns the S3 key pair: the environment's, else the one
// kept in the data directory, else a new one saved there.
func devCredentials(env *environ, dir string) (ak, sk string, err error) {
	ak, sk = env.getenv("KINTSUGI_ACCESS_KEY"), env.getenv("KINTSUGI_SECRET_KEY")
	switch {
	case ak != "" && sk != "":
		return ak, sk, nil
	case ak != "" || sk != "":
		return "", "", usageErr("KINTSUGI_ACCESS_KEY and KINTSUGI_SECRET_KEY must be set together")
	}
	line, err := readOrCreate(filepath.Join(dir, "credentials"), func() string {
		return "kintsugi-" + randomToken(4) + " " + randomToken(20)
	})
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		return "", "", usageErr("%s: want \"ACCESS_KEY SECRET_KEY\"", filepath.Join(dir, "credentials"))
	}
	return f[0], f[1], nil
}

func readOrCreate(path string, gen func() string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	s := gen()
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", err
	}
	return s, nil
}

func itoa(u uint64) string { return strconv.FormatUint(u, 10) }
