package objects

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/fanout"
	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/nodeaccess"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
)

// Defaults for zero Config fields.
const (
	DefaultCallTimeout   = 5 * time.Second
	DefaultCommitTimeout = 30 * time.Second
	// bucketStaleFor is how long past its TTL a cached bucket still
	// answers when the nodes cannot be asked in time.
	bucketStaleFor = time.Minute
	// staleBucketWait is how long a request waits for a bucket lookup
	// when a stale cached record can answer instead.
	staleBucketWait       = time.Second
	DefaultStallTimeout   = 30 * time.Second
	DefaultBucketCacheTTL = 2 * time.Second
	// DefaultPreloadMax covers the shards of objects up to 256 KiB at 4+2.
	// Profiles of 4 KiB GETs showed the gateway making 10 internal
	// requests for each; with preloading it makes the 6 stats alone.
	DefaultPreloadMax = 64<<10 + codec.DigestSize
	// DefaultKeptBodies and MaxKeptBody bound the PUT bodies kept
	// while they are written (see Config.KeptBodies): a gateway under a
	// burst of large PUTs holds at most this much of them.
	DefaultKeptBodies = 512 << 20
	MaxKeptBody       = 64 << 20
)

// Hints are an optimisation (the scrubber finds the same damage on its
// own): a delivery never waits long, and the same hint is sent at most once
// per hintRepeat, remembering at most maxHintMemory of them.
const (
	hintTimeout   = time.Second
	hintRepeat    = time.Minute
	maxHintMemory = 10000
)

// Config configures a Store. Zero values of optional fields mean defaults.
type Config struct {
	Map           *placement.Map                   // required
	Dial          func(placement.Node) client.Node // nil: client.New(node.Addr, ClientOptions)
	ClientOptions *client.Options                  // used by the default Dial
	Logger        *slog.Logger                     // nil: discard
	CallTimeout   time.Duration                    // metadata calls (stat, list, buckets, aborts); default 5s
	// CommitTimeout bounds one node's commit; default 30s. Longer than
	// CallTimeout: a commit that times out leaves the write's outcome
	// unknown to the client, and under heavy write load a node's commit
	// (an fsync behind GiBs of shard data) can take seconds. A busy
	// cluster should slow down, not answer 503.
	CommitTimeout time.Duration
	StallTimeout  time.Duration // a shard stream without progress this long is dropped; default 30s
	// BucketCacheTTL is how long a bucket seen to exist is trusted without
	// asking the nodes again; default 2s, negative disables the cache.
	BucketCacheTTL time.Duration
	// PreloadMax is the largest data shard stream a GET asks for along
	// with the key's state, so that a small object is read in one round
	// trip per node instead of two; default DefaultPreloadMax, negative
	// never.
	PreloadMax int64
	// KeptBodies bounds the bytes of PUT bodies longer than one stripe
	// that the Store keeps at once, so that a write that nodes fail can
	// be written again (PutObject); default DefaultKeptBodies, negative
	// none. A body longer than MaxKeptBody is never kept.
	KeptBodies int64
	Now        func() time.Time // nil: time.Now; names versions and stamps records
	// Health, if set, is consulted before every node call: nodes whose
	// breaker is open are skipped at once, slow data-shard reads are
	// hedged with parity reads, stragglers are not waited for once a
	// quorum has answered, and writes taken while nodes are down raise
	// the object's parity. The Store tells it which nodes to heartbeat;
	// running its heartbeats (Tracker.Run) is the caller's job. nil: no
	// health tracking; every call waits for its node up to its timeouts.
	Health *health.Tracker
	// Registerer, if set, receives the protocol's counters (degraded
	// reads, roll-forwards, write quorum failures, raised-parity writes).
	Registerer prometheus.Registerer
}

// Store runs the object protocol against the nodes of a cluster map. It is
// safe for concurrent use.
type Store struct {
	maps          atomic.Pointer[placement.Pair]
	log           *slog.Logger
	callTimeout   time.Duration
	commitTimeout time.Duration
	stallTimeout  time.Duration
	bucketTTL     time.Duration
	preloadMax    int64 // 0: never
	keptMax       int64 // bytes of long bodies kept at once; 0: none
	now           func() time.Time

	clock versionClock // names versions; see versionClock

	nodes *nodeaccess.Pool // guarded clients

	codecs codec.Cache

	bucketMu sync.Mutex
	buckets  map[string]bucketEntry
	// bucketLookups shares one node lookup among the requests that find
	// a bucket's cache entry expired at the same moment: every request
	// needs the bucket, and at 16 in flight each one asked all the nodes
	// when the entry expired.
	bucketLookups singleflight.Group

	bufs   sync.Pool    // *[]byte frame buffers for stage streams
	bodies bodyPool     // buffers of kept bodies (put.go, keptbody.go)
	kept   atomic.Int64 // bytes of longer bodies kept (keptbody.go)

	health  *health.Tracker // nil: no health tracking
	metrics *metrics        // nil: none

	hintMu   sync.Mutex
	hintSent map[client.Hint]time.Time // by hint without its Time

	commits keyLocks // orders the commits of a key (keylock.go)

	bg sync.WaitGroup // background hint deliveries and aborts
}

// New returns a Store for cfg.
func New(cfg Config) (*Store, error) {
	const op = "objects.New"
	if cfg.Map == nil {
		return nil, kerr.E(op, kerr.Invalid, errors.New("no cluster map"))
	}
	m, err := usableMap(cfg.Map)
	if err != nil {
		return nil, kerr.E(op, err)
	}
	s := &Store{
		log:           cfg.Logger,
		callTimeout:   cfg.CallTimeout,
		commitTimeout: cfg.CommitTimeout,
		stallTimeout:  cfg.StallTimeout,
		bucketTTL:     cfg.BucketCacheTTL,
		preloadMax:    cfg.PreloadMax,
		keptMax:       cfg.KeptBodies,
		now:           cfg.Now,
		health:        cfg.Health,
		buckets:       make(map[string]bucketEntry),
		hintSent:      make(map[client.Hint]time.Time),
	}
	dial := cfg.Dial
	if dial == nil {
		opts := cfg.ClientOptions
		dial = func(n placement.Node) client.Node { return client.New(n.Addr, opts) }
	}
	s.nodes = nodeaccess.NewPool(dial, s.health)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.callTimeout <= 0 {
		s.callTimeout = DefaultCallTimeout
	}
	if s.commitTimeout <= 0 {
		s.commitTimeout = max(DefaultCommitTimeout, s.callTimeout)
	}
	if s.stallTimeout <= 0 {
		s.stallTimeout = DefaultStallTimeout
	}
	if s.bucketTTL == 0 {
		s.bucketTTL = DefaultBucketCacheTTL
	}
	switch {
	case s.preloadMax == 0:
		s.preloadMax = DefaultPreloadMax
	case s.preloadMax < 0:
		s.preloadMax = 0
	}
	switch {
	case s.keptMax == 0:
		s.keptMax = DefaultKeptBodies
	case s.keptMax < 0:
		s.keptMax = 0
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, kerr.E(op, kerr.Internal, err)
	}
	s.clock.now = s.now
	p := &placement.Pair{Cur: m}
	s.maps.Store(p)
	s.trackNodes(p)
	return s, nil
}

// usableMap validates m and returns it with its defaults filled in.
func usableMap(m *placement.Map) (*placement.Map, error) {
	if err := m.Validate(); err != nil {
		return nil, kerr.E("objects.usableMap", kerr.Invalid, err)
	}
	return m.WithDefaults(), nil
}

// SetMap replaces the cluster map. A map with an older epoch than the
// current one, or one the protocol cannot use, is ignored (and logged), so
// maps may arrive out of order. The replaced map stays consulted by readers
// until the next change.
func (s *Store) SetMap(m *placement.Map) {
	if m == nil {
		return
	}
	m, err := usableMap(m)
	if err != nil {
		s.log.Warn("objects: ignoring unusable cluster map", "err", err)
		return
	}
	for {
		old := s.maps.Load()
		if m.Epoch < old.Cur.Epoch {
			s.log.Warn("objects: ignoring older cluster map", "epoch", m.Epoch, "current", old.Cur.Epoch)
			return
		}
		next := &placement.Pair{Cur: m, Prev: old.Prev}
		if m.Epoch > old.Cur.Epoch {
			next.Prev = old.Cur
		}
		if s.maps.CompareAndSwap(old, next) {
			s.trackNodes(next)
			return
		}
	}
}

// Map returns the current cluster map, with its defaults filled in.
// Callers must not modify it.
func (s *Store) Map() *placement.Map { return s.maps.Load().Cur }

// member is a node of the map with its client.
type member = nodeaccess.Member

func (s *Store) member(n placement.Node) member { return s.nodes.Member(n) }

// members returns the clients for nodes, skipping duplicate IDs.
func (s *Store) members(nodes ...[]placement.Node) []member {
	var out []member
	seen := make(map[string]bool)
	for _, list := range nodes {
		for _, n := range list {
			if seen[n.ID] {
				continue
			}
			seen[n.ID] = true
			out = append(out, s.member(n))
		}
	}
	return out
}

// codec returns a (shared) codec for the given parameters.
func (s *Store) codec(d, p, block int) (*codec.Codec, error) {
	return s.codecs.Get(d, p, block)
}

// newVersion names a write (or a stage, or an upload): a version above
// every version this Store issued or saw in a node's answer, whatever the
// clock says (see versionClock).
func (s *Store) newVersion() string { return s.clock.next() }

// callCtx bounds one metadata call.
func (s *Store) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.callTimeout)
}

// each runs fn(0..n-1) concurrently and waits for all of them.
func each(n int, fn func(i int)) { fanout.Each(n, 0, fn) }

// sendHints delivers hints to every member of to, in the background and
// best effort: a lost hint costs only repair latency. A hint sent in the
// last hintRepeat is not sent again, so that reads of a degraded object do
// not turn into a stream of identical hints.
func (s *Store) sendHints(ctx context.Context, to []member, hints []client.Hint) {
	if len(to) == 0 {
		return
	}
	if hints = s.freshHints(hints); len(hints) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	s.bg.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, min(hintTimeout, s.callTimeout))
		defer cancel()
		each(len(to), func(i int) {
			if err := to[i].Client.AddHints(ctx, hints); err != nil {
				s.log.Debug("objects: hint delivery failed", "node", to[i].Node.ID, "err", err)
			}
		})
	})
}

// freshHints drops the hints sent recently.
func (s *Store) freshHints(hints []client.Hint) []client.Hint {
	now := time.Now()
	s.hintMu.Lock()
	defer s.hintMu.Unlock()
	if len(s.hintSent) >= maxHintMemory {
		clear(s.hintSent)
	}
	var out []client.Hint
	for _, h := range hints {
		k := h
		k.Time = time.Time{}
		if t, ok := s.hintSent[k]; ok && now.Sub(t) < hintRepeat {
			continue
		}
		s.hintSent[k] = now
		out = append(out, h)
	}
	return out
}

// quorumErr wraps ErrQuorum with detail.
func quorumErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrQuorum, fmt.Sprintf(format, args...))
}

// shortfallErr is the error of a write's stage or commit that held, of
// wq nodes needed, on held nodes, while others refused it (refused).
// When the nodes refusing as holding a newer version of the key, added
// to those that held, would have made the quorum, or when so many refused
// a commit that the nodes left could not have made it (refused.placed),
// the write lost a race with a concurrent write of the key, not to its
// nodes, and the error wraps ErrSuperseded as well as ErrQuorum; when those refusing as holding a
// newer cluster map would have, the write spanned a map change, and it
// wraps ErrMapChanged. The refusals themselves stand: a node holding a
// newer version never counts (docs/ordering.md), nor one that holds a
// newer map (docs/fencing.md).
//
// If a node may hold the write committed (refused.mayApply), the error is
// marked so that fenced does not run the write again (see mayApplyErr).
func shortfallErr(held int, refused refusals, wq int, format string, args ...any) error {
	err := shortfall(held, refused, wq, format, args...)
	if refused.mayApply {
		return mayApplyErr{err}
	}
	return err
}

func shortfall(held int, refused refusals, wq int, format string, args ...any) error {
	detail := fmt.Sprintf(format, args...)
	if refused.newer > 0 {
		detail += fmt.Sprintf("; %d refused as holding a newer version", refused.newer)
	}
	if refused.staleMap > 0 {
		detail += fmt.Sprintf("; %d refused as holding a newer cluster map", refused.staleMap)
	}
	switch {
	case held+refused.newer >= wq, refused.placed-refused.newer < wq && refused.newer > 0:
		// The refusals cost the quorum, or left too few nodes to
		// make it whatever the others did: a concurrent write won.
		return fmt.Errorf("%w: %w: %s", ErrQuorum, ErrSuperseded, detail)
	case held+refused.staleMap >= wq:
		return fmt.Errorf("%w: %w: %s", ErrQuorum, ErrMapChanged, detail)
	}
	return fmt.Errorf("%w: %s", ErrQuorum, detail)
}

// validName rejects bucket names and keys the nodes could never store, so
// that they fail as the caller's mistake rather than as a lost quorum.
// S3 naming rules are the S3 layer's business.
func validName(op, bucket, key string, needKey bool) error {
	err := client.CheckBucket(bucket)
	if err == nil && needKey {
		err = client.CheckKey(bucket, key)
	}
	if err != nil {
		return kerr.E(op, kerr.Invalid, fmt.Errorf("%w: %w", ErrInvalidArgument, err))
	}
	return nil
}
