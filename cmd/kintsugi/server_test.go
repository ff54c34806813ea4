package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

func TestServerShards(t *testing.T) {
	for _, c := range []struct {
		n, d, p      int
		wantD, wantP int
		err          bool
	}{
		{6, 0, 0, 4, 2, false},
		{5, 0, 0, 3, 2, false},
		{4, 0, 0, 3, 1, false},
		{2, 0, 0, 1, 1, false},
		{8, 0, 3, 5, 3, false},
		{8, 4, 2, 4, 2, false},
		{6, 5, 2, 0, 0, true},
		{2, 0, 2, 0, 0, true},
	} {
		d, p, err := serverShards(c.n, c.d, c.p)
		if (err != nil) != c.err || d != c.wantD || p != c.wantP {
			t.Errorf("serverShards(%d, %d, %d) = %d, %d, %v; want %d, %d, error %v", c.n, c.d, c.p, d, p, err, c.wantD, c.wantP, c.err)
		}
	}
}

func TestParseDrives(t *testing.T) {
	for _, s := range []string{"", "/a", "/a,,/b", "/a,/b,/a/"} {
		if _, err := parseDrives(s); err == nil {
			t.Errorf("parseDrives(%q): no error", s)
		}
	}
	got, err := parseDrives(" /mnt/d1, /mnt/d2 ")
	if err != nil || !reflect.DeepEqual(got, []string{"/mnt/d1", "/mnt/d2"}) {
		t.Errorf("parseDrives = %q, %v", got, err)
	}
}

// TestDriveNodesKeepIDs: a node's id follows its drive, not the drive's
// place in --drives, and a new drive takes an id no other drive holds.
func TestDriveNodesKeepIDs(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	ids := func(drives ...string) []string {
		t.Helper()
		nodes, err := driveNodes(drives)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for i, n := range nodes {
			if n.dir != filepath.Join(drives[i], "kintsugi") || n.zone != "drive-"+n.id {
				t.Errorf("node %+v on drive %s", n, drives[i])
			}
			out = append(out, n.id)
		}
		return out
	}
	if got := ids(a, b); !reflect.DeepEqual(got, []string{"d1", "d2"}) {
		t.Fatalf("first start: %v", got)
	}
	if got := ids(c, b, a); !reflect.DeepEqual(got, []string{"d3", "d2", "d1"}) {
		t.Fatalf("reordered with a new drive: %v", got)
	}
	if err := os.WriteFile(filepath.Join(c, driveIDFile), []byte("d1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := driveNodes([]string{a, c}); err == nil {
		t.Error("two drives claiming d1: no error")
	}
}

// TestLocalNodesDial: the front end of dev and server calls the nodes of
// its own process in process, trusting its frames; the scrubber calls
// them in process with every frame checked; a node elsewhere, or every
// node with --loopback-nodes, is called over HTTP. The probe asks the
// node under its id either way.
func TestLocalNodesDial(t *testing.T) {
	env, _ := testEnv()
	dir := t.TempDir()
	nodes := []localNode{
		{id: "d1", dir: filepath.Join(dir, "d1"), zone: "drive-d1", addr: "127.0.0.1:0"},
		{id: "d2", dir: filepath.Join(dir, "d2"), zone: "drive-d2", addr: "127.0.0.1:0"},
	}
	lc, err := openLocalNodes(env, nodes, 1, 1, []byte("secret"), "", "", newRegistry(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer lc.close()
	for _, s := range lc.servers {
		go s.srv.Serve(s.ln)
		defer s.srv.Close()
	}
	opts, err := nodeClientOptions([]byte("secret"), "")
	if err != nil {
		t.Fatal(err)
	}
	n1 := lc.m.Nodes[0]
	if got := lc.gatewayDial(opts, false)(n1); got != client.Node(lc.trusted["d1"]) {
		t.Errorf("gateway dial of a local node = %T, want its trusting Local", got)
	}
	if _, ok := lc.gatewayDial(opts, true)(n1).(*client.Client); !ok {
		t.Error("gateway dial with loopback: not an HTTP client")
	}
	if got := lc.scrubberDial(opts)(n1); got != client.Node(lc.checked["d1"]) {
		t.Errorf("scrubber dial of a local node = %T, want its checking Local", got)
	}
	elsewhere := placement.Node{ID: "d1", Addr: "127.0.0.1:1"}
	if _, ok := lc.gatewayDial(opts, false)(elsewhere).(*client.Client); !ok {
		t.Error("gateway dial of a node at another address: not an HTTP client")
	}
	for _, loopback := range []bool{false, true} {
		if err := lc.probe(opts, loopback)(context.Background(), "d2"); err != nil {
			t.Errorf("probe d2 (loopback %v): %v", loopback, err)
		}
		if err := lc.probe(opts, loopback)(context.Background(), "d9"); err == nil {
			t.Errorf("probe of a node not in the map (loopback %v): no error", loopback)
		}
	}
}
