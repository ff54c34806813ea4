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
	"github.com/kintsugi-store/kintsugi/gateway"
	"github.com/kintsugi-store/kintsugi/gateway/console"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/scrubber"
	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
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
	region := fset.String("region", "us-east-1", "S3 region")
	domain := fset.String("domain", "", "domain for virtual-hosted–style requests (<bucket>.DOMAIN)")
	tlsCert := fset.String("tls-cert", "", "PEM certificate (valid for 127.0.0.1) to serve the gateway and the nodes over HTTPS, with --tls-key")
	tlsKey := fset.String("tls-key", "", "PEM private key of --tls-cert")
	caFile := fset.String("ca-file", "", "PEM CA the nodes' certificate chains to (default: --tls-cert itself)")
	uploadExpiry := fset.Duration("upload-expiry", objects.DefaultUploadExpiry, "age after which an unfinished multipart upload is aborted")
	uploadSweep := fset.Duration("upload-sweep", time.Hour, "how often to abort stale uploads and free unused parts (0: never)")
	// A pass asks every node about every object: about a minute per 30k
	// objects on two cores. Every minute, a dev cluster holding data was
	// never idle.
	scrubInterval := fset.Duration("scrub-interval", time.Hour, "interval of the embedded scrubber's passes (0 disables it)")
	scrubListen := fset.String("scrub-listen", "127.0.0.1:9300", "address of the embedded scrubber's /status and /metrics")
	memLimit := fset.String("memory-limit", defaultDevMemoryLimit, "soft limit on the memory the Go runtime holds, e.g. 256MiB (0: none; GOMEMLIMIT, when set, wins)")
	pprofAddr := fset.String("pprof", "", "loopback address to serve Go runtime profiles on, under /debug/pprof/ (off when empty)")
	metricsAddr := fset.String("metrics-listen", defaultDevMetrics, "address of the gateway's console (/), /metrics of the gateway and every node (one registry, node series labelled node=ID), /nodes, /healthz and /readyz (empty: off; default port 0 when --listen's port is 0)")
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

	// One registry for the gateway and every node: the nodes' series
	// carry node=ID, as a lone node's do, so the dashboards work on both.
	reg := newRegistry()
	var nodeURLs []string
	var devNodes []*storagenode.Node
	m := &placement.Map{Epoch: 1, DataShards: *dataShards, ParityShards: *parityShards}
	for i := 1; i <= *nodes; i++ {
		id := fmt.Sprintf("n%d", i)
		cfg := storagenode.DefaultConfig()
		cfg.ID = id
		cfg.Dir = filepath.Join(*dataDir, id)
		cfg.Secret = secret
		cfg.Logger = env.logger.With("node", id)
		cfg.Registerer = nodeRegisterer(reg, id)
		node, err := storagenode.Open(cfg)
		if err != nil {
			return fmt.Errorf("node %s: %w", id, err)
		}
		defer node.Close()
		devNodes = append(devNodes, node)
		addr := "127.0.0.1:0"
		if *basePort > 0 {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(*basePort+i-1))
		}
		srv, err := newServer("storagenode "+id, addr, withProbes(node.Handler(), nil), env.logger)
		if err != nil {
			return usageErr("node %s: %v (try --node-base-port 0)", id, err)
		}
		if err := srv.useTLS(*tlsCert, *tlsKey); err != nil {
			return err
		}
		servers = append(servers, srv)
		nodeURLs = append(nodeURLs, srv.URL())
		nodeAddr := srv.Addr()
		if srv.scheme == "https" {
			nodeAddr = srv.URL()
		}
		m.Nodes = append(m.Nodes, placement.Node{ID: id, Addr: nodeAddr, Zone: "z" + strconv.Itoa(i)})
	}
	m = m.WithDefaults()
	if err := m.Validate(); err != nil {
		return usageErr("%v", err)
	}
	// The map is held by a single-voter Raft group (dev_raft.go).
	dr, m, err := startDevRaft(ctx, env.logger, *dataDir, secret, m, devNodes, opts)
	if err != nil {
		return err
	}
	defer dr.Close()
	// The map is written out so that the scrub, admin and bench commands can
	// be pointed at the dev cluster.
	mapFile := filepath.Join(*dataDir, "cluster.yaml")
	if b, err := m.Marshal(); err != nil {
		return err
	} else if err := os.WriteFile(mapFile, b, 0o644); err != nil {
		return err
	}

	// Node health as `kintsugi gateway` has it: a stopped node is skipped
	// at once, slow data shards are hedged, stragglers not waited for.
	// The nodes run in this process, but `kintsugi dev` is also what
	// people measure against.
	hcfg, err := hf.config(env, devProbe(m, opts), reg)
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
	reg.MustRegister(mapEpochGauge("kintsugi_gateway_map_epoch", "Epoch of the cluster map this gateway routes by.", store))
	dr.follow(store)
	go tracker.Run(ctx)
	gcfg := gateway.DefaultConfig()
	gcfg.Backend = store
	gcfg.Region = *region
	gcfg.Domain = *domain
	gcfg.Logger = env.logger
	gcfg.Registerer = reg
	gcfg.Auth = &sigv4.Verifier{Creds: sigv4.StaticCredentials{ak: sk}, Region: *region, Now: now}
	gw, err := gateway.New(gcfg)
	if err != nil {
		return err
	}
	counter := console.NewCounter(nil)
	gsrv, err := newServer("gateway", *listen, withProbes(counter.Wrap(gw.Handler()), gatewayReady(store)), env.logger)
	if err != nil {
		return usageErr("%v", err)
	}
	if err := gsrv.useTLS(*tlsCert, *tlsKey); err != nil {
		return err
	}
	servers = append(servers, gsrv)
	go sweepUploads(ctx, env.logger, store, *uploadSweep, *uploadExpiry)
	scrubAddr := ""
	if *scrubInterval > 0 {
		s, err := scrubber.New(scrubber.Config{
			Map:           m,
			ClientOptions: opts,
			StateDir:      filepath.Join(*dataDir, "scrubber"),
			Concurrency:   2,
			Logger:        env.logger.With("role", "scrubber"),
			Now:           now,
		})
		if err != nil {
			return err
		}
		defer s.Close()
		dr.follow(s)
		d := scrubber.NewDaemon(s, *scrubInterval)
		ssrv, err := newServer("scrubber", *scrubListen, d.Handler(), env.logger)
		if err != nil {
			return usageErr("scrubber: %v (try --scrub-listen 127.0.0.1:0)", err)
		}
		servers = append(servers, ssrv)
		scrubAddr = ssrv.Addr()
		sctx, stop := context.WithCancel(ctx)
		scrubDone := make(chan struct{})
		defer func() {
			stop()
			<-scrubDone
		}()
		go func() {
			defer close(scrubDone)
			d.Run(sctx)
		}()
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
		con, err := cf.newConsole(env, consoleDeps{maps: store, tracker: tracker, opts: opts,
			creds: sigv4.StaticCredentials{ak: sk}, counter: counter, scrubber: scrubURL, addr: msrv.Addr()})
		if err != nil {
			msrv.ln.Close()
			return err
		}
		msrv.srv.Handler = withProbes(withConsole(metricsHandler(reg, tracker, store), con.Handler()), gatewayReady(store))
		servers = append(servers, msrv)
		go con.Run(ctx)
		consoleURL = "http://" + msrv.Addr() + "/"
		metricsURL = "http://" + msrv.Addr()
	}

	endpoint := gsrv.URL()
	fmt.Fprintf(env.stdout, "Kintsugi dev cluster: %d nodes, %d+%d erasure coding, data in %s\n",
		*nodes, m.DataShards, m.ParityShards, *dataDir)
	style := "path-style"
	if *domain != "" {
		style += ", or virtual-hosted as <bucket>." + *domain
	}
	fmt.Fprintf(env.stdout, "  S3 endpoint:  %s  (region %s, %s)\n", endpoint, *region, style)
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

// devProbe is the dev gateway's heartbeat: the node at the map's address
// must answer its health check under its id.
func devProbe(m *placement.Map, opts *client.Options) func(context.Context, string) error {
	return func(ctx context.Context, id string) error {
		n, ok := m.Node(id)
		if !ok {
			return fmt.Errorf("node %s is not in the cluster map", id)
		}
		h, err := client.New(n.Addr, opts).Health(ctx)
		if err == nil && h.ID != id {
			err = fmt.Errorf("the node at %s says it is %q, not %q", n.Addr, h.ID, id)
		}
		return err
	}
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
