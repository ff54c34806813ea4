package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/kintsugi-store/kintsugi/placement"
)

// Config configures a Group member.
type Config struct {
	ID   string // the node's id in the map; the Raft server id. Required.
	Dir  string // Raft log, stable store and snapshots. Required.
	Bind string // TCP address to listen for Raft peers on. Required.
	// Advertise is the address peers dial, if not Bind's (e.g. Bind is
	// 0.0.0.0:9201). Must be an IP:port.
	Advertise string
	// Secret is the cluster secret the transport handshake proves.
	Secret []byte
	// ServerTLS and ClientTLS, if set, wrap Raft connections in TLS.
	ServerTLS, ClientTLS *tls.Config
	// Voters is how many nodes the leader lets vote (3 or 5; 0 means
	// DefaultVoters), chosen by PickVoters.
	Voters int
	// Resolve returns the Raft address of a node of the map (asking the
	// node itself). The leader uses it to bring nodes into the group;
	// nil leaves membership alone (a single-member group).
	Resolve func(ctx context.Context, n placement.Node) (string, error)
	// OnMap is called with every new map, in log order, on every member.
	OnMap func(*placement.Map)
	// Logger receives the group's own and Raft's warnings. nil: slog.Default().
	Logger *slog.Logger

	// Raft timing; zero means the defaults of raft.DefaultConfig (1s
	// heartbeat and election timeouts), which tests shorten.
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout time.Duration
	// SnapshotThreshold is how many entries after the last snapshot
	// trigger the next; TrailingLogs how many stay behind it. Zero means
	// DefaultSnapshotThreshold and DefaultTrailingLogs.
	SnapshotThreshold, TrailingLogs uint64
	// ReconcileInterval is how often the leader re-checks membership
	// besides after each change; 0 means 5s.
	ReconcileInterval time.Duration
}

// Log compaction. A map is a few KiB and changes a few times a day, so a
// short log costs nothing to replay and a snapshot nothing to send: a node
// that was away for more than DefaultTrailingLogs changes gets the map
// whole.
const (
	DefaultSnapshotThreshold = 64
	DefaultTrailingLogs      = 64
)

// Validate reports whether cfg can open a Group.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("ID is empty"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("Dir is empty"))
	}
	if c.Bind == "" {
		errs = append(errs, errors.New("Bind is empty"))
	}
	if c.Voters != 0 && (c.Voters < 1 || c.Voters > 7) {
		errs = append(errs, fmt.Errorf("Voters %d out of range 1..7", c.Voters))
	}
	if len(errs) > 0 {
		return fmt.Errorf("cluster.Config: %w", errors.Join(errs...))
	}
	return nil
}

// Group is one member of the Raft group holding the cluster map. Its
// methods are safe for concurrent use.
type Group struct {
	cfg   Config
	log   *slog.Logger
	raft  *raft.Raft
	fsm   *fsm
	trans *raft.NetworkTransport
	store *raftboltdb.BoltStore

	kick chan struct{} // asks the reconciler to run now
	// boot lets one Bootstrap run at a time (a semaphore, so that a
	// waiting caller can give up with its context).
	boot chan struct{}
	stop context.CancelFunc
	done chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Open starts a member. A member with no state of its own waits to be
// bootstrapped (Bootstrap) or added by a leader; one with state rejoins
// the group it belonged to.
func Open(cfg Config) (*Group, error) {
	const op = "cluster.Open"
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Voters == 0 {
		cfg.Voters = DefaultVoters
	}
	if cfg.ReconcileInterval == 0 {
		cfg.ReconcileInterval = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	logger := cfg.Logger.With("raft", cfg.ID)
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	ln, err := net.Listen("tcp", cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	var adv net.Addr
	if cfg.Advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("%s: advertise address: %w", op, err)
		}
		adv = a
	} else if ta, ok := ln.Addr().(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("%s: listening on %s needs an advertise address peers can dial", op, cfg.Bind)
	}
	hl := hclog.FromStandardLogger(slog.NewLogLogger(logger.Handler(), slog.LevelWarn), &hclog.LoggerOptions{
		Name: "raft", Level: hclog.Warn,
	})
	stream := newStreamLayer(ln, adv, cfg.Secret, cfg.ServerTLS, cfg.ClientTLS, logger)
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: hl,
	})
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db")})
	if err != nil {
		trans.Close()
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hl)
	if err != nil {
		trans.Close()
		store.Close()
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hl
	rc.SnapshotThreshold = cmp(cfg.SnapshotThreshold, DefaultSnapshotThreshold)
	rc.TrailingLogs = cmp(cfg.TrailingLogs, DefaultTrailingLogs)
	rc.SnapshotInterval = 30 * time.Second
	// A leader never takes itself out of the voters (reconcile hands its
	// leadership over instead), but should a configuration do so anyway,
	// the member is to stay a follower that can still be given the log,
	// not shut its Raft down and freeze at the map it last applied.
	rc.ShutdownOnRemove = false
	if cfg.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	}
	if cfg.ElectionTimeout > 0 {
		rc.ElectionTimeout = cfg.ElectionTimeout
	}
	if cfg.LeaderLeaseTimeout > 0 {
		rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	}
	g := &Group{cfg: cfg, log: logger, trans: trans, store: store, kick: make(chan struct{}, 1), boot: make(chan struct{}, 1), done: make(chan struct{})}
	g.fsm = newFSM(func(m *placement.Map) {
		if cfg.OnMap != nil {
			cfg.OnMap(m)
		}
		g.poke()
	})
	r, err := raft.NewRaft(rc, g.fsm, store, store, snaps, trans)
	if err != nil {
		trans.Close()
		store.Close()
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	g.raft = r
	ctx, cancel := context.WithCancel(context.Background())
	g.stop = cancel
	go g.run(ctx)
	return g, nil
}

func cmp(v, def uint64) uint64 {
	if v == 0 {
		return def
	}
	return v
}

// Close leaves the group (as a crashed member would: the others elect a
// new leader if it led) and closes its stores.
func (g *Group) Close() error {
	g.closeOnce.Do(func() {
		// Raft first: it ends the membership calls the reconciler may be
		// waiting on.
		g.stop()
		err := g.raft.Shutdown().Error()
		<-g.done
		g.closeErr = errors.Join(err, g.trans.Close(), g.store.Close())
	})
	return g.closeErr
}

// ID returns the member's server id.
func (g *Group) ID() string { return g.cfg.ID }

// Addr returns the Raft address peers dial.
func (g *Group) Addr() string { return string(g.trans.LocalAddr()) }

// Map returns the current map, nil before initialisation. It is the map
// as this member has applied it: a follower may be a little behind.
func (g *Group) Map() *placement.Map {
	m, _ := g.fsm.current()
	return m
}

// Wait returns the map once its epoch is above after, or the current map
// (nil if none) when ctx is done.
func (g *Group) Wait(ctx context.Context, after uint64) *placement.Map {
	return g.fsm.wait(ctx, after)
}

// NotLeaderError is the answer of a member asked to change the map while
// it does not lead. Leader is empty when no leader is known.
type NotLeaderError struct {
	Leader, LeaderAddr string
	// Handover: the member leads but is handing its leadership over (it
	// is leaving the voters), so it takes no change; the next leader will.
	Handover bool
}

func (e *NotLeaderError) Error() string {
	if e.Handover {
		return "the Raft leader is handing its leadership over; no change is taken until the next leader is elected"
	}
	if e.Leader == "" {
		return "no Raft leader: a majority of the voters is not reachable"
	}
	return fmt.Sprintf("not the Raft leader; the leader is %s (%s)", e.Leader, e.LeaderAddr)
}

// Leader returns the id and Raft address of the leader as this member
// knows it; empty if none.
func (g *Group) Leader() (id, addr string) {
	a, i := g.raft.LeaderWithID()
	return string(i), string(a)
}

// Apply commits c through the Raft log and returns the map it made.
// Only the leader applies; others answer *NotLeaderError. Errors of the
// change itself (*placement.ConflictError, placement.ErrInvalidChange,
// placement.ErrInvalidMap, ErrNotInitialised) mean it changed nothing.
// Any other error (the leader lost its leadership, ctx ended) leaves
// the outcome unknown: the entry is applied everywhere or nowhere, and
// the map's epoch tells which.
func (g *Group) Apply(ctx context.Context, c placement.Change) (*placement.Map, error) {
	return g.propose(ctx, entry{Change: &c})
}

func (g *Group) propose(ctx context.Context, e entry) (*placement.Map, error) {
	if g.raft.State() != raft.Leader {
		id, addr := g.Leader()
		return nil, &NotLeaderError{Leader: id, LeaderAddr: addr}
	}
	e.ID = rand.Text()
	data, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("cluster.Apply: %w", err)
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	f := g.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) {
			id, addr := g.Leader()
			return nil, &NotLeaderError{Leader: id, LeaderAddr: addr}
		}
		if errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			// Refused before it reached the log: nothing changed.
			return nil, &NotLeaderError{Handover: true}
		}
		if errors.Is(err, raft.ErrLeadershipLost) && f.Index() > 0 {
			if m, err, ok := g.settle(ctx, f.Index(), data); ok {
				return m, err
			}
		}
		// The outcome is unknown. Every caller (a forwarding member, the
		// admin) says so once, wrapping this in an *OutcomeUnknownError,
		// so it only says why.
		return nil, fmt.Errorf("cluster.Apply: the Raft leader could not commit the change with a quorum of the voters: %w", err)
	}
	res, _ := f.Response().(result)
	return res.m, res.err
}

// settleWait bounds how long a proposer that lost its leadership waits
// to learn what became of its entry (settle): about what a new leader
// takes to be elected and to bring this member's log up to date.
const settleWait = 5 * time.Second

// settle learns what became of the entry data that this member, while it
// led, appended at index and then lost its leadership before it
// committed. Once this member has applied index from a later leader, the
// entry there is the one the group committed at that index (Raft's log
// matching), for good: if its bytes are data (every proposal's are its
// own, entry.ID), the change was applied and its result is returned, a
// refusal of the change included; otherwise it never will be, and the
// answer is *NotLeaderError, "nothing changed", which a forwarding member
// and the admin retry on the leader. ok is false if that was not learned
// within ctx and settleWait: a member cut off from the others cannot
// learn it, and the outcome stays unknown.
func (g *Group) settle(ctx context.Context, index uint64, data []byte) (_ *placement.Map, _ error, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, settleWait)
	defer cancel()
	for g.raft.AppliedIndex() < index {
		select {
		case <-ctx.Done():
			return nil, nil, false
		case <-time.After(20 * time.Millisecond):
		}
	}
	var l raft.Log
	if err := g.store.GetLog(index, &l); err != nil {
		// Compacted into a snapshot already: nothing left to compare.
		return nil, nil, false
	}
	if !bytes.Equal(l.Data, data) {
		id, addr := g.Leader()
		g.log.Info("a change proposed before this member lost its leadership was not committed", "index", index)
		return nil, &NotLeaderError{Leader: id, LeaderAddr: addr}, true
	}
	res, kept := g.fsm.resultAt(index)
	if !kept {
		return nil, nil, false
	}
	g.log.Info("a change proposed before this member lost its leadership was committed by the next leader", "index", index)
	return res.m, res.err, true
}

// Bootstrap makes this member the single voter of a new group and seeds
// it with m, keeping m's epoch. The leader then brings the map's other
// nodes in. Bootstrap one member only: two members bootstrapped before
// either reaches the other would start two groups (admin init seeds the
// map's Seed node only).
// On a member that already belongs to a group it returns ErrInitialised,
// unless that group holds no map yet (a bootstrap cut short), which it
// seeds. Calls on one member run one at a time, so that of two at once
// exactly one seeds and the other answers ErrInitialised.
func (g *Group) Bootstrap(ctx context.Context, m *placement.Map) (*placement.Map, error) {
	select {
	case g.boot <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("cluster.Bootstrap: waiting for another bootstrap of this member: %w", ctx.Err())
	}
	defer func() { <-g.boot }()
	// A member a leader has reached belongs to a group already, even if
	// it has not applied the map yet: bootstrapping it would start a
	// second group.
	if id, _ := g.Leader(); id != "" && id != g.cfg.ID {
		return nil, ErrInitialised
	}
	f := g.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{
		{Suffrage: raft.Voter, ID: raft.ServerID(g.cfg.ID), Address: g.trans.LocalAddr()},
	}})
	if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return nil, fmt.Errorf("cluster.Bootstrap: %w", err)
	}
	if g.Map() != nil {
		return nil, ErrInitialised
	}
	for g.raft.State() != raft.Leader {
		if id, _ := g.Leader(); id != "" && id != g.cfg.ID {
			return nil, ErrInitialised // a group of others
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster.Bootstrap: waiting to lead: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return g.propose(ctx, entry{Init: m})
}

// Status is one member's own view of the group.
type Status struct {
	ID         string   `json:"id"`
	RaftAddr   string   `json:"raft_addr"`
	State      string   `json:"state"` // Leader, Follower, Candidate, Shutdown
	Term       uint64   `json:"term"`
	Leader     string   `json:"leader"` // id; "" if none known
	LeaderAddr string   `json:"leader_raft_addr,omitempty"`
	Epoch      uint64   `json:"epoch"` // of the map this member applied
	LastIndex  uint64   `json:"last_index"`
	Applied    uint64   `json:"applied_index"`
	Voters     []string `json:"voters"`
	Nonvoters  []string `json:"nonvoters"`
}

// Status returns the member's view of the group.
func (g *Group) Status() Status {
	st := Status{
		ID: g.cfg.ID, RaftAddr: g.Addr(), State: g.raft.State().String(),
		LastIndex: g.raft.LastIndex(), Applied: g.raft.AppliedIndex(),
		Voters: []string{}, Nonvoters: []string{},
	}
	st.Term, _ = strconv.ParseUint(g.raft.Stats()["term"], 10, 64)
	st.Leader, st.LeaderAddr = g.Leader()
	if m := g.Map(); m != nil {
		st.Epoch = m.Epoch
	}
	if f := g.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				st.Voters = append(st.Voters, string(s.ID))
			} else {
				st.Nonvoters = append(st.Nonvoters, string(s.ID))
			}
		}
	}
	slices.Sort(st.Voters)
	slices.Sort(st.Nonvoters)
	return st
}

// Snapshot compacts the log now (it also happens on its own).
func (g *Group) Snapshot() error { return g.raft.Snapshot().Error() }

func (g *Group) poke() {
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// run reconciles membership while this member leads: after each map
// change, on gaining leadership, and every ReconcileInterval.
func (g *Group) run(ctx context.Context) {
	defer close(g.done)
	if g.cfg.Resolve == nil {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(g.cfg.ReconcileInterval)
	defer t.Stop()
	leader := g.raft.LeaderCh()
	// caughtUp: since this member last gained leadership, a barrier has
	// made sure its map includes every entry committed before. A new
	// leader may not have applied the last entries of the previous one
	// yet (such as the drain of that leader), and membership decided on
	// an older map would be undone at once.
	caughtUp := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-g.kick:
		case <-leader:
			caughtUp = false
		}
		if g.raft.State() != raft.Leader {
			caughtUp = false
			continue
		}
		if !caughtUp {
			if err := g.raft.Barrier(10 * time.Second).Error(); err != nil {
				if ctx.Err() == nil {
					g.log.Warn("raft membership: catching up with the log", "err", err)
				}
				continue
			}
			caughtUp = true
		}
		if err := g.reconcile(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("raft membership", "err", err)
		}
	}
}

// reconcile makes the group's membership follow the map: every node not
// removed is a member, the PickVoters ones vote, removed nodes leave.
// New voters are added before old ones are demoted, so that the voter
// count never dips on the way.
//
// The leader never demotes or removes itself. Raft would have it step
// down only once the change commits, leaving the group with no leader
// until an election timeout, and with Raft's default ShutdownOnRemove it
// would also stop taking the log, frozen at the map it last applied. A
// leader that must leave the voters
// hands its leadership to one of the voters it should keep, and the new
// leader, reconciling on gaining leadership, demotes or removes it.
func (g *Group) reconcile(ctx context.Context) error {
	m := g.Map()
	if m == nil {
		return nil
	}
	f := g.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	cfg := f.Configuration()
	members := map[string]raft.Server{}
	var voters []string
	for _, s := range cfg.Servers {
		members[string(s.ID)] = s
		if s.Suffrage == raft.Voter {
			voters = append(voters, string(s.ID))
		}
	}
	want := PickVoters(m, voters, g.cfg.Voters)
	var errs []error
	for _, n := range m.Nodes {
		if n.State == placement.StateRemoved {
			continue
		}
		s, in := members[n.ID]
		vote := slices.Contains(want, n.ID)
		if in && (s.Suffrage == raft.Voter) == vote {
			continue
		}
		addr := string(s.Address)
		if !in {
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			a, err := g.cfg.Resolve(rctx, n)
			cancel()
			if err != nil {
				errs = append(errs, fmt.Errorf("node %s: finding its raft address: %w", n.ID, err))
				continue
			}
			addr = a
		}
		var err error
		switch {
		case vote:
			err = g.raft.AddVoter(raft.ServerID(n.ID), raft.ServerAddress(addr), 0, 10*time.Second).Error()
		case !in:
			err = g.raft.AddNonvoter(raft.ServerID(n.ID), raft.ServerAddress(addr), 0, 10*time.Second).Error()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", n.ID, err))
		} else {
			g.log.Info("raft member", "node", n.ID, "addr", addr, "voter", vote)
		}
	}
	leaving := false // this leader must stop voting, or leave the group
	for id, s := range members {
		n, inMap := m.Node(id)
		remove := !inMap || n.State == placement.StateRemoved
		demote := s.Suffrage == raft.Voter && !slices.Contains(want, id) && len(want) > 0
		switch {
		case id == g.cfg.ID && (remove || demote):
			leaving = true
		case remove:
			if err := g.raft.RemoveServer(s.ID, 0, 10*time.Second).Error(); err != nil {
				errs = append(errs, fmt.Errorf("removing %s: %w", id, err))
			} else {
				g.log.Info("raft member removed", "node", id)
			}
		case demote:
			if err := g.raft.DemoteVoter(s.ID, 0, 10*time.Second).Error(); err != nil {
				errs = append(errs, fmt.Errorf("demoting %s: %w", id, err))
			} else {
				g.log.Info("raft voter demoted", "node", id)
			}
		}
	}
	if leaving {
		if err := g.handOver(want); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// handOver transfers this leader's leadership to a voter among want, the
// voters the map keeps. Raft brings the target up to date with the log
// first, so that it wins the election it then starts at once.
func (g *Group) handOver(want []string) error {
	f := g.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("handing leadership over: %w", err)
	}
	var errs []error
	for _, s := range f.Configuration().Servers {
		if s.Suffrage != raft.Voter || string(s.ID) == g.cfg.ID || !slices.Contains(want, string(s.ID)) {
			continue
		}
		err := g.raft.LeadershipTransferToServer(s.ID, s.Address).Error()
		if err == nil {
			g.log.Info("raft leadership handed over", "to", s.ID)
			return nil
		}
		errs = append(errs, fmt.Errorf("to %s: %w", s.ID, err))
		if g.raft.State() != raft.Leader {
			break
		}
	}
	if len(errs) == 0 {
		return errors.New("handing leadership over: no voter the map keeps is in the group yet")
	}
	return fmt.Errorf("handing leadership over: %w", errors.Join(errs...))
}
