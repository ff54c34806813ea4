package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// signed serves h only to calls signed with testSecret, as a node does.
func signed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := client.Verify(r, testSecret, time.Now(), time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// bootHTTP starts members a, b, c, each behind a node-like HTTP server,
// with a map naming those servers, and bootstraps the group at a over HTTP.
func bootHTTP(t *testing.T) (*testCluster, map[string]*Client, *placement.Map) {
	return bootHTTPVia(t, func(_, addr string) string { return addr })
}

// bootHTTPVia is bootHTTP with each node's address in the map given by
// via (e.g. a proxy in front of its server).
func bootHTTPVia(t *testing.T, via func(id, addr string) string) (*testCluster, map[string]*Client, *placement.Map) {
	tc, clients, m := startHTTPVia(t, via)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := clients["a"].Init(ctx, m)
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	tc.eventually(10*time.Second, "3 voters", func() bool { return len(tc.leader(5*time.Second).Status().Voters) == 3 })
	tc.converged(got.Epoch, 5*time.Second)
	return tc, clients, got
}

// startHTTPVia starts members a, b, c as bootHTTPVia does, without
// initialising the group.
func startHTTPVia(t *testing.T, via func(id, addr string) string) (*testCluster, map[string]*Client, *placement.Map) {
	tc := newTestCluster(t)
	opts := &client.Options{Secret: testSecret}
	ids := []string{"a", "b", "c"}
	m := &placement.Map{Epoch: 1, DataShards: 2, ParityShards: 1}
	clients := map[string]*Client{}
	for _, id := range ids {
		g := tc.start(id)
		srv := httptest.NewServer(signed(Handler(g, opts)))
		t.Cleanup(srv.Close)
		addr := via(id, srv.Listener.Addr().String())
		m.Nodes = append(m.Nodes, placement.Node{ID: id, Addr: addr, Zone: "z" + id})
		clients[id] = NewClient(addr, opts)
	}
	return tc, clients, m
}

func TestHTTPApplyAnywhere(t *testing.T) {
	tc, clients, m := bootHTTP(t)
	ctx := context.Background()
	l := tc.leader(5 * time.Second)
	var follower string
	for id := range clients {
		if id != l.ID() {
			follower = id
		}
	}
	// A follower forwards to the leader.
	got, err := clients[follower].Apply(ctx, placement.AddNode(placement.Node{ID: "d", Addr: "127.0.0.1:1", Zone: "zd"}).Expecting(m.Epoch))
	if err != nil {
		t.Fatalf("apply through follower %s: %v", follower, err)
	}
	if got.Epoch != m.Epoch+1 {
		t.Fatalf("epoch %d, want %d", got.Epoch, m.Epoch+1)
	}
	// The same expected epoch again loses, with both epochs named.
	_, err = clients[follower].Apply(ctx, placement.AddNode(placement.Node{ID: "e", Addr: "127.0.0.1:2", Zone: "ze"}).Expecting(m.Epoch))
	var ce *placement.ConflictError
	if !errors.As(err, &ce) || ce.Expected != m.Epoch || ce.Current != got.Epoch {
		t.Fatalf("stale apply: err = %v, want a conflict at epoch %d", err, got.Epoch)
	}
	_, err = clients[follower].Apply(ctx, placement.DrainNode("nobody"))
	if !errors.Is(err, placement.ErrInvalidChange) {
		t.Fatalf("drain of an unknown node: err = %v, want ErrRejected", err)
	}
	if _, err := clients[follower].Init(ctx, m); !errors.Is(err, ErrInitialised) {
		t.Fatalf("init of a running group: err = %v, want ErrInitialised", err)
	}
	// An unsigned caller gets nothing done.
	if _, err := NewClient(clients[l.ID()].Addr(), nil).Apply(ctx, placement.DrainNode("a")); err == nil {
		t.Fatal("an unsigned apply succeeded")
	}
	if e := l.Map().Epoch; e != got.Epoch {
		t.Fatalf("leader at epoch %d after refused changes, want %d", e, got.Epoch)
	}

	st, err := clients[follower].Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Leader != l.ID() || !st.Quorum || len(st.Voters) != 3 || len(st.Members) != 3 {
		t.Fatalf("status %+v: want leader %s, quorum, 3 voters", st, l.ID())
	}
	for _, mb := range st.Members {
		if !mb.Reachable || mb.LastIndex == 0 {
			t.Errorf("member %+v: want reachable with a last index", mb)
		}
	}
}

func TestHTTPWatch(t *testing.T) {
	tc, clients, m := bootHTTP(t)
	ctx := context.Background()
	// Nothing newer: the poll ends with the current map when wait ends.
	start := time.Now()
	got, err := clients["b"].Map(ctx, m.Epoch, 300*time.Millisecond)
	if err != nil || got.Epoch != m.Epoch || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("idle poll: epoch %v, err %v after %v", got, err, time.Since(start))
	}
	done := make(chan *placement.Map)
	go func() {
		got, err := clients["c"].Map(ctx, m.Epoch, 20*time.Second)
		if err != nil {
			t.Error(err)
		}
		done <- got
	}()
	time.Sleep(100 * time.Millisecond)
	l := tc.leader(5 * time.Second)
	want, err := l.Apply(ctx, placement.AddNode(placement.Node{ID: "d", Addr: "127.0.0.1:1", Zone: "zd"}))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		if got.Epoch != want.Epoch {
			t.Fatalf("watch woke with epoch %d, want %d", got.Epoch, want.Epoch)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not wake on a change")
	}
}

// TestInitConcurrent: two inits of one member at once, of the same map or
// of the map with its nodes in another order. Exactly one seeds the group;
// the other hears ErrInitialised and replaces nothing; every member ends
// in that one group, under one leader, with the winner's map.
func TestInitConcurrent(t *testing.T) {
	for _, reorder := range []bool{false, true} {
		t.Run(fmt.Sprintf("reordered=%v", reorder), func(t *testing.T) {
			tc, clients, m := startHTTPVia(t, func(_, addr string) string { return addr })
			maps := []*placement.Map{m, m}
			if reorder {
				r := *m
				r.Nodes = slices.Clone(m.Nodes)
				slices.Reverse(r.Nodes)
				maps[1] = &r
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got := make([]*placement.Map, 2)
			errs := make([]error, 2)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range 2 {
				wg.Go(func() {
					<-start
					got[i], errs[i] = clients["a"].Init(ctx, maps[i])
				})
			}
			close(start)
			wg.Wait()
			var won *placement.Map
			for i, err := range errs {
				switch {
				case err == nil && won == nil:
					won = got[i]
				case err == nil:
					t.Fatal("both inits succeeded")
				case !errors.Is(err, ErrInitialised):
					t.Fatalf("init %d: err = %v, want ErrInitialised for the loser", i, err)
				}
			}
			if won == nil {
				t.Fatalf("no init succeeded: %v", errs)
			}
			want, _ := won.Marshal()
			var leader string
			tc.eventually(10*time.Second, "one group of 3 voters holding the winner's map", func() bool {
				leader = ""
				for _, g := range tc.live() {
					st := g.Status()
					b, _ := g.Map().Marshal()
					if st.Leader == "" || leader != "" && st.Leader != leader || !slices.Equal(st.Voters, []string{"a", "b", "c"}) || string(b) != string(want) {
						return false
					}
					leader = st.Leader
				}
				return true
			})
			if won.Epoch != m.Epoch {
				t.Fatalf("seeded at epoch %d, want the map's %d", won.Epoch, m.Epoch)
			}
		})
	}
}
