package cluster

import (
	"bytes"
	"net"
	"testing"

	"github.com/hashicorp/raft"
)

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ buf bytes.Buffer }

func (s *memSink) Write(p []byte) (int, error) { return s.buf.Write(p) }
func (s *memSink) Close() error                { return nil }
func (s *memSink) ID() string                  { return "mem" }
func (s *memSink) Cancel() error               { return nil }

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func rafAddr(s *streamLayer) raft.ServerAddress { return raft.ServerAddress(s.Addr().String()) }

// bootstrapWith makes g believe it is a voter of a group with others.
func (g *Group) bootstrapWith(others []*Group) error {
	servers := []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(g.ID()), Address: raft.ServerAddress(g.Addr())}}
	for _, o := range others {
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(o.ID()), Address: raft.ServerAddress(o.Addr())})
	}
	return g.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
}
