package scrubber

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ObjectRef names an object version the pass could not make whole.
type ObjectRef struct {
	Bucket  string `json:"bucket"`
	Key     string `json:"key"`
	Version string `json:"version"`
	Healthy int    `json:"healthy"` // shards that verified
	Need    int    `json:"need"`    // shards needed to read it (d)
	Reason  string `json:"reason"`
}

// Position is where a pass stands.
type Position struct {
	Phase  string `json:"phase"`
	Bucket string `json:"bucket,omitempty"`
	Key    string `json:"key,omitempty"` // the last key done in Bucket
}

// MaxListed bounds the objects a Report lists by name; counts go on.
const MaxListed = 1000

// Report is the outcome of one pass. A pass interrupted and resumed from
// its checkpoint reports once, for all of its runs together.
type Report struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Seconds is the wall time of the pass, resumed runs included.
	Seconds float64 `json:"duration_seconds"`
	DryRun  bool    `json:"dry_run,omitempty"`

	// Resumed counts the times the pass was resumed from a checkpoint;
	// ResumedFrom is where the latest run took over.
	Resumed     int       `json:"resumed"`
	ResumedFrom *Position `json:"resumed_from,omitempty"`
	// RunObjects is the objects checked by the latest run alone.
	RunObjects int64 `json:"run_objects"`

	Buckets         int   `json:"buckets"`
	BucketsRepaired int   `json:"buckets_repaired"` // bucket records copied to nodes that lacked them
	Objects         int64 `json:"objects"`          // object versions checked (delete markers not included)
	Bytes           int64 `json:"bytes"`            // their logical size
	Markers         int64 `json:"markers"`          // delete markers checked
	// Manifests counts multipart objects: their manifests have no shards;
	// their parts are checked as objects of their own.
	Manifests int64 `json:"manifests"`

	ShardsVerified int64 `json:"shards_verified"` // shards hashed on their nodes
	ShardBytes     int64 `json:"shard_bytes"`     // bytes those nodes hashed
	ShardsMissing  int64 `json:"shards_missing"`
	ShardsCorrupt  int64 `json:"shards_corrupt"`
	ShardsRebuilt  int64 `json:"shards_rebuilt"`
	BytesRebuilt   int64 `json:"bytes_rebuilt"`  // shard bytes written by rebuilds
	RepairsFailed  int64 `json:"repairs_failed"` // shards whose rebuild failed (retried next pass)

	RolledForward   int64 `json:"rolled_forward"`   // shards committed for a writer that died between commits
	StagedAborted   int64 `json:"staged_aborted"`   // dangling staged shards removed
	StagedBytes     int64 `json:"staged_bytes"`     // their size
	MarkersRepaired int64 `json:"markers_repaired"` // delete markers copied to nodes that lacked them
	// ManifestsRepaired counts multipart manifests copied to nodes that
	// lacked them.
	ManifestsRepaired int64 `json:"manifests_repaired"`
	MarkersRemoved    int64 `json:"markers_removed"` // old delete markers dropped everywhere
	HintsConsumed     int64 `json:"hints_consumed"`

	// Rebalance: MovesPlanned counts the shards found verified on another
	// node than the map names for them (after a map change); MovesDone
	// those copied to their node, committed and verified there, their old
	// copy dropped; MovesFailed those that could not be (retried next
	// pass); BytesMoved the shard bytes copied. CopiesDropped counts the
	// copies removed from nodes that no longer need them: old copies of
	// moved shards, duplicates, and older versions or delete markers on
	// nodes the map no longer places the key on.
	MovesPlanned  int64 `json:"moves_planned"`
	MovesDone     int64 `json:"moves_done"`
	MovesFailed   int64 `json:"moves_failed"`
	BytesMoved    int64 `json:"bytes_moved"`
	CopiesDropped int64 `json:"copies_dropped"`
	// MapEpoch is the epoch of the cluster map the pass worked from;
	// MapChanged says a run of the pass followed an older one, so objects
	// it checked before the change may not be in place yet (the daemon
	// starts another pass at once).
	MapEpoch       uint64 `json:"map_epoch"`
	MapChanged     bool   `json:"map_changed,omitempty"`
	Changed        int64  `json:"changed"`        // objects rewritten or deleted while being checked (left to the writer)
	Unacknowledged int64  `json:"unacknowledged"` // unreadable versions that never reached write quorum (readers skip them)
	// Raised counts the objects checked whose live version was written
	// with raised parity (fewer data shards than the map's, because some
	// of its nodes were down), RaisedBytes their logical size, as the
	// check found them. Recoded counts those the pass wrote again at the
	// map's layout (the null version of an unversioned bucket, once every
	// node of its placement answers; see recode.go), RecodedBytes their
	// logical size. The others are checked and rebuilt at their own
	// layout, and keep costing more storage per byte.
	Raised       int64 `json:"raised"`
	RaisedBytes  int64 `json:"raised_bytes"`
	Recoded      int64 `json:"recoded"`
	RecodedBytes int64 `json:"recoded_bytes"`

	// Noncurrent counts the noncurrent versions checked (their shards
	// count in ShardsVerified, ShardsMissing, ... like any);
	// PurgesSpread the versions deleted by version on nodes that missed
	// the deletion; Expired the versions the bucket's lifecycle rules
	// deleted or marked deleted (see Config.LifecycleDay).
	Noncurrent   int64 `json:"noncurrent,omitempty"`
	PurgesSpread int64 `json:"purges_spread,omitempty"`
	Expired      int64 `json:"expired,omitempty"`

	// Redundancy counts the checked objects by healthy shards when found;
	// RedundancyAfter by healthy shards once the pass was done with them.
	Redundancy      map[int]int64 `json:"redundancy"`
	RedundancyAfter map[int]int64 `json:"redundancy_after"`

	Unrecoverable      []ObjectRef `json:"unrecoverable,omitempty"`
	UnrecoverableCount int64       `json:"unrecoverable_count"`
	// Incomplete says why the pass could not cover or repair everything:
	// unreachable nodes, failed repairs. Such a pass exits 2.
	Incomplete      []string `json:"incomplete,omitempty"`
	IncompleteCount int64    `json:"incomplete_count"`
	// IncompleteKinds counts every problem by kind (see IncompleteKindOf),
	// also those beyond the MaxListed in Incomplete, in order of first
	// appearance, with a few examples each.
	IncompleteKinds []IncompleteKind `json:"incomplete_kinds,omitempty"`
}

func newReport(now time.Time, dry bool) Report {
	return Report{Started: now, DryRun: dry, Redundancy: map[int]int64{}, RedundancyAfter: map[int]int64{}}
}

// Healthy reports whether the pass covered everything and left no object
// below full redundancy or, moves failing, away from its nodes.
func (r *Report) Healthy() bool { return r.UnrecoverableCount == 0 && r.IncompleteCount == 0 }

// Level is a redundancy level and the objects at it.
type Level struct {
	Level   string `json:"level"` // "6", "5", ..., "4", or "below 4" (d = 4)
	Objects int64  `json:"objects"`
}

// Levels lists counts (by healthy shards) as the levels n, n-1, ..., d and
// "below d", every level present even when empty.
func Levels(counts map[int]int64, d, n int) []Level {
	var out []Level
	for l := n; l >= d; l-- {
		out = append(out, Level{Level: strconv.Itoa(l), Objects: counts[l]})
	}
	below := Level{Level: fmt.Sprintf("below %d", d)}
	extra := Level{Level: fmt.Sprintf("above %d", n)}
	for l, c := range counts {
		switch {
		case l < d:
			below.Objects += c
		case l > n:
			extra.Objects += c // another erasure layout than the map's
		}
	}
	out = append(out, below)
	if extra.Objects > 0 {
		out = slices.Insert(out, 0, extra)
	}
	return out
}

// Progress is where a running pass stands, for progress bars and status.
type Progress struct {
	Phase     string `json:"phase"`
	Bucket    string `json:"bucket,omitempty"`
	Key       string `json:"key,omitempty"`
	Objects   int64  `json:"objects"`   // checked so far in this pass
	Estimated int64  `json:"estimated"` // objects in the cluster, estimated from the nodes' counts
	Queue     int    `json:"queue"`     // objects waiting for repair
	Bytes     int64  `json:"bytes"`     // shard bytes verified so far
	Rebuilt   int64  `json:"rebuilt"`   // shards rebuilt so far

	// The rebalance so far: shard moves found needed, done and failed,
	// and the bytes moved.
	MovesPlanned int64 `json:"moves_planned"`
	MovesDone    int64 `json:"moves_done"`
	MovesFailed  int64 `json:"moves_failed"`
	BytesMoved   int64 `json:"bytes_moved"`
}

// tally is a Report being filled by concurrent workers.
type tally struct {
	mu sync.Mutex
	r  Report
}

func (t *tally) add(f func(r *Report)) {
	t.mu.Lock()
	f(&t.r)
	t.mu.Unlock()
}

func (t *tally) snapshot() Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.r
	r.Redundancy = cloneMap(t.r.Redundancy)
	r.RedundancyAfter = cloneMap(t.r.RedundancyAfter)
	r.Unrecoverable = slices.Clone(t.r.Unrecoverable)
	r.Incomplete = slices.Clone(t.r.Incomplete)
	r.IncompleteKinds = slices.Clone(t.r.IncompleteKinds)
	for i := range r.IncompleteKinds {
		r.IncompleteKinds[i].Examples = slices.Clone(r.IncompleteKinds[i].Examples)
	}
	return r
}

func (t *tally) unrecoverable(o ObjectRef) {
	t.add(func(r *Report) {
		r.UnrecoverableCount++
		if len(r.Unrecoverable) < MaxListed {
			r.Unrecoverable = append(r.Unrecoverable, o)
		}
	})
}

func (t *tally) incomplete(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	t.add(func(r *Report) {
		r.IncompleteCount++
		if len(r.Incomplete) < MaxListed {
			r.Incomplete = append(r.Incomplete, msg)
		}
		r.IncompleteKinds = addIncomplete(r.IncompleteKinds, msg)
	})
}

func cloneMap(m map[int]int64) map[int]int64 {
	out := make(map[int]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// stats are the scrubber's counters since it was created, for metrics.
type stats struct {
	shardsVerified   atomic.Int64
	shardsCorrupt    atomic.Int64
	shardsMissing    atomic.Int64
	shardsRebuilt    atomic.Int64
	repairsFailed    atomic.Int64
	bytesRead        atomic.Int64 // verified on nodes plus read for rebuilds
	objects          atomic.Int64
	repairsInFlight  atomic.Int64
	passesOK         atomic.Int64
	passesUnrepaired atomic.Int64
	passesFailed     atomic.Int64
	shardsMoved      atomic.Int64
	movesFailed      atomic.Int64
	movesInFlight    atomic.Int64
	bytesMoved       atomic.Int64
	copiesDropped    atomic.Int64
}

// Stats is a snapshot of the scrubber's counters since it was created.
type Stats struct {
	ShardsVerified, ShardsCorrupt, ShardsMissing, ShardsRebuilt, RepairsFailed int64
	BytesRead                                                                  int64
	Objects                                                                    int64
	RepairsInFlight                                                            int64
	PassesOK, PassesUnrepairable, PassesFailed                                 int64
	ShardsMoved, MovesFailed, MovesInFlight, BytesMoved, CopiesDropped         int64
	Running                                                                    bool
}

// Stats returns the scrubber's counters.
func (s *Scrubber) Stats() Stats {
	st := &s.stats
	return Stats{
		ShardsVerified:     st.shardsVerified.Load(),
		ShardsCorrupt:      st.shardsCorrupt.Load(),
		ShardsMissing:      st.shardsMissing.Load(),
		ShardsRebuilt:      st.shardsRebuilt.Load(),
		RepairsFailed:      st.repairsFailed.Load(),
		BytesRead:          st.bytesRead.Load(),
		Objects:            st.objects.Load(),
		RepairsInFlight:    st.repairsInFlight.Load(),
		PassesOK:           st.passesOK.Load(),
		PassesUnrepairable: st.passesUnrepaired.Load(),
		PassesFailed:       st.passesFailed.Load(),
		ShardsMoved:        st.shardsMoved.Load(),
		MovesFailed:        st.movesFailed.Load(),
		MovesInFlight:      st.movesInFlight.Load(),
		BytesMoved:         st.bytesMoved.Load(),
		CopiesDropped:      st.copiesDropped.Load(),
		Running:            s.running.Load(),
	}
}

// LastReport returns the report of the last pass that finished, also from
// an earlier process using the same state, or nil.
func (s *Scrubber) LastReport() *Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return nil
	}
	r := *s.last
	return &r
}

// Progress returns where the running pass stands (the zero Progress if
// none runs).
func (s *Scrubber) Progress() Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.progress
}
