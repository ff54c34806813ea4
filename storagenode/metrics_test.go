package storagenode

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gathered returns the value of every sample of reg, keyed by metric name
// and its label values in label name order ("name{v1,v2}"); histograms
// give their count.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			if len(m.GetLabel()) > 0 {
				key += "{"
				for i, l := range m.GetLabel() {
					if i > 0 {
						key += ","
					}
					key += l.GetValue()
				}
				key += "}"
			}
			out[key] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// TestNodeMetrics: stages, commits and reads are counted with their bytes,
// fsyncs timed, and files, objects and disk read at scrape time.
func TestNodeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	tn := startNode(t, "", func(c *Config) {
		c.Registerer = reg
		c.PackMax = 0 // every shard a file of its own, to count them
	})
	o := encode(t, 3*testBlock, 1)
	tn.put(t, "b", "k1", ver(1), o, 0)
	tn.put(t, "b", "k2", ver(2), o, 1)
	got := tn.readAll(t, "b", "k1", ver(1), 0)

	// The read's handler records it once it returns, which may be just
	// after the client has read the last byte.
	m := gathered(t, reg)
	for deadline := time.Now().Add(5 * time.Second); m["kintsugi_storagenode_requests_total{2xx,read}"] == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		m = gathered(t, reg)
	}
	want := map[string]float64{
		"kintsugi_storagenode_requests_total{2xx,stage}":                2,
		"kintsugi_storagenode_requests_total{2xx,commit}":               2,
		"kintsugi_storagenode_requests_total{2xx,read}":                 1,
		"kintsugi_storagenode_request_duration_seconds{stage}":          2,
		"kintsugi_storagenode_request_duration_seconds{commit}":         2,
		"kintsugi_storagenode_request_duration_seconds{read}":           1,
		"kintsugi_storagenode_written_bytes_total":                      float64(len(o.shards[0]) + len(o.shards[1])),
		"kintsugi_storagenode_read_bytes_total":                         float64(len(got)),
		"kintsugi_storagenode_shard_files":                              2,
		"kintsugi_storagenode_objects":                                  2,
		"kintsugi_storagenode_quarantined_shards":                       0,
		"kintsugi_storagenode_staged_swept_total":                       0,
		"kintsugi_storagenode_verifier_shards_corrupt_total":            0,
		"kintsugi_storagenode_verifier_last_pass_end_timestamp_seconds": 0,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	for _, k := range []string{"kintsugi_storagenode_fsync_duration_seconds", "kintsugi_storagenode_disk_free_bytes",
		"kintsugi_storagenode_disk_used_bytes", "kintsugi_storagenode_index_bytes"} {
		if m[k] <= 0 {
			t.Errorf("%s = %v, want > 0", k, m[k])
		}
	}
}
