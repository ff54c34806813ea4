package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
	"github.com/kintsugi-store/kintsugi/placement"
)

// nsCluster is storage nodes on hosts of their own (network namespaces),
// each running its Raft member, and a cluster file naming the first three.
type nsCluster struct {
	t      *testing.T
	net    *proctest.Net
	dir    string
	file   string
	secret string
	hosts  map[string]*proctest.Host // node id -> its host
	nodes  map[string]*proctest.Proc
	admins []*proctest.Host
}

const nsNodePort, nsRaftPort = 9101, 9201

func startNSCluster(t *testing.T, nodes, admins int) *nsCluster {
	t.Helper()
	c := &nsCluster{t: t, net: proctest.NewNet(t), dir: t.TempDir(), secret: "netns-test-secret",
		hosts: map[string]*proctest.Host{}, nodes: map[string]*proctest.Proc{}}
	m := &placement.Map{Epoch: 1, DataShards: 2, ParityShards: 1}
	for i := 1; i <= nodes; i++ {
		id := fmt.Sprintf("n%d", i)
		h := c.net.Host(id)
		c.hosts[id] = h
		p, err := h.Start(context.Background(), "node "+id, testBin, filepath.Join(c.dir, id+".log"), c.env(),
			"storagenode", "--id", id, "--listen", h.Addr(nsNodePort), "--data", filepath.Join(c.dir, id),
			"--raft-listen", h.Addr(nsRaftPort))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Kill)
		c.nodes[id] = p
		if i <= 3 {
			m.Nodes = append(m.Nodes, placement.Node{ID: id, Addr: h.Addr(nsNodePort), Zone: "z" + id})
		}
	}
	for i := 1; i <= admins; i++ {
		c.admins = append(c.admins, c.net.Host(fmt.Sprintf("admin%d", i)))
	}
	b, _ := m.Marshal()
	c.file = filepath.Join(c.dir, "cluster.yaml")
	if err := os.WriteFile(c.file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *nsCluster) env() []string { return []string{"KINTSUGI_CLUSTER_SECRET=" + c.secret} }

// admin runs `kintsugi admin args...` on admin host i and returns its exit
// code and output.
func (c *nsCluster) admin(i int, args ...string) (int, string, string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.admins[i].Command(ctx, testBin, append([]string{"admin"}, args...)...)
	cmd.Env = append(os.Environ(), c.env()...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	}
	c.t.Fatalf("admin %v: %v", args, err)
	return 0, "", ""
}

func (c *nsCluster) mustAdmin(i int, args ...string) string {
	c.t.Helper()
	code, out, errs := c.admin(i, args...)
	if code != 0 {
		c.t.Fatalf("admin %v on %s: exit %d\n%s%s", args, c.admins[i].Name, code, out, errs)
	}
	return out
}

// mapOf returns node id's own map, asked from admin host 0.
func (c *nsCluster) mapOf(id string) *placement.Map {
	c.t.Helper()
	out := c.mustAdmin(0, "--endpoint", c.hosts[id].Addr(nsNodePort), "--json", "map", "show")
	var m placement.Map
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		c.t.Fatalf("map show on %s: %v\n%s", id, err, out)
	}
	return &m
}

// sameMapEverywhere waits until every node of ids holds the same map of
// epoch want.
func (c *nsCluster) sameMapEverywhere(want uint64, ids ...string) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var first []byte
		same := true
		for _, id := range ids {
			m := c.mapOf(id)
			b, _ := m.Marshal()
			if m.Epoch != want || first != nil && !bytes.Equal(b, first) {
				same = false
				break
			}
			first = b
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			for _, id := range ids {
				b, _ := c.mapOf(id).Marshal()
				c.t.Logf("node %s:\n%s", id, b)
			}
			c.t.Fatalf("nodes %v do not all hold the same map of epoch %d", ids, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestNetnsAdminRace: two admins on two hosts change the map at once
// through different nodes. With --expect-epoch of the same epoch exactly
// one wins and the other exits 3; without it both succeed, one after the
// other; either way every node ends with the same map.
func TestNetnsAdminRace(t *testing.T) {
	c := startNSCluster(t, 7, 2)
	if out := c.mustAdmin(0, "--cluster", c.file, "init"); !strings.Contains(out, "initialised the cluster map at epoch 1") {
		t.Fatalf("init: %s", out)
	}
	add := func(i int, via, id string, expect string) (int, string) {
		args := []string{"--endpoint", c.hosts[via].Addr(nsNodePort), "nodes", "add", "--id", id, "--addr", c.hosts[id].Addr(nsNodePort), "--zone", "z" + id}
		if expect != "" {
			args = append(args, "--expect-epoch", expect)
		}
		code, _, errs := c.admin(i, args...)
		return code, errs
	}
	race := func(expect string, a, b string) [2]int {
		var codes [2]int
		var msgs [2]string
		var wg sync.WaitGroup
		for i, id := range []string{a, b} {
			wg.Go(func() { codes[i], msgs[i] = add(i, []string{"n1", "n2"}[i], id, expect) })
		}
		wg.Wait()
		t.Logf("expect-epoch %q: exits %v %q", expect, codes, msgs)
		return codes
	}
	codes := race("1", "n4", "n5")
	if !(codes == [2]int{0, exitConflict} || codes == [2]int{exitConflict, 0}) {
		t.Fatalf("with --expect-epoch 1: exits %v, want one 0 and one %d", codes, exitConflict)
	}
	winner := "n4"
	if codes[0] != 0 {
		winner = "n5"
	}
	c.sameMapEverywhere(2, "n1", "n2", "n3", winner)
	if codes := race("", "n6", "n7"); codes != [2]int{0, 0} {
		t.Fatalf("without --expect-epoch: exits %v, want both 0", codes)
	}
	c.sameMapEverywhere(4, "n1", "n2", "n3", winner, "n6", "n7")
}
