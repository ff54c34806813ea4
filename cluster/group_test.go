package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kintsugi-store/kintsugi/placement"
)

var testSecret = []byte("test cluster secret")

// testCluster is N in-process members on 127.0.0.1 whose Resolve finds
// each other's Raft addresses by node id.
type testCluster struct {
	t      *testing.T
	mu     sync.Mutex
	groups map[string]*Group
	addrs  map[string]string // id -> raft address, kept across restarts
	dirs   map[string]string
}

func newTestCluster(t *testing.T) *testCluster {
	tc := &testCluster{t: t, groups: map[string]*Group{}, addrs: map[string]string{}, dirs: map[string]string{}}
	t.Cleanup(func() {
		// Not under mu: a closing leader's reconciler may be resolving.
		for _, g := range tc.live() {
			g.Close()
		}
	})
	return tc
}

func testConfig(id, dir, bind string, secret []byte) Config {
	return Config{
		ID: id, Dir: dir, Bind: bind, Secret: secret,
		HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond, LeaderLeaseTimeout: 150 * time.Millisecond,
		SnapshotThreshold: 4, TrailingLogs: 2, ReconcileInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// start opens member id (again, on its old address and directory, if it
// ran before).
func (tc *testCluster) start(id string) *Group {
	tc.t.Helper()
	tc.mu.Lock()
	dir, ok := tc.dirs[id]
	if !ok {
		dir = tc.t.TempDir()
		tc.dirs[id] = dir
	}
	bind := tc.addrs[id]
	if bind == "" {
		bind = "127.0.0.1:0"
	}
	tc.mu.Unlock()
	cfg := testConfig(id, dir, bind, testSecret)
	cfg.Resolve = tc.resolve
	var g *Group
	var err error
	// A port just closed may take a moment to be free again.
	for range 50 {
		if g, err = Open(cfg); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		tc.t.Fatalf("open %s: %v", id, err)
	}
	tc.mu.Lock()
	tc.groups[id] = g
	tc.addrs[id] = g.Addr()
	tc.mu.Unlock()
	return g
}

func (tc *testCluster) resolve(_ context.Context, n placement.Node) (string, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if _, up := tc.groups[n.ID]; !up {
		return "", fmt.Errorf("node %s is down", n.ID)
	}
	return tc.addrs[n.ID], nil
}

// kill closes member id as a crash would, keeping its directory.
func (tc *testCluster) kill(id string) {
	tc.mu.Lock()
	g := tc.groups[id]
	delete(tc.groups, id)
	tc.mu.Unlock()
	g.Close()
}

func (tc *testCluster) live() []*Group {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	var out []*Group
	for _, g := range tc.groups {
		out = append(out, g)
	}
	return out
}

// leader waits for exactly one live member to lead and returns it.
func (tc *testCluster) leader(within time.Duration) *Group {
	tc.t.Helper()
	var g *Group
	tc.eventually(within, "one leader", func() bool {
		g = nil
		for _, m := range tc.live() {
			if m.Status().State == "Leader" {
				if g != nil {
					return false
				}
				g = m
			}
		}
		return g != nil
	})
	return g
}

func (tc *testCluster) eventually(within time.Duration, what string, ok func() bool) {
	tc.t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			tc.t.Fatalf("after %v: no %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// converged waits until every live member holds a map of epoch e.
func (tc *testCluster) converged(e uint64, within time.Duration) {
	tc.t.Helper()
	tc.eventually(within, fmt.Sprintf("map epoch %d on every member", e), func() bool {
		for _, g := range tc.live() {
			if m := g.Map(); m == nil || m.Epoch != e {
				return false
			}
		}
		return true
	})
}

// boot starts ids, seeds the first with a map naming ids and waits until
// all of them vote.
func boot(t *testing.T, ids ...string) (*testCluster, *placement.Map) {
	tc := newTestCluster(t)
	for _, id := range ids {
		tc.start(id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := tc.groups[ids[0]].Bootstrap(ctx, testMap(1, ids...))
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	want := min(len(ids), DefaultVoters)
	tc.eventually(10*time.Second, fmt.Sprintf("%d voters", want), func() bool {
		return len(tc.leader(5*time.Second).Status().Voters) == want
	})
	tc.converged(m.Epoch, 5*time.Second)
	return tc, m
}

func TestGroupApplyThroughLeader(t *testing.T) {
	tc, m := boot(t, "a", "b", "c", "d")
	l := tc.leader(5 * time.Second)
	st := l.Status()
	if len(st.Voters) != 3 || len(st.Nonvoters) != 1 {
		t.Fatalf("voters %v, non-voters %v; want 3 and 1", st.Voters, st.Nonvoters)
	}
	ctx := context.Background()
	got, err := l.Apply(ctx, placement.AddNode(placement.Node{ID: "e", Addr: "127.0.0.1:9", Zone: "ze"}))
	if err != nil {
		t.Fatal(err)
	}
	if got.Epoch != m.Epoch+1 {
		t.Fatalf("epoch %d after add, want %d", got.Epoch, m.Epoch+1)
	}
	tc.converged(got.Epoch, 5*time.Second)
	// A follower does not apply; it names the leader.
	for _, g := range tc.live() {
		if g == l {
			continue
		}
		_, err := g.Apply(ctx, placement.DrainNode("a"))
		var nl *NotLeaderError
		if !errors.As(err, &nl) || nl.Leader != l.ID() || nl.LeaderAddr != l.Addr() {
			t.Fatalf("follower %s: err = %v, want NotLeaderError naming %s", g.ID(), err, l.ID())
		}
	}
	// Every member applied the same map.
	want, _ := got.Marshal()
	for _, g := range tc.live() {
		if b, _ := g.Map().Marshal(); string(b) != string(want) {
			t.Errorf("member %s holds\n%s\nwant\n%s", g.ID(), b, want)
		}
	}
}

func TestGroupLeaderKilled(t *testing.T) {
	tc, m := boot(t, "a", "b", "c")
	old := tc.leader(5 * time.Second)
	start := time.Now()
	tc.kill(old.ID())
	l := tc.leader(15 * time.Second)
	elapsed := time.Since(start)
	t.Logf("leader %s killed; %s elected after %v (election timeout 300ms)", old.ID(), l.ID(), elapsed.Round(time.Millisecond))
	if l.ID() == old.ID() {
		t.Fatal("the dead leader still leads")
	}
	got, err := l.Apply(context.Background(), placement.AddNode(placement.Node{ID: "d", Addr: "127.0.0.1:9", Zone: "zd"}).Expecting(m.Epoch))
	if err != nil {
		t.Fatalf("apply on the new leader: %v", err)
	}
	tc.converged(got.Epoch, 5*time.Second)
}

// TestGroupLeaderLeaves takes the node that leads out of the voters, by a
// drain (it stays a non-voter) or a forced removal (it leaves the group).
// It must not demote or remove itself: it hands its leadership to a voter
// the map keeps, the new leader demotes or removes it, and the group goes
// on applying changes on every member it keeps.
func TestGroupLeaderLeaves(t *testing.T) {
	tests := []struct {
		name   string
		change func(id string) placement.Change
		stays  bool // the old leader stays a non-voter
	}{
		{name: "drain", change: placement.DrainNode, stays: true},
		{name: "forced remove", change: func(id string) placement.Change { return placement.RemoveNode(id, true) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, m := boot(t, "a", "b", "c", "d")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var term uint64 // the old leader's, when it took the change
			old, left := tc.applyOnLeader(ctx, func(l *Group) placement.Change {
				term = l.Status().Term
				return tt.change(l.ID())
			})
			if left.Epoch != m.Epoch+1 {
				t.Fatalf("epoch %d after the %s, want %d", left.Epoch, tt.name, m.Epoch+1)
			}
			var others []string
			for _, n := range m.Nodes {
				if n.ID != old.ID() {
					others = append(others, n.ID)
				}
			}
			slices.Sort(others)
			wantNonvoters := []string{}
			if tt.stays {
				wantNonvoters = []string{old.ID()}
			}
			kept := func() []*Group {
				var out []*Group
				for _, g := range tc.live() {
					if tt.stays || g != old {
						out = append(out, g)
					}
				}
				return out
			}
			tc.eventually(10*time.Second, fmt.Sprintf("voters %v and non-voters %v", others, wantNonvoters), func() bool {
				for _, g := range kept() {
					st := g.Status()
					if !slices.Equal(st.Voters, others) || !slices.Equal(st.Nonvoters, wantNonvoters) {
						return false
					}
				}
				return true
			})
			l := tc.leader(5 * time.Second)
			if l == old {
				t.Fatalf("%s still leads", old.ID())
			}
			if st := old.Status(); st.State == "Shutdown" || st.State == "Leader" {
				t.Fatalf("old leader %s is %s, want it to follow", old.ID(), st.State)
			}
			// The entry that took the old leader's vote was written by a
			// later leader, not by the old one in its own term.
			if at, ok := voteTakenAt(t, l, old.ID()); !ok || at <= term {
				t.Fatalf("%s's vote taken by an entry of term %d (found %v); want a term after the old leader's %d", old.ID(), at, ok, term)
			}
			// Every member, the old leader included, applied the change.
			tc.converged(left.Epoch, 5*time.Second)

			// The group still takes changes, and every member it kept
			// applies them.
			l, got := tc.applyOnLeader(ctx, func(*Group) placement.Change {
				return placement.AddNode(placement.Node{ID: "e", Addr: "127.0.0.1:9", Zone: "ze"}).Expecting(left.Epoch)
			})
			if got.Epoch != left.Epoch+1 {
				t.Fatalf("epoch %d after the add, want %d", got.Epoch, left.Epoch+1)
			}
			tc.eventually(5*time.Second, fmt.Sprintf("map epoch %d on every member kept", got.Epoch), func() bool {
				for _, g := range kept() {
					if m := g.Map(); m == nil || m.Epoch != got.Epoch {
						return false
					}
				}
				return true
			})
			if !tt.stays {
				return
			}
			// The drained node follows: it names the new leader.
			var nl *NotLeaderError
			if _, err := old.Apply(ctx, placement.DrainNode("e")); !errors.As(err, &nl) || nl.Leader != l.ID() {
				t.Fatalf("apply on the drained node: err = %v, want NotLeaderError naming %s", err, l.ID())
			}
		})
	}
}

// applyOnLeader applies the change made for the member that leads, and
// returns that member and the new map. A NotLeaderError changed nothing:
// it tries again while leadership moves (a loaded machine can miss a
// heartbeat), until ctx ends.
func (tc *testCluster) applyOnLeader(ctx context.Context, change func(leader *Group) placement.Change) (*Group, *placement.Map) {
	tc.t.Helper()
	for {
		l := tc.leader(5 * time.Second)
		c := change(l)
		m, err := l.Apply(ctx, c)
		var nl *NotLeaderError
		if errors.As(err, &nl) && ctx.Err() == nil {
			continue
		}
		if err != nil {
			tc.t.Fatalf("%s on leader %s: %v", c, l.ID(), err)
		}
		return l, m
	}
}

// voteTakenAt returns the term of the first configuration entry in g's log
// in which id, a voter before, no longer votes.
func voteTakenAt(t *testing.T, g *Group, id string) (uint64, bool) {
	t.Helper()
	first, err := g.store.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := g.store.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	voted := false
	for i := first; i <= last; i++ {
		var e raft.Log
		if err := g.store.GetLog(i, &e); err != nil {
			t.Fatalf("log entry %d: %v", i, err)
		}
		if e.Type != raft.LogConfiguration {
			continue
		}
		votes := slices.ContainsFunc(raft.DecodeConfiguration(e.Data).Servers, func(s raft.Server) bool {
			return string(s.ID) == id && s.Suffrage == raft.Voter
		})
		if voted && !votes {
			return e.Term, true
		}
		voted = votes
	}
	return 0, false
}

func TestGroupConcurrentCompareAndSet(t *testing.T) {
	tc, m := boot(t, "a", "b", "c")
	l := tc.leader(5 * time.Second)
	for _, expect := range []bool{true, false} {
		cur := l.Map().Epoch
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() {
				op := placement.AddNode(placement.Node{ID: fmt.Sprintf("x%d-%v", i, expect), Addr: fmt.Sprintf("127.0.0.1:%d", 100+i+int(cur)*2), Zone: "zx"})
				if expect {
					op = op.Expecting(cur)
				}
				_, errs[i] = l.Apply(context.Background(), op)
			})
		}
		wg.Wait()
		var conflicts, ok int
		for _, err := range errs {
			var ce *placement.ConflictError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &ce) && ce.Expected == cur && ce.Current == cur+1:
				conflicts++
			default:
				t.Fatalf("expect=%v: unexpected error %v", expect, err)
			}
		}
		if expect && (ok != 1 || conflicts != 1) {
			t.Fatalf("with --expect-epoch: %d won, %d conflicts; want exactly one of each", ok, conflicts)
		}
		if !expect && ok != 2 {
			t.Fatalf("without --expect-epoch: %d succeeded, want both", ok)
		}
		tc.converged(cur+uint64(ok), 5*time.Second)
	}
	if got := l.Map(); len(got.Nodes) != len(m.Nodes)+3 {
		t.Fatalf("%d nodes in the end, want %d", len(got.Nodes), len(m.Nodes)+3)
	}
}

func TestGroupCatchUpFromSnapshot(t *testing.T) {
	tc, _ := boot(t, "a", "b", "c")
	l := tc.leader(5 * time.Second)
	var away *Group
	for _, g := range tc.live() {
		if g != l {
			away = g
			break
		}
	}
	awayID := away.ID()
	tc.kill(awayID)
	// More changes than the trailing log keeps, then a snapshot: the
	// member coming back can only catch up from the snapshot.
	var last *placement.Map
	for i := range 8 {
		var err error
		last, err = l.Apply(context.Background(), placement.AddNode(placement.Node{ID: fmt.Sprintf("n%d", i), Addr: fmt.Sprintf("127.0.0.1:%d", 200+i), Zone: "zn"}))
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Snapshot(); err != nil {
		t.Fatal(err)
	}
	back := tc.start(awayID)
	tc.converged(last.Epoch, 10*time.Second)
	want, _ := last.Marshal()
	if got, _ := back.Map().Marshal(); string(got) != string(want) {
		t.Fatalf("returning member holds\n%s\nwant\n%s", got, want)
	}
	// And it restarts from its own snapshot and log.
	tc.kill(awayID)
	again := tc.start(awayID)
	if m := again.Map(); m == nil || m.Epoch != last.Epoch {
		t.Fatalf("after a restart the member holds %v, want epoch %d at once", m, last.Epoch)
	}
}

func TestFSMSnapshotRestore(t *testing.T) {
	f := newFSM(nil)
	m := testMap(9, "a", "b", "c")
	f.set(m)
	s, _ := f.Snapshot()
	sink := &memSink{}
	if err := s.Persist(sink); err != nil {
		t.Fatal(err)
	}
	var got *placement.Map
	g := newFSM(func(m *placement.Map) { got = m })
	if err := g.Restore(io.NopCloser(&sink.buf)); err != nil {
		t.Fatal(err)
	}
	a, _ := m.Marshal()
	b, _ := got.Marshal()
	if string(a) != string(b) {
		t.Fatalf("restored\n%s\nwant\n%s", b, a)
	}
	if err := g.Restore(io.NopCloser(strings.NewReader("{not json"))); err == nil {
		t.Fatal("restoring garbage succeeded")
	}
}

func TestWrongSecretCannotVoteOrLead(t *testing.T) {
	tc, m := boot(t, "a", "b", "c")
	l := tc.leader(5 * time.Second)
	term := l.Status().Term
	// An impostor without the secret claims to be a fourth voter of the
	// same group and campaigns: every connection it makes fails the
	// handshake, so it never reaches a member's Raft.
	cfg := testConfig("intruder", t.TempDir(), "127.0.0.1:0", []byte("not the secret"))
	imp, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer imp.Close()
	if err := imp.bootstrapWith(tc.live()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // several of its election timeouts
	if st := l.Status(); st.State != "Leader" || st.Term != term {
		t.Fatalf("leader %s is %s at term %d (was term %d): the intruder disturbed the group", l.ID(), st.State, st.Term, term)
	}
	if imp.Status().State == "Leader" {
		t.Fatal("the intruder leads")
	}
	if _, err := imp.Apply(context.Background(), placement.ReplaceMap(testMap(1, "x", "y", "z"))); err == nil {
		t.Fatal("the intruder applied a change")
	}
	for _, g := range tc.live() {
		if g.Map().Epoch != m.Epoch {
			t.Fatalf("member %s at epoch %d, want %d", g.ID(), g.Map().Epoch, m.Epoch)
		}
	}

	// The handshake itself, both ways round.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	sl := newStreamLayer(ln, nil, testSecret, nil, nil, cfg.Logger)
	defer sl.Close()
	bad := newStreamLayer(mustListen(t), nil, []byte("wrong"), nil, nil, cfg.Logger)
	defer bad.Close()
	if _, err := bad.Dial(rafAddr(sl), time.Second); !errors.Is(err, ErrHandshake) {
		t.Fatalf("dial with the wrong secret: err = %v, want ErrHandshake", err)
	}
	good := newStreamLayer(mustListen(t), nil, testSecret, nil, nil, cfg.Logger)
	defer good.Close()
	if _, err := good.Dial(rafAddr(bad), time.Second); !errors.Is(err, ErrHandshake) {
		t.Fatalf("dial to a listener with the wrong secret: err = %v, want ErrHandshake", err)
	}
	c, err := good.Dial(rafAddr(sl), time.Second)
	if err != nil {
		t.Fatalf("dial with the secret: %v", err)
	}
	c.Close()
}

// TestSettle: a member that lost its leadership with its entry in the
// log learns, once it has applied that index from a later leader,
// whether the entry committed there is its own (same bytes): then it
// answers the change's result, a refused change's error included; if
// another entry was committed there, NotLeaderError, "nothing changed".
// One that cannot learn it within its context answers nothing (ok
// false), and the outcome stays unknown.
func TestSettle(t *testing.T) {
	tc, m := boot(t, "a", "b", "c")
	ctx := context.Background()
	l, got := tc.applyOnLeader(ctx, func(*Group) placement.Change {
		return placement.AddNode(placement.Node{ID: "d", Addr: "127.0.0.1:9", Zone: "zd"})
	})
	added := lastCommand(t, l)
	l = tc.leader(5 * time.Second)
	var ce *placement.ConflictError
	if _, err := l.Apply(ctx, placement.DrainNode("d").Expecting(m.Epoch)); !errors.As(err, &ce) {
		t.Fatalf("a drain expecting epoch %d after it moved: %v, want a ConflictError", m.Epoch, err)
	}
	refused := lastCommand(t, l)
	tc.converged(got.Epoch, 5*time.Second)
	for _, g := range tc.live() {
		tc.eventually(5*time.Second, g.ID()+" applies the refused change", func() bool { return g.raft.AppliedIndex() >= refused })
		var ours, theirs raft.Log
		if err := g.store.GetLog(added, &ours); err != nil {
			t.Fatal(err)
		}
		if err := g.store.GetLog(refused, &theirs); err != nil {
			t.Fatal(err)
		}
		sm, err, ok := g.settle(ctx, added, ours.Data)
		if !ok || err != nil || sm == nil || sm.Epoch != got.Epoch {
			t.Fatalf("%s: settle of the committed add: %v, %v, ok %v; want the map of epoch %d", g.ID(), sm, err, ok, got.Epoch)
		}
		if _, err, ok := g.settle(ctx, refused, theirs.Data); !ok || !errors.As(err, &ce) {
			t.Fatalf("%s: settle of the refused drain: %v, ok %v; want its ConflictError", g.ID(), err, ok)
		}
		var nl *NotLeaderError
		if _, err, ok := g.settle(ctx, added, theirs.Data); !ok || !errors.As(err, &nl) {
			t.Fatalf("%s: settle of an entry another took the index of: %v, ok %v; want NotLeaderError", g.ID(), err, ok)
		}
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		if _, _, ok := g.settle(short, refused+1000, ours.Data); ok {
			t.Fatalf("%s: settle of an index not applied yet answered", g.ID())
		}
		cancel()
	}
}

// lastCommand returns the index of the last command (not configuration)
// entry in g's log.
func lastCommand(t *testing.T, g *Group) uint64 {
	t.Helper()
	for i := g.raft.LastIndex(); i > 0; i-- {
		var l raft.Log
		if err := g.store.GetLog(i, &l); err == nil && l.Type == raft.LogCommand {
			return i
		}
	}
	t.Fatal("no command in the log")
	return 0
}
