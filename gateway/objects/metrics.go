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
	}
	for _, col := range []prometheus.Collector{m.degradedReads, m.rollForwards, m.quorumFailures, m.raisedParity} {
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
