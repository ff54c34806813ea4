package storagenode

import (
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// nodeMetrics are a node's Prometheus series, registered with
// Config.Registerer. Counters and histograms are updated by the API's
// middleware (measure) and by fsync; the rest (files, index, disk,
// quarantine, verifier) is read at scrape time by nodeCollector, so the
// node keeps one source of truth for each. A nil *nodeMetrics records
// nothing. No series carries the node id: a process serving one node
// labels them with Config.Registerer (kintsugi dev wraps each node's
// registerer with a node label).
type nodeMetrics struct {
	requests *prometheus.CounterVec   // operation, code
	latency  *prometheus.HistogramVec // operation
	written  prometheus.Counter
	read     prometheus.Counter
	fsync    prometheus.Histogram
	swept    prometheus.Counter
}

// apiOps names the API calls measured per operation: the data path. The
// others (stat, list, map, hints...) are small and counted by the
// callers' own metrics (kintsugi_node_calls_total on gateways).
var apiOps = map[string]string{
	"PUT /v1/stage":   "stage",
	"POST /v1/commit": "commit",
	"GET /v1/shard":   "read",
}

func newNodeMetrics(reg prometheus.Registerer, n *Node) (*nodeMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &nodeMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kintsugi_storagenode_requests_total",
			Help: "Stage, commit and shard read calls answered, by operation and status class (2xx, 4xx, 5xx).",
		}, []string{"operation", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kintsugi_storagenode_request_duration_seconds",
			Help: "Time to answer a stage, commit or shard read, body included, by operation.",
			// 0.5 ms to about 16 s.
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"operation"}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kintsugi_storagenode_written_bytes_total",
			Help: "Shard stream bytes received by stages (frames included).",
		}),
		read: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kintsugi_storagenode_read_bytes_total",
			Help: "Shard stream bytes sent by shard reads (frames included).",
		}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kintsugi_storagenode_fsync_duration_seconds",
			Help: "Latency of fsyncs of shard files, pack files and directories (the index's own syncs are not included).",
			// 50 µs to about 1.6 s.
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kintsugi_storagenode_staged_swept_total",
			Help: "Staged shards removed by the sweep: never committed, and dead once their grace period passed.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.written, m.read, m.fsync, m.swept, newNodeCollector(n)} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// measure wraps the API: stage, commit and shard read calls are counted
// and timed, and their shard bytes counted.
func (m *nodeMetrics) measure(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, ok := apiOps[r.Method+" "+r.URL.Path]
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		var body *countingReadCloser
		if op == "stage" && r.Body != nil {
			body = &countingReadCloser{ReadCloser: r.Body}
			r.Body = body
		}
		defer func() {
			m.requests.WithLabelValues(op, strconv.Itoa(sw.status/100)+"xx").Inc()
			m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
			if body != nil {
				m.written.Add(float64(body.n.Load()))
			}
			if op == "read" {
				m.read.Add(float64(sw.n))
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

func (m *nodeMetrics) observeFsync(d time.Duration) {
	if m != nil {
		m.fsync.Observe(d.Seconds())
	}
}

func (m *nodeMetrics) sweptStaged(k int) {
	if m != nil && k > 0 {
		m.swept.Add(float64(k))
	}
}

// statusWriter records a response's status and body bytes.
type statusWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// ReadFrom keeps the sendfile path of the wrapped writer for shard files.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(w.ResponseWriter, r)
	w.n += n
	return n, err
}

// Flush passes flushes through to streams that use them.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingReadCloser counts the bytes read through it.
type countingReadCloser struct {
	io.ReadCloser
	n atomic.Int64
}

func (c *countingReadCloser) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// fileCountTTL bounds how often a scrape walks the shard directories:
// a node with millions of shard files must not walk them on every scrape.
const fileCountTTL = time.Minute

// nodeCollector reads a node's state at scrape time.
type nodeCollector struct {
	n *Node

	mu        sync.Mutex
	counted   time.Time // when shardFiles was counted; zero: never
	shardFile int

	packFiles, shardFiles, indexBytes, diskFree, diskUsed, objects, quarantined *prometheus.Desc
	vRunning, vPass, vPassShards, vPassBytes, vLastEnd, vShards, vCorrupt       *prometheus.Desc
}

func newNodeCollector(n *Node) *nodeCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("kintsugi_storagenode_"+name, help, nil, nil)
	}
	return &nodeCollector{
		n:           n,
		packFiles:   d("pack_files", "Pack files, the active one included."),
		shardFiles:  d("shard_files", "Shard files of their own under shards/ (counted at most once a minute)."),
		indexBytes:  d("index_bytes", "Size of the node's index (badger) on disk."),
		diskFree:    d("disk_free_bytes", "Bytes available to the node on the file system of its data directory."),
		diskUsed:    d("disk_used_bytes", "Bytes used on the file system of the node's data directory (by anything)."),
		objects:     d("objects", "Keys whose newest committed version on this node is not a delete marker."),
		quarantined: d("quarantined_shards", "Shards quarantined for failing their digests, waiting for the scrubber."),
		vRunning:    d("verifier_running", "1 while the background verifier runs a pass."),
		vPass:       d("verifier_pass", "Number of the background verifier's current (or last) pass."),
		vPassShards: d("verifier_pass_shards", "Shards the verifier's current pass has verified so far."),
		vPassBytes:  d("verifier_pass_bytes", "Shard bytes the verifier's current pass has re-hashed so far."),
		vLastEnd:    d("verifier_last_pass_end_timestamp_seconds", "When the verifier last completed a pass (Unix time; 0: never)."),
		vShards:     d("verifier_shards_verified_total", "Shards the verifier has re-hashed since the index was created."),
		vCorrupt:    d("verifier_shards_corrupt_total", "Shards found corrupt by the verifier or a verify call since the index was created."),
	}
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.packFiles, c.shardFiles, c.indexBytes, c.diskFree, c.diskUsed, c.objects, c.quarantined,
		c.vRunning, c.vPass, c.vPassShards, c.vPassBytes, c.vLastEnd, c.vShards, c.vCorrupt} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.packFiles, float64(len(n.packs.Packs())))
	gauge(c.shardFiles, float64(c.countShardFiles()))
	gauge(c.indexBytes, float64(dirBytes(filepath.Join(n.dir, "meta"))))
	if free, total, err := diskSpace(n.dir); err == nil {
		gauge(c.diskFree, float64(free))
		gauge(c.diskUsed, float64(total-free))
	}
	gauge(c.objects, float64(n.db.Objects()))
	if _, total, err := n.db.QuarantinedShards(0); err == nil {
		gauge(c.quarantined, float64(total))
	}
	st := n.scrub.snapshot()
	running := 0.0
	if st.Running {
		running = 1
	}
	gauge(c.vRunning, running)
	gauge(c.vPass, float64(st.Pass))
	gauge(c.vPassShards, float64(st.PassShards))
	gauge(c.vPassBytes, float64(st.PassBytes))
	end := 0.0
	if !st.LastPassFinished.IsZero() {
		end = float64(st.LastPassFinished.UnixMilli()) / 1000
	}
	gauge(c.vLastEnd, end)
	counter(c.vShards, float64(st.Shards))
	counter(c.vCorrupt, float64(st.Corrupt))
}

// countShardFiles returns the number of files under shards/, walking the
// directories at most once per fileCountTTL.
func (c *nodeCollector) countShardFiles() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.counted.IsZero() && time.Since(c.counted) < fileCountTTL {
		return c.shardFile
	}
	k := 0
	filepath.WalkDir(filepath.Join(c.n.dir, shardsDir), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			k++
		}
		return nil // a file removed meanwhile is not an error
	})
	c.shardFile, c.counted = k, time.Now()
	return k
}

// dirBytes is the size of the regular files directly in dir.
func dirBytes(dir string) int64 {
	es, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var total int64
	for _, e := range es {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			total += info.Size()
		}
	}
	return total
}
