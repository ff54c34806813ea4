package scrubber

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/fanout"
	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/nodeaccess"
	"github.com/kintsugi-store/kintsugi/internal/throttle"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/scrubber/internal/checkpoint"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Defaults for zero Config fields.
const (
	DefaultConcurrency  = 4
	DefaultStagingGrace = 24 * time.Hour
	DefaultMarkerGrace  = 7 * 24 * time.Hour
	DefaultCallTimeout  = 10 * time.Second
)

// A node that keeps failing (see internal/nodeaccess for what counts) is
// skipped at once rather than waited for on every object: after
// breakerTrip failures in a row its calls fail immediately for
// breakerOpen, then one call probes it.
const (
	breakerTrip = 3
	breakerOpen = 5 * time.Second
)

// Config configures a Scrubber. Zero values of optional fields mean
// defaults.
type Config struct {
	// Map is the cluster map to work from (required). A newer one can be
	// given later with SetMap. The scrubber remembers in its state the
	// maps it worked from, so that after a change the previous map is
	// known too (readers and the pass consult both while shards move).
	Map *placement.Map

	Dial          func(placement.Node) client.Node // nil: client.New(node.Addr, ClientOptions)
	ClientOptions *client.Options                  // used by the default Dial

	// StateDir holds the checkpoint (a badger database) so that an
	// interrupted pass resumes; "" keeps it in memory: every Run starts
	// afresh. A dry run never uses it.
	StateDir string
	// Concurrency bounds the objects checked or repaired at once; default
	// DefaultConcurrency.
	Concurrency int
	// Rate bounds, in bytes per second, the shard data verified on the
	// nodes plus the shard data read to rebuild or move; 0 means no limit.
	Rate int64
	// DryRun reports without changing anything: no rebuilds, moves,
	// roll-forwards, aborts, marker changes or hint deletions; moves are
	// counted as planned. (Nodes still quarantine the corrupt shards a
	// Verify finds: that is their own rule.)
	DryRun bool
	// StagingGrace is how old an uncommitted staged version must be to be
	// swept; default DefaultStagingGrace.
	StagingGrace time.Duration
	// MarkerGrace is how old a delete marker must be before it is removed
	// from nodes that all hold it; default DefaultMarkerGrace. It must
	// exceed the longest a stuck writer may take to commit an older
	// version, i.e. the nodes' staging grace.
	MarkerGrace time.Duration
	// CallTimeout bounds one metadata call; default DefaultCallTimeout.
	// Verify and rebuild calls get more in proportion to the bytes.
	CallTimeout time.Duration
	// LifecycleDay is how long a "day" of the buckets' lifecycle rules
	// lasts (docs/versioning.md); default 24h. Tests shorten it.
	LifecycleDay time.Duration

	Logger *slog.Logger     // nil: discard
	Now    func() time.Time // nil: time.Now
	// After is the Daemon's timer between passes, on Now's clock; nil:
	// time.After. A test passes a manual clock's Now and After to run
	// passes on cue instead of waiting for an interval to pass.
	After func(time.Duration) <-chan time.Time
	// Progress, if set, is called after every object and phase change. It
	// runs on the pass's goroutines and must return quickly.
	Progress func(Progress)
}

// Scrubber runs verify-and-repair passes over the nodes of a cluster map.
// Its methods are safe for concurrent use, but only one Run at a time.
type Scrubber struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	state *checkpoint.Store
	th    *throttle.T

	// The maps a pass works from and their nodes. Only Run changes them,
	// at its start, to the newest maps SetMap was given (latest); other
	// goroutines use Map.
	m       *placement.Map
	prev    *placement.Map    // the map m replaced; nil if unknown
	nodes   []member          // m's nodes that are not removed
	byID    map[string]member // same, by id
	clients *nodeaccess.Pool  // kept across maps, with the nodes' breakers
	newMap  chan struct{}     // signalled when SetMap installs a newer map

	codecs codec.Cache

	running atomic.Bool
	stats   stats

	mu       sync.Mutex
	last     *Report        // of the last finished Run
	progress Progress       // of the Run in progress
	latest   placement.Pair // the newest map known and the one before it

	heldMu sync.Mutex
	held   map[string]uint64 // node id -> map epoch it is known to hold (see mapHeld)

	// bucketRecs are the newest bucket records the running pass found
	// (versioning state, lifecycle rules); see noteBuckets.
	bucketsMu  sync.Mutex
	bucketRecs map[string]client.BucketRecord
}

// member is a node of the map with its client.
type member = nodeaccess.Member

// New returns a Scrubber for cfg; Close releases its state.
func New(cfg Config) (*Scrubber, error) {
	const op = "scrubber.New"
	if cfg.Map == nil {
		return nil, kerr.E(op, kerr.Invalid, errors.New("no cluster map"))
	}
	if err := cfg.Map.Validate(); err != nil {
		return nil, kerr.E(op, kerr.Invalid, err)
	}
	switch {
	case cfg.Concurrency < 0, cfg.Rate < 0, cfg.StagingGrace < 0, cfg.MarkerGrace < 0, cfg.CallTimeout < 0:
		return nil, kerr.E(op, kerr.Invalid, errors.New("negative concurrency, rate, grace or timeout"))
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.StagingGrace == 0 {
		cfg.StagingGrace = DefaultStagingGrace
	}
	if cfg.MarkerGrace == 0 {
		cfg.MarkerGrace = DefaultMarkerGrace
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Dial == nil {
		opts := cfg.ClientOptions
		cfg.Dial = func(n placement.Node) client.Node { return client.New(n.Addr, opts) }
	}
	// Passive only: the scrubber learns from its own calls and sends no
	// heartbeats.
	hcfg := health.DefaultConfig()
	hcfg.TripAfter, hcfg.OpenFor, hcfg.Logger = breakerTrip, breakerOpen, cfg.Logger
	breakers, err := health.New(hcfg)
	if err != nil {
		return nil, kerr.E(op, err)
	}
	dir := cfg.StateDir
	if cfg.DryRun {
		dir = ""
	}
	st, err := checkpoint.Open(dir, cfg.Logger)
	if err != nil {
		return nil, kerr.E(op, kerr.Unavailable, err)
	}
	s := &Scrubber{
		cfg:     cfg,
		log:     cfg.Logger,
		now:     cfg.Now,
		state:   st,
		th:      throttle.New(cfg.Rate),
		clients: nodeaccess.NewPool(cfg.Dial, breakers),
		newMap:  make(chan struct{}, 1),
	}
	s.latest = s.startMaps(cfg.Map.WithDefaults())
	s.useLatest()
	if last, err := s.loadLast(); err == nil {
		s.last = last
	}
	return s, nil
}

// Close releases the scrubber's state. A Run in progress fails.
func (s *Scrubber) Close() error {
	if err := s.state.Close(); err != nil {
		return kerr.E("scrubber.Close", kerr.Internal, err)
	}
	return nil
}

// codec returns a shared codec for the given parameters.
func (s *Scrubber) codec(d, p, block int) (*codec.Codec, error) {
	return s.codecs.Get(d, p, block)
}

// callCtx bounds one metadata call.
func (s *Scrubber) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.CallTimeout)
}

// dataCtx bounds a call that moves or hashes about n bytes: the metadata
// timeout plus a second per MiB, a pace any healthy disk beats.
func (s *Scrubber) dataCtx(ctx context.Context, n int64) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.CallTimeout+time.Duration(n>>20)*time.Second)
}

// members returns the members with the given ids (skipping unknown ones
// and duplicates), after those of list.
func (s *Scrubber) members(list []placement.Node, ids ...string) []member {
	var out []member
	seen := make(map[string]bool)
	add := func(id string) {
		if mb, ok := s.byID[id]; ok && !seen[id] {
			seen[id] = true
			out = append(out, mb)
		}
	}
	for _, n := range list {
		add(n.ID)
	}
	for _, id := range ids {
		add(id)
	}
	return out
}

// each runs fn(0..n-1) with at most limit at once (0: no limit) and
// waits for all.
func each(n, limit int, fn func(i int)) { fanout.Each(n, limit, fn) }
