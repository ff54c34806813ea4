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

// setState sets a node's state. It is called when the tracker starts
// tracking the node, so it also creates the node's counters at zero: a
// series that appears only at its first event hides that event from
// rate() and increase(), and from alerts on them.
func (m *metrics) setState(id string, s State) {
	if m != nil {
		m.state.WithLabelValues(id).Set(float64(s))
		for _, st := range []State{Up, Suspect, Down} {
			m.transitions.WithLabelValues(id, st.String())
		}
		m.hedges.WithLabelValues(id, "true")
		m.hedges.WithLabelValues(id, "false")
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

// breakerDesc is the circuit breaker state of every node, read from the
// tracker at scrape time: the breakers change state on their own (open
// turns half-open when its timer runs out, without any call), so a gauge
// set on transitions would lag.
var breakerDesc = prometheus.NewDesc("kintsugi_node_breaker_state",
	"Circuit breaker of a storage node in this process: 1 for the state it is in (closed, half-open or open), 0 for the others.",
	[]string{"node", "state"}, nil)

// breakerCollector exports breakerDesc for a Tracker.
type breakerCollector struct{ t *Tracker }

func (c breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- breakerDesc }

func (c breakerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.t.Status() {
		for _, s := range []string{"closed", "half-open", "open"} {
			v := 0.0
			if st.Breaker == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(breakerDesc, prometheus.GaugeValue, v, st.ID, s)
		}
	}
}
