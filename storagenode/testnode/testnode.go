// Package testnode starts storage nodes in the test's process, for tests
// of the node and of its callers: one node, opened on a temporary
// directory, served over httptest on the loopback interface, with an HTTP
// client and an in-process client (storagenode.Local) of it, so that one
// test can run against both.
//
// It is for tests only: it takes a testing.TB and registers cleanups. It
// must never be imported by production code.
package testnode

import (
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Node is a running node and its two clients.
type Node struct {
	*storagenode.Node
	Config storagenode.Config // as opened, with Dir and ID filled in
	URL    string             // the httptest server's base URL
	HTTP   *client.Client     // signs with Config.Secret
	Local  *storagenode.Local // default options

	srv *httptest.Server
}

// Start opens a node with cfg and serves it until the test ends. An empty
// cfg.Dir is a new temporary directory, an empty cfg.ID "node-1", a nil
// cfg.Logger one that discards.
func Start(t testing.TB, cfg storagenode.Config) *Node {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.ID == "" {
		cfg.ID = "node-1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n, err := storagenode.Open(cfg)
	if err != nil {
		t.Fatalf("testnode: opening the node: %v", err)
	}
	srv := httptest.NewServer(n.Handler())
	tn := &Node{
		Node:   n,
		Config: cfg,
		URL:    srv.URL,
		HTTP:   client.New(srv.URL, &client.Options{Secret: cfg.Secret}),
		Local:  storagenode.NewLocal(n, nil),
		srv:    srv,
	}
	t.Cleanup(tn.Stop)
	return tn
}

// Stop shuts the server and the node down; it may be called more than
// once.
func (n *Node) Stop() {
	n.srv.Close()
	n.Node.Close()
}
