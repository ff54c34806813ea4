package health

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the tracker's Prometheus series, all labelled by node id.
// A nil *metrics records nothing.
type metrics struct {
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	calls       *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	hedges      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kintsugi_node_state",
			Help: "Health of a storage node as seen by this process: 0 up, 1 suspect, 2 down.",
		}, []string{"node"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kintsugi_node_state_changes_total",
			Help: "Changes of a storage node's health state, by the state entered.",
		}, []string{"node", "state"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kintsugi_node_calls_total",
			Help: "Calls to a storage node by outcome: ok, failed, excluded (cancelled by the caller) or refused (breaker open).",
		}, []string{"node", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kintsugi_node_call_seconds",
			Help:    "Latency of successful non-streaming calls to a storage node (time to the answer's headers for shard reads).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"node"}),
		hedges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kintsugi_hedged_reads_total",
			Help: "Shard reads from a node that were hedged with a parity read, by whether the hedge won.",
		}, []string{"node", "won"}),
	}
	for _, c := range []prometheus.Collector{m.state, m.transitions, m.calls, m.latency, m.hedges} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) setState(id string, s State) {
	if m != nil {
		m.state.WithLabelValues(id).Set(float64(s))
	}
}

func (m *metrics) transition(id string, s State) {
	if m != nil {
		m.state.WithLabelValues(id).Set(float64(s))
		m.transitions.WithLabelValues(id, s.String()).Inc()
	}
}

func (m *metrics) call(id, outcome string) {
	if m != nil {
		m.calls.WithLabelValues(id, outcome).Inc()
	}
}

func (m *metrics) observe(id string, d time.Duration) {
	if m != nil {
		m.latency.WithLabelValues(id).Observe(d.Seconds())
	}
}

func (m *metrics) hedge(id string, won bool) {
	if m != nil {
		w := "false"
		if won {
			w = "true"
		}
		m.hedges.WithLabelValues(id, w).Inc()
	}
}

// forget drops a node's series once it left the map.
func (m *metrics) forget(id string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"node": id}
	m.state.DeletePartialMatch(l)
	m.transitions.DeletePartialMatch(l)
	m.calls.DeletePartialMatch(l)
	m.latency.DeletePartialMatch(l)
	m.hedges.DeletePartialMatch(l)
}
