package storagenode

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// Config configures a Node.
type Config struct {
	ID  string // node id, reported by Health; required
	Dir string // data directory, created if missing; required

	// Secret, if non-nil, is the cluster secret: every request must carry
	// a valid signature made with it (client.Sign). Others get 401 and are
	// logged.
	Secret []byte

	// StagingGrace is how long staged data may wait for its commit before
	// Sweep removes it. 0 means 24h.
	StagingGrace time.Duration
	// SupersededGrace is how long a shard file stays after a newer commit
	// supersedes its version: until then ReadShard of exactly that version
	// still serves it, so that a read which resolved the version just
	// before the commit finds its shards, and the background sweep (or a
	// Sweep call) removes it after. 0 removes it at once; DefaultConfig
	// sets DefaultSupersededGrace.
	SupersededGrace time.Duration
	// UnderwrittenHold delays the superseded grace of a shard whose
	// version a commit of an underwritten version supersedes: one whose
	// metadata names no node for some shard (a stage failed on a node not
	// known to be down, so its parity was not raised). Should its writer
	// die between commits, that version has fewer than n shards,
	// committed or staged, until it is rolled forward and its missing
	// shard rebuilt; losing p nodes before then would leave neither
	// version readable if the old shards went after the grace. Held,
	// they stay readable and Stat reports their record as Previous, so
	// that readers falling back to the old version count them. 0 holds
	// nothing; DefaultConfig sets DefaultUnderwrittenHold.
	UnderwrittenHold time.Duration
	// SweepInterval is the period of the background sweep. 0 disables the
	// background loop (Sweep can still be called); DefaultConfig sets 10m.
	SweepInterval time.Duration
	// MaxSkew is the largest difference allowed between a signed request's
	// date and the node's clock. 0 means 5m.
	MaxSkew time.Duration

	// ScrubRate is the background verifier's budget in bytes per second:
	// it re-hashes every committed shard against its recorded digests,
	// reading no faster than this. 0 turns it off; DefaultConfig sets
	// DefaultScrubRate.
	ScrubRate int64
	// ScrubPeriod is the least time between the starts of two verifier
	// passes; a pass that takes longer is followed at once by the next.
	// 0 means DefaultScrubPeriod.
	ScrubPeriod time.Duration

	// InlineMax is the largest framed shard stream a stage keeps in the
	// node's index instead of a file of its own. 0 keeps every shard in a
	// file; DefaultConfig sets DefaultInlineMax.
	InlineMax int64
	// PackMax is the largest framed shard stream a stage appends to a
	// pack file shared with other stages (one fsync for many shards)
	// instead of a file of its own; shards up to InlineMax stay inline.
	// 0 turns packing off; DefaultConfig sets DefaultPackMax.
	PackMax int64
	// PackFileSize is about how large a pack file grows before the next
	// one starts. 0 means DefaultPackFileSize.
	PackFileSize int64

	Logger *slog.Logger // nil: slog.Default()
	// Now is the clock that dates staged shards, quarantine records and
	// verifier passes, and that the background sweep measures age by;
	// After is the timer of the sweep and verifier schedules on it. nil:
	// time.Now and time.After. Tests pass a manual clock's methods to run
	// those loops on cue instead of sleeping through their periods.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Registerer, if set, receives the node's metrics
	// (kintsugi_storagenode_*); nil records none.
	Registerer prometheus.Registerer
}

// Defaults.
const (
	DefaultStagingGrace  = 24 * time.Hour
	DefaultSweepInterval = 10 * time.Minute
	// DefaultSupersededGrace is far longer than any read of one object
	// takes to open its shards after resolving its version.
	DefaultSupersededGrace = 2 * time.Minute
	// DefaultUnderwrittenHold spans two daily scrub passes: one that
	// fails or is late still leaves one to settle the key.
	DefaultUnderwrittenHold = 48 * time.Hour
	DefaultMaxSkew          = 5 * time.Minute
	DefaultScrubRate        = 32 << 20 // bytes/s
	DefaultScrubPeriod      = 24 * time.Hour
	// DefaultInlineMax keeps no shard in the index, and DefaultPackMax
	// packs shards up to one full frame at the default block size
	// (objects up to 1 MiB at 4+2). BenchmarkInlineThreshold, 16
	// concurrent stage+commits on one node, against a file per shard:
	// inline is 2x faster for 1-4 KiB shards but falls behind from 64
	// KiB, where copying values through badger's log and memtables costs
	// more than a file's create and fsync; packed is about as fast as
	// inline up to 4 KiB and 2.8x (32 KiB), 2.2x (256 KiB) and 1.7x
	// (1 MiB) faster than files. Inline shards also live in badger's
	// memory-mapped tables, which count in the process's RSS: an idle
	// `kintsugi dev` with 30,000 4 KiB objects held ~390 MiB of file
	// pages with them inline, ~200 MiB with them packed. The pack limit
	// is also what each concurrent stage may hold in memory.
	DefaultInlineMax = 0
	// MaxInlineMax bounds InlineMax and PackMax: every stage of a body
	// that may be inline or packed holds it in memory.
	MaxInlineMax        = 4 << 20
	DefaultPackMax      = 256<<10 + 32
	DefaultPackFileSize = 64 << 20
)

// DefaultConfig returns a Config with every default filled in; ID and Dir
// are left for the caller.
func DefaultConfig() Config {
	return Config{
		StagingGrace:     DefaultStagingGrace,
		SweepInterval:    DefaultSweepInterval,
		SupersededGrace:  DefaultSupersededGrace,
		UnderwrittenHold: DefaultUnderwrittenHold,
		MaxSkew:          DefaultMaxSkew,
		ScrubRate:        DefaultScrubRate,
		ScrubPeriod:      DefaultScrubPeriod,
		InlineMax:        DefaultInlineMax,
		PackMax:          DefaultPackMax,
	}
}

// Validate reports whether c can be used to open a node.
func (c Config) Validate() error {
	const op = "storagenode.Config.Validate"
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("ID is empty"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("Dir is empty"))
	}
	if c.StagingGrace < 0 {
		errs = append(errs, errors.New("StagingGrace is negative"))
	}
	if c.SupersededGrace < 0 {
		errs = append(errs, errors.New("SupersededGrace is negative"))
	}
	if c.UnderwrittenHold < 0 {
		errs = append(errs, errors.New("UnderwrittenHold is negative"))
	}
	if c.SweepInterval < 0 {
		errs = append(errs, errors.New("SweepInterval is negative"))
	}
	if c.MaxSkew < 0 {
		errs = append(errs, errors.New("MaxSkew is negative"))
	}
	if c.ScrubRate < 0 {
		errs = append(errs, errors.New("ScrubRate is negative"))
	}
	if c.ScrubPeriod < 0 {
		errs = append(errs, errors.New("ScrubPeriod is negative"))
	}
	if c.InlineMax < 0 || c.InlineMax > MaxInlineMax {
		errs = append(errs, fmt.Errorf("InlineMax %d out of range 0..%d", c.InlineMax, MaxInlineMax))
	}
	if c.PackMax < 0 || c.PackMax > MaxInlineMax {
		errs = append(errs, fmt.Errorf("PackMax %d out of range 0..%d", c.PackMax, MaxInlineMax))
	}
	if c.PackFileSize < 0 {
		errs = append(errs, errors.New("PackFileSize is negative"))
	}
	if len(errs) > 0 {
		return kerr.E(op, kerr.Invalid, errors.Join(errs...))
	}
	return nil
}

// withDefaults fills the zero fields that have a default.
func (c Config) withDefaults() Config {
	if c.StagingGrace == 0 {
		c.StagingGrace = DefaultStagingGrace
	}
	if c.MaxSkew == 0 {
		c.MaxSkew = DefaultMaxSkew
	}
	if c.PackFileSize == 0 {
		c.PackFileSize = DefaultPackFileSize
	}
	if c.ScrubPeriod == 0 {
		c.ScrubPeriod = DefaultScrubPeriod
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.After == nil {
		c.After = time.After
	}
	return c
}
