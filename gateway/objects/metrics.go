package objects

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the object protocol's Prometheus counters: the events an
// operator needs to see that the S3 request counts hide (a GET that
// answered 200 may still have rebuilt a shard). A nil *metrics records
// nothing, so a Store without a Registerer pays one nil check per event.
type metrics struct {
	degradedReads  prometheus.Counter
	rollForwards   prometheus.Counter
	quorumFailures prometheus.Counter
	raisedParity   prometheus.Counter
	retries        *prometheus.CounterVec
	notKept        prometheus.Counter
}

// newMetrics registers the counters with reg; a nil reg records nothing.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "kintsugi_gateway_" + name, Help: help})
	}
	m := &metrics{
		degradedReads: c("degraded_reads_total",
			"Object reads that had to rebuild from parity because a shard was missing, corrupt, slow or refused; the read still succeeded."),
		rollForwards: c("roll_forwards_total",
			"Commits a reader sent for a version staged and committed elsewhere, finishing a write whose gateway stopped between commits."),
		quorumFailures: c("write_quorum_failures_total",
			"Object writes refused (503) because fewer than the write quorum of nodes were up, staged or committed."),
		raisedParity: c("raised_parity_writes_total",
			"Object writes acknowledged with raised parity (d' = d-k) because k of their nodes were down."),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kintsugi_gateway_retries_total",
			Help: "Second attempts that kept an object operation from failing, by reason: stage_failed (staged again with raised parity), " +
				"recode (finished as the re-code of its version), commit_again (commit sent again to nodes that answer), " +
				"map_changed (run again under a newer cluster map)."}, []string{"reason"}),
		notKept: c("bodies_not_kept_total",
			"Object writes whose body of known size up to 64 MiB was not kept for a second attempt because the gateway's budget for kept bodies was spent."),
	}
	for _, r := range []string{retryStageFailed, retryRecode, retryCommitAgain, retryMapChanged} {
		m.retries.WithLabelValues(r)
	}
	for _, col := range []prometheus.Collector{m.degradedReads, m.rollForwards, m.quorumFailures, m.raisedParity, m.retries, m.notKept} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) degradedRead() {
	if m != nil {
		m.degradedReads.Inc()
	}
}

func (m *metrics) rolledForward() {
	if m != nil {
		m.rollForwards.Inc()
	}
}

func (m *metrics) quorumFailed() {
	if m != nil {
		m.quorumFailures.Inc()
	}
}

// wrote counts an acknowledged write coded with data data shards where
// the map asks for want.
func (m *metrics) wrote(data, want int) {
	if m != nil && data < want {
		m.raisedParity.Inc()
	}
}

// Reasons of kintsugi_gateway_retries_total.
const (
	retryStageFailed = "stage_failed"
	retryRecode      = "recode"
	retryCommitAgain = "commit_again"
	retryMapChanged  = "map_changed"
)

// retried counts a second attempt made for reason.
func (m *metrics) retried(reason string) {
	if m != nil {
		m.retries.WithLabelValues(reason).Inc()
	}
}

// bodyNotKept counts a body that would have been kept but for the budget.
func (m *metrics) bodyNotKept() {
	if m != nil {
		m.notKept.Inc()
	}
}
