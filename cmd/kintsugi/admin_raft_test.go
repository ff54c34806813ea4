package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/cluster"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// raftNodes starts n in-process storage nodes, each with its Raft member
// wired as `kintsugi storagenode --raft-listen` wires it, and writes a 2+1
// map of the first three to a cluster file.
func raftNodes(t *testing.T, n int) (file string, addrs map[string]string) {
	t.Helper()
	addrs = map[string]string{}
	m := &placement.Map{Epoch: 1, DataShards: 2, ParityShards: 1}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		dir := t.TempDir()
		node, err := storagenode.Open(storagenode.Config{ID: id, Dir: dir, Secret: []byte(admSecret), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: node.Handler()}}
		srv.Start()
		listen, empty, voters := "127.0.0.1:0", "", 3
		rf := &raftFlags{listen: &listen, advertise: &empty, dir: &empty, caFile: &empty, voters: &voters}
		closeRaft, err := rf.start(slog.New(slog.DiscardHandler), node, id, dir, []byte(admSecret), "", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close(); closeRaft(); node.Close() })
		addrs[id] = ln.Addr().String()
		if i <= 3 {
			m.Nodes = append(m.Nodes, placement.Node{ID: id, Addr: addrs[id], Zone: "z" + id})
		}
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return file, addrs
}

func TestAdminRaft(t *testing.T) {
	file, addrs := raftNodes(t, 5)
	// Every command names the file; --endpoint, where given, wins.
	c := &admCluster{t: t, file: file}
	must, runAdminCmd := c.mustAdmin, c.admin
	// Before init the file is the map, as always.
	if out := must("map show"); !strings.Contains(out, "epoch: 1") {
		t.Fatalf("map show before init:\n%s", out)
	}
	if out := must("init"); !strings.Contains(out, "initialised the cluster map at epoch 1") {
		t.Fatalf("init said:\n%s", out)
	}
	if code, _, errs := runAdminCmd("init"); code != 1 || !strings.Contains(errs, "already initialised") {
		t.Fatalf("second init: exit %d, %s", code, errs)
	}
	// Changes from any node, compare-and-set by --expect-epoch.
	must("--endpoint", addrs["n2"], "nodes", "add", "--id", "n4", "--addr", addrs["n4"], "--zone", "zn4", "--expect-epoch", "1")
	code, _, errs := runAdminCmd("--endpoint", addrs["n3"], "nodes", "add", "--id", "n5", "--addr", addrs["n5"], "--zone", "zn5", "--expect-epoch", "1")
	if code != exitConflict || !strings.Contains(errs, "conflict") {
		t.Fatalf("stale --expect-epoch: exit %d, %s", code, errs)
	}
	// Two admins at once at the same epoch: exactly one wins.
	codes := make([]int, 2)
	var wg sync.WaitGroup
	for i, id := range []string{"n5", "n6"} {
		wg.Go(func() {
			codes[i], _, _ = runAdminCmd("--endpoint", addrs[[]string{"n1", "n3"}[i]], "nodes", "add", "--id", id, "--addr", "127.0.0.1:"+fmt.Sprint(9+i), "--zone", "z"+id, "--expect-epoch", "2")
		})
	}
	wg.Wait()
	if !(codes[0] == 0 && codes[1] == exitConflict || codes[0] == exitConflict && codes[1] == 0) {
		t.Fatalf("two admins at epoch 2: exits %v, want one 0 and one %d", codes, exitConflict)
	}
	// The --cluster file now only finds the cluster.
	out := must("--json", "status")
	var st struct {
		Epoch   uint64   `json:"epoch"`
		Leader  string   `json:"leader"`
		Voters  []string `json:"voters"`
		Quorum  bool     `json:"quorum"`
		Members []struct {
			ID        string `json:"id"`
			LastIndex uint64 `json:"last_index"`
		} `json:"voter_status"`
		Nodes []nodeReport `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if st.Epoch != 3 || st.Leader == "" || len(st.Voters) != 3 || !st.Quorum || len(st.Members) != 3 || st.Members[0].LastIndex == 0 {
		t.Fatalf("status: %+v", st)
	}
	// Every running node of the map holds the same epoch.
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		for {
			m, err := client.New(addrs[id], &client.Options{Secret: []byte(admSecret)}).GetMap(context.Background())
			if err == nil && m.Epoch == 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s: map %v, %v; want epoch 3", id, m, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if code, _, errs := runAdminCmd("--endpoint", addrs["n1"], "map", "push"); code != exitUsage || !strings.Contains(errs, "--file") {
		t.Fatalf("map push without --file: exit %d, %s", code, errs)
	}
	if out := must("--endpoint", addrs["n4"], "status"); !strings.Contains(out, "raft: leader "+st.Leader) || !strings.Contains(out, "quorum up") {
		t.Fatalf("status text:\n%s", out)
	}
}

// memMaps is a mapSetter in memory.
type memMaps struct {
	mu sync.Mutex
	m  *placement.Map
}

func (s *memMaps) Map() *placement.Map {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m
}

func (s *memMaps) SetMap(m *placement.Map) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m = m
}

// TestWatchRaftMap: a gateway's or scrubber's long poll brings each new
// epoch as soon as it commits, from whichever node answers.
func TestWatchRaftMap(t *testing.T) {
	file, addrs := raftNodes(t, 4)
	c := &admCluster{t: t, file: file}
	c.mustAdmin("init")
	m, err := placement.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	// The first node of the map is a stranger: the watch moves on.
	m.Nodes = append([]placement.Node{{ID: "gone", Addr: "127.0.0.1:1", Zone: "zg"}}, m.Nodes...)
	store := &memMaps{m: m}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go watchRaftMap(ctx, slog.New(slog.DiscardHandler), store, &client.Options{Secret: []byte(admSecret)})
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	c.mustAdmin("--endpoint", addrs["n2"], "nodes", "add", "--id", "n4", "--addr", addrs["n4"], "--zone", "zn4")
	for store.Map().Epoch != 2 {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("after %v the watcher holds epoch %d, want 2", time.Since(start), store.Map().Epoch)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("new epoch reached the watcher %v after the admin command started", time.Since(start).Round(time.Millisecond))
	if _, ok := store.Map().Node("n4"); !ok {
		t.Fatal("the watched map lacks the added node")
	}
}

// writeMapFile writes m to a new cluster file and returns its path.
func writeMapFile(t *testing.T, m *placement.Map) string {
	t.Helper()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestAdminInitConcurrent: two `admin init` at once, from cluster files
// listing the nodes in opposite orders (two hosts' copies), seed one
// group, on the map's seed n1 whichever file wins: one exits 0, the other
// 1 with "already initialised", and every node ends under one leader with
// the same voters and map epoch.
func TestAdminInitConcurrent(t *testing.T) {
	tests := []struct {
		name string
		// afterLeader starts the init of the file in map order only once
		// the other's seed leads, while that init still runs: the
		// file's order must not decide where the group is seeded.
		afterLeader bool
	}{
		{"at once", false},
		{"reversed file first", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file, addrs := raftNodes(t, 3)
			m, err := placement.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			rev := *m
			rev.Nodes = slices.Clone(m.Nodes)
			slices.Reverse(rev.Nodes)
			admins := []*admCluster{{t: t, file: file}, {t: t, file: writeMapFile(t, &rev)}}
			codes, outs, errs := make([]int, 2), make([]string, 2), make([]string, 2)
			opts := &client.Options{Secret: []byte(admSecret)}
			start, led := make(chan struct{}), make(chan struct{})
			var wg sync.WaitGroup
			for i, c := range admins {
				wg.Go(func() {
					<-start
					if i == 0 && tt.afterLeader {
						<-led
					}
					codes[i], outs[i], errs[i] = c.admin("init")
				})
			}
			close(start)
			if tt.afterLeader {
				waitAnyLeader(t, addrs, opts)
			}
			close(led)
			wg.Wait()
			won := slices.Index(codes, 0)
			lost := 1 - won
			if won < 0 || codes[lost] != 1 || !strings.Contains(errs[lost], "already initialised") {
				t.Fatalf("two inits: exits %v\nstdout %q\nstderr %q\nwant one 0 and one 1 saying already initialised", codes, outs, errs)
			}
			if !strings.Contains(outs[won], "via "+addrs["n1"]+";") {
				t.Fatalf("the %s file won, not via the seed n1 (%s): %s", []string{"ordered", "reversed"}[won], addrs["n1"], outs[won])
			}
			t.Logf("the losing init said: %s", strings.TrimSpace(errs[lost]))
			deadline := time.Now().Add(10 * time.Second)
			for {
				var sts []cluster.Status
				for _, id := range []string{"n1", "n2", "n3"} {
					st, err := cluster.NewClient(addrs[id], opts).LocalStatus(context.Background())
					if err != nil {
						t.Fatalf("status of %s: %v", id, err)
					}
					sts = append(sts, st)
				}
				same := true
				for _, st := range sts {
					same = same && st.Leader != "" && st.Leader == sts[0].Leader && slices.Equal(st.Voters, []string{"n1", "n2", "n3"}) && st.Epoch == m.Epoch
				}
				if same {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the nodes do not agree on one group: %+v", sts)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// waitAnyLeader waits until a node of addrs reports a Raft leader.
func waitAnyLeader(t *testing.T, addrs map[string]string, opts *client.Options) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, addr := range addrs {
			if st, err := cluster.NewClient(addr, opts).LocalStatus(context.Background()); err == nil && st.Leader != "" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no node reports a leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAdminInitSeedDown: init refuses, naming the seed, when the node the
// map seeds on does not answer, rather than seeding a node that does.
func TestAdminInitSeedDown(t *testing.T) {
	file, addrs := raftNodes(t, 3)
	m, err := placement.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	// Last in the file, lowest in id: the seed.
	m.Nodes = append(m.Nodes, placement.Node{ID: "n0", Addr: dead, Zone: "zn0"})
	c := &admCluster{t: t, file: writeMapFile(t, m)}
	code, out, errs := c.admin("init")
	if code != 1 || !strings.Contains(errs, "node n0, which seeds the group") || !strings.Contains(errs, "does not answer") {
		t.Fatalf("init with the seed down: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	opts := &client.Options{Secret: []byte(admSecret)}
	for _, id := range []string{"n1", "n2", "n3"} {
		st, err := cluster.NewClient(addrs[id], opts).LocalStatus(context.Background())
		if err != nil || st.Epoch != 0 || st.Leader != "" || st.State != "Follower" {
			t.Fatalf("node %s after a refused init: %+v, %v; want an empty member", id, st, err)
		}
	}
}
