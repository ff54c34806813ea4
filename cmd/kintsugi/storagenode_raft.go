package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/kintsugi-store/kintsugi/cluster"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode"
)

// raftFlags are a storage node's flags for its member of the Raft group
// that holds the cluster map (docs/raft.md).
type raftFlags struct {
	listen, advertise, dir, caFile *string
	voters                         *int
}

func addRaftFlags(fs *flag.FlagSet) *raftFlags {
	return &raftFlags{
		listen:    fs.String("raft-listen", "", "address to serve the Raft group holding the cluster map on (e.g. 10.0.0.1:9201); empty: the node takes its map from pushes, as before"),
		advertise: fs.String("raft-advertise", "", "IP:port other nodes dial for Raft, if not --raft-listen's (needed when it listens on 0.0.0.0)"),
		dir:       fs.String("raft-dir", "", "directory of the Raft log and snapshots (default: DATA/raft)"),
		voters:    fs.Int("raft-voters", cluster.DefaultVoters, "how many nodes vote while this node leads (3 or 5, chosen in distinct zones); the others follow the log"),
		caFile:    fs.String("ca-file", "", "PEM CA certificates to trust for other nodes' https:// addresses and Raft TLS (default: system roots)"),
	}
}

// start opens the node's member if --raft-listen is set and wires it to
// node: committed maps are installed in it and the group's API is served
// under its /v1/cluster/. The returned func closes the member.
func (f *raftFlags) start(logger *slog.Logger, node *storagenode.Node, id, dataDir string, secret []byte, tlsCert, tlsKey string) (func() error, error) {
	if *f.listen == "" {
		return func() error { return nil }, nil
	}
	opts, err := nodeClientOptions(secret, *f.caFile)
	if err != nil {
		return nil, err
	}
	dir := *f.dir
	if dir == "" {
		dir = filepath.Join(dataDir, "raft")
	}
	cfg := cluster.Config{
		ID: id, Dir: dir, Bind: *f.listen, Advertise: *f.advertise, Secret: secret, Voters: *f.voters,
		Logger: logger,
		OnMap: func(m *placement.Map) {
			if err := node.InstallMap(m); err != nil {
				logger.Error("storing the committed cluster map", "epoch", m.Epoch, "err", err)
			}
		},
		Resolve: func(ctx context.Context, n placement.Node) (string, error) {
			st, err := cluster.NewClient(n.Addr, opts).LocalStatus(ctx)
			if err != nil {
				return "", err
			}
			if st.ID != n.ID {
				return "", fmt.Errorf("the node at %s says it is %q", n.Addr, st.ID)
			}
			return st.RaftAddr, nil
		},
	}
	if tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(tlsCert, tlsKey)
		if err != nil {
			return nil, usageErr("--tls-cert/--tls-key: %v", err)
		}
		cfg.ServerTLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		cfg.ClientTLS = &tls.Config{MinVersion: tls.VersionTLS12}
		if *f.caFile != "" {
			pem, err := os.ReadFile(*f.caFile)
			if err != nil {
				return nil, usageErr("--ca-file: %v", err)
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			cfg.ClientTLS.RootCAs = pool
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, usageErr("%v", err)
	}
	g, err := cluster.Open(cfg)
	if err != nil {
		return nil, err
	}
	node.ServeCluster(cluster.Handler(g, opts))
	logger.Info("raft member started", "raft", g.Addr(), "dir", dir)
	return g.Close, nil
}
