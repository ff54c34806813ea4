package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// driveIDFile names the file at the root of a drive that holds the id of
// the node storing on it. Placement is by node id, so the id must follow
// the drive, not its position in --drives.
const driveIDFile = "kintsugi-node-id"

// runServer is `kintsugi server`: one process serving S3 over one storage
// node per drive, the shape of a single box of disks. It is `kintsugi dev`
// without the dev defaults: no generated data directory, credentials from
// the environment or a file, and a log line saying what it does not survive.
func runServer(ctx context.Context, env *environ, args []string) error {
	fset := flag.NewFlagSet("kintsugi server", flag.ContinueOnError)
	drivesFlag := fset.String("drives", "", "comma-separated drive directories, one storage node each (required), e.g. /mnt/d1,/mnt/d2")
	listen := fset.String("listen", "127.0.0.1:9000", "address to serve S3 on, e.g. :9000")
	dataShards := fset.Int("data-shards", 0, "data shards per object (0: drives minus parity shards)")
	parityShards := fset.Int("parity-shards", 0, "parity shards per object: the drive failures survived (0: 2, or 1 below 5 drives)")
	credFile := fset.String("credentials", "", "file of \"ACCESS_KEY SECRET_KEY\" lines (adds to $KINTSUGI_ACCESS_KEY/$KINTSUGI_SECRET_KEY)")
	secretFile := fset.String("secret-file", "", "file holding the secret of the nodes' API (default: $KINTSUGI_CLUSTER_SECRET, else a new one per run)")
	tlsCert := fset.String("tls-cert", "", "PEM certificate to serve S3 over HTTPS (with --tls-key)")
	tlsKey := fset.String("tls-key", "", "PEM private key of --tls-cert")
	sf := addS3Flags(fset)
	scrubInterval := fset.Duration("scrub-interval", 24*time.Hour, "interval of the embedded scrubber's passes (0 disables it)")
	scrubListen := fset.String("scrub-listen", "127.0.0.1:9300", "address of the embedded scrubber's /status and /metrics")
	scrubState := fset.String("scrub-state", "", "the embedded scrubber's state directory (default: kintsugi-scrubber on the first drive)")
	metricsAddr := fset.String("metrics-listen", "", "address of the console (/), /metrics of the gateway and every node, /nodes, /healthz and /readyz (empty: off)")
	pprofAddr := fset.String("pprof", "", "loopback address to serve Go runtime profiles on, under /debug/pprof/ (off when empty)")
	hf := addHealthFlags(fset)
	cf := addConsoleFlags(fset, false)
	if err := parseFlags(fset, env, args); err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return err
	}
	drives, err := parseDrives(*drivesFlag)
	if err != nil {
		return err
	}
	d, p, err := serverShards(len(drives), *dataShards, *parityShards)
	if err != nil {
		return err
	}
	now, err := processClock(env)
	if err != nil {
		return err
	}
	secret, err := clusterSecret(env, *secretFile)
	if err != nil {
		return err
	}
	if secret == nil {
		// The nodes listen on loopback for this process alone; a secret
		// of its own keeps other local users off their API.
		secret = []byte(randomToken(32))
	}
	creds, err := credentialsOrGenerated(env, *credFile)
	if err != nil {
		return err
	}
	opts, err := nodeClientOptions(secret, "")
	if err != nil {
		return err
	}
	nodes, err := driveNodes(drives)
	if err != nil {
		return err
	}
	var servers []*server
	if *pprofAddr != "" {
		psrv, err := pprofServer(*pprofAddr, env.logger)
		if err != nil {
			return err
		}
		servers = append(servers, psrv)
	}
	reg := newRegistry()
	lc, err := openLocalNodes(env, nodes, d, p, secret, "", "", reg, "a loopback port")
	if err != nil {
		return err
	}
	defer lc.close()
	servers = append(servers, lc.servers...)
	// Until it joins a multi-host cluster, the server's map is held by a
	// single-voter Raft group, as kintsugi dev's is. Its log lives on the
	// drive of the node it is named after, so that reordering --drives
	// finds it again.
	raftDir := nodes[0].dir
	for _, n := range nodes {
		if n.id == lc.m.Nodes[0].ID {
			raftDir = n.dir
		}
	}
	dr, m, err := startDevRaft(ctx, env.logger, raftDir, secret, lc.m, lc.nodes, opts)
	if err != nil {
		return err
	}
	defer dr.Close()
	lc.m, lc.follow = m, dr.follow
	// Every drive is its own zone, so that placement spreads an object's
	// shards over distinct drives; but the zones share a host, and the
	// operator must not read them as failure domains beyond a drive.
	env.logger.Warn("all drives share this host: objects survive the loss of drives, not of the host",
		"drives", len(drives), "data_shards", d, "parity_shards", p, "drive_failures_survived", p)

	f, err := newFront(env, sf.frontConfig(frontConfig{m: lc.m, opts: opts, creds: creds, listen: *listen,
		tlsCert: *tlsCert, tlsKey: *tlsKey, probe: lc.probe(opts, false), dial: lc.gatewayDial(opts, false), hf: hf, reg: reg, now: now}))
	if err != nil {
		return err
	}
	servers = append(servers, f.srv)
	dr.follow(f.store)
	f.start(ctx, env, sf)
	scrubURL := ""
	if *scrubInterval > 0 {
		dir := *scrubState
		if dir == "" {
			dir = filepath.Join(drives[0], "kintsugi-scrubber")
		}
		ssrv, stop, err := startScrubber(ctx, env, lc, opts, now, dir, *scrubInterval, *sf.lifecycleDay, *scrubListen, "--scrub-listen")
		if err != nil {
			return err
		}
		defer stop()
		servers = append(servers, ssrv)
		scrubURL = "http://" + ssrv.Addr()
	}
	kv := []string{"drives", strconv.Itoa(len(drives)), "data_shards", strconv.Itoa(d), "parity_shards", strconv.Itoa(p),
		"survives", strconv.Itoa(p) + "-drive-failures", "host_failure", "not-covered"}
	if *metricsAddr != "" {
		msrv, err := newServer("server metrics", *metricsAddr, nil, env.logger)
		if err != nil {
			return usageErr("--metrics-listen: %v", err)
		}
		if err := f.serveConsole(ctx, env, cf, msrv, scrubURL); err != nil {
			return err
		}
		servers = append(servers, msrv)
		kv = append(kv, "metrics", msrv.Addr())
	}
	ready(env, "server", f.srv.Addr(), kv...)
	return serveAll(ctx, env.logger, servers...)
}

// parseDrives splits --drives into distinct clean paths.
func parseDrives(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, usageErr("--drives is required: the directories to store on, one per drive")
	}
	var drives []string
	seen := map[string]bool{}
	for _, d := range strings.Split(s, ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			return nil, usageErr("--drives %q: empty entry", s)
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, usageErr("--drives: %v", err)
		}
		if seen[abs] {
			return nil, usageErr("--drives: %s given twice", d)
		}
		seen[abs] = true
		drives = append(drives, abs)
	}
	if len(drives) < 2 {
		return nil, usageErr("--drives: want at least 2 drives, got %d", len(drives))
	}
	return drives, nil
}

// serverShards picks the erasure coding for n drives: p parity shards (2,
// or 1 below five drives, unless given) and the rest data.
func serverShards(n, d, p int) (int, int, error) {
	if p == 0 {
		p = 2
		if n < 5 {
			p = 1
		}
	}
	if d == 0 {
		d = n - p
	}
	if d < 1 || p < 0 || d+p > n {
		return 0, 0, usageErr("%d data + %d parity shards do not fit on %d drives", d, p, n)
	}
	return d, p, nil
}

// driveNodes returns one node per drive. A drive keeps the id it was given
// on first use, in driveIDFile; a new drive takes the lowest dN no other
// drive holds.
func driveNodes(drives []string) ([]localNode, error) {
	ids := make([]string, len(drives))
	taken := map[string]bool{}
	for i, d := range drives {
		b, err := os.ReadFile(filepath.Join(d, driveIDFile))
		switch {
		case err == nil:
			id := strings.TrimSpace(string(b))
			if id == "" || taken[id] {
				return nil, fmt.Errorf("drive %s: node id %q in %s is empty or held by another drive", d, id, driveIDFile)
			}
			ids[i], taken[id] = id, true
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("drive %s: %w", d, err)
		}
	}
	next := 1
	nodes := make([]localNode, len(drives))
	for i, d := range drives {
		if ids[i] == "" {
			for taken["d"+strconv.Itoa(next)] {
				next++
			}
			ids[i] = "d" + strconv.Itoa(next)
			taken[ids[i]] = true
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, fmt.Errorf("drive %s: %w", d, err)
			}
			if err := writeFileSync(filepath.Join(d, driveIDFile), []byte(ids[i]+"\n")); err != nil {
				return nil, fmt.Errorf("drive %s: %w", d, err)
			}
		}
		nodes[i] = localNode{id: ids[i], dir: filepath.Join(d, "kintsugi"), zone: "drive-" + ids[i], addr: "127.0.0.1:0"}
	}
	return nodes, nil
}

// writeFileSync writes a small file and makes it and its name durable.
func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}
