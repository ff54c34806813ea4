package scrubber

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exports a Scrubber's counters and its last pass to Prometheus.
// It reads them at scrape time, so the Scrubber stays the one source of
// truth and needs no registry of its own.
type collector struct {
	s *Scrubber

	shardsVerified, shardsCorrupt, shardsMissing, shardsRebuilt, repairsFailed *prometheus.Desc
	bytesRead, objects, passes                                                 *prometheus.Desc
	unrecoverable, inFlight, running, passSeconds, passEnd, oldest, redundancy *prometheus.Desc
	moved, movesFailed, bytesMoved, copiesDropped, movesInFlight, epoch        *prometheus.Desc
}

// Collector returns a prometheus.Collector of the scrubber's metrics, all
// named kintsugi_scrub_*. Counters count since the Scrubber was created;
// gauges describe the last finished pass or the present.
func (s *Scrubber) Collector() prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("kintsugi_scrub_"+name, help, labels, nil)
	}
	return &collector{
		s:              s,
		shardsVerified: d("shards_verified_total", "Shards hashed on their nodes against their recorded digests."),
		shardsCorrupt:  d("shards_corrupt_total", "Shards found failing their digests (quarantined by their node)."),
		shardsMissing:  d("shards_missing_total", "Shards found missing from the node that should hold them."),
		shardsRebuilt:  d("shards_rebuilt_total", "Shards rebuilt from the others and committed to their node."),
		repairsFailed:  d("repairs_failed_total", "Shard rebuilds that failed; retried by the next pass."),
		bytesRead:      d("bytes_read_total", "Shard bytes hashed on nodes plus shard bytes read to rebuild."),
		objects:        d("objects_checked_total", "Object versions checked."),
		passes:         d("passes_total", "Passes finished, by result: ok, unrepairable (data lost) or failed.", "result"),
		unrecoverable:  d("objects_unrecoverable", "Objects the last pass could not repair: fewer than d shards verify."),
		inFlight:       d("repairs_in_flight", "Shard rebuilds in progress."),
		running:        d("running", "1 while a pass runs."),
		passSeconds:    d("pass_duration_seconds", "Wall time of the last finished pass, resumed runs included."),
		passEnd:        d("last_pass_end_timestamp_seconds", "When the last pass finished (Unix time)."),
		oldest: d("oldest_unverified_seconds",
			"Age of the oldest shard not verified since: time since the start of the last complete pass (or of the first pass, before one completed)."),
		redundancy:    d("objects", "Objects by healthy shards after the last pass: redundancy level n, n-1, ..., d, or below d.", "redundancy"),
		moved:         d("shards_moved_total", "Shards moved to the node the cluster map names for them, committed and verified there."),
		movesFailed:   d("moves_failed_total", "Shard moves that failed; retried by the next pass."),
		bytesMoved:    d("bytes_moved_total", "Shard bytes copied by moves."),
		copiesDropped: d("copies_dropped_total", "Copies dropped from nodes the map no longer places them on (old copies of moved shards, strays)."),
		movesInFlight: d("moves_in_flight", "Shard moves in progress."),
		epoch:         d("map_epoch", "Epoch of the newest cluster map the scrubber knows."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.shardsVerified, c.shardsCorrupt, c.shardsMissing, c.shardsRebuilt, c.repairsFailed,
		c.bytesRead, c.objects, c.passes, c.unrecoverable, c.inFlight, c.running, c.passSeconds, c.passEnd, c.oldest, c.redundancy,
		c.moved, c.movesFailed, c.bytesMoved, c.copiesDropped, c.movesInFlight, c.epoch} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(c.shardsVerified, st.ShardsVerified)
	counter(c.shardsCorrupt, st.ShardsCorrupt)
	counter(c.shardsMissing, st.ShardsMissing)
	counter(c.shardsRebuilt, st.ShardsRebuilt)
	counter(c.repairsFailed, st.RepairsFailed)
	counter(c.bytesRead, st.BytesRead)
	counter(c.objects, st.Objects)
	counter(c.passes, st.PassesOK, "ok")
	counter(c.passes, st.PassesUnrepairable, "unrepairable")
	counter(c.passes, st.PassesFailed, "failed")
	counter(c.moved, st.ShardsMoved)
	counter(c.movesFailed, st.MovesFailed)
	counter(c.bytesMoved, st.BytesMoved)
	counter(c.copiesDropped, st.CopiesDropped)
	gauge(c.inFlight, float64(st.RepairsInFlight))
	gauge(c.movesInFlight, float64(st.MovesInFlight))
	gauge(c.epoch, float64(c.s.Map().Epoch))
	running := 0.0
	if st.Running {
		running = 1
	}
	gauge(c.running, running)
	gauge(c.oldest, c.s.OldestUnverified().Seconds())
	if last := c.s.LastReport(); last != nil {
		gauge(c.unrecoverable, float64(last.UnrecoverableCount))
		gauge(c.passSeconds, last.Seconds)
		gauge(c.passEnd, float64(last.Finished.UnixMilli())/1000)
		m := c.s.Map()
		for _, l := range Levels(last.RedundancyAfter, m.DataShards, m.N()) {
			gauge(c.redundancy, float64(l.Objects), l.Level)
		}
	}
}

// OldestUnverified returns the age of the oldest shard that may not have
// been verified since it was written or last checked: the time since the
// last complete pass started, or, before one completed, since the first
// pass started (0 before any).
func (s *Scrubber) OldestUnverified() time.Duration {
	last, first := s.Coverage()
	switch {
	case !last.IsZero():
		return s.now().Sub(last)
	case !first.IsZero():
		return s.now().Sub(first)
	}
	return 0
}
