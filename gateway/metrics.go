package gateway

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// requestMetrics are the S3 layer's Prometheus series. Every one is
// labelled by operation, a name from S3's API reference ("GetObject") or
// "Other", so the label's values stay few whatever clients send.
type requestMetrics struct {
	requests *prometheus.CounterVec   // operation, code (2xx, 3xx, 4xx, 5xx)
	latency  *prometheus.HistogramVec // operation
	bytesIn  *prometheus.CounterVec   // operation
	bytesOut *prometheus.CounterVec   // operation
}

func newRequestMetrics(reg prometheus.Registerer) (*requestMetrics, error) {
	m := &requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kintsugi_s3_requests_total",
			Help: "S3 requests answered, by operation and status class (2xx, 3xx, 4xx, 5xx).",
		}, []string{"operation", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kintsugi_s3_request_duration_seconds",
			Help: "Time from a request's arrival to the end of its answer, body included, by operation.",
			// 1 ms to about 65 s: a small GET to a 5 GiB PUT.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 17),
		}, []string{"operation"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kintsugi_s3_received_bytes_total",
			Help: "Request body bytes read from S3 clients, by operation.",
		}, []string{"operation"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kintsugi_s3_sent_bytes_total",
			Help: "Response body bytes written to S3 clients, by operation.",
		}, []string{"operation"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.bytesIn, m.bytesOut} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// measure is the middleware that records every request. It runs outside
// logRequests so that the time it records includes the whole answer.
func (g *Gateway) measure(c *gin.Context) {
	m := g.metrics
	start := time.Now()
	bucket, key := g.bucketKey(c.Request)
	op := operation(c.Request, bucket, key)
	var in countingBody
	if c.Request.Body != nil && c.Request.Body != http.NoBody {
		in.rc = c.Request.Body
		c.Request.Body = &in
	}
	defer func() {
		// A panic is turned into a 500 (or an aborted connection) by
		// recoverPanics further in; this runs after it either way.
		status := c.Writer.Status()
		m.requests.WithLabelValues(op, strconv.Itoa(status/100)+"xx").Inc()
		m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
		if n := in.n.Load(); n > 0 {
			m.bytesIn.WithLabelValues(op).Add(float64(n))
		}
		if n := c.Writer.Size(); n > 0 {
			m.bytesOut.WithLabelValues(op).Add(float64(n))
		}
	}()
	c.Next()
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	rc io.ReadCloser
	n  atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

// operation names the S3 operation r asks for, for metric labels only:
// serveS3 still decides what runs (and refuses what is not implemented),
// so a name here that differs from the dispatch costs an imprecise label,
// never a wrong answer. bucket and key are as bucketKey finds them.
// configOperation names the tagging, CORS and preflight calls on a bucket
// (depth 1) or an object (depth 2), or returns "".
func configOperation(method string, depth int, q url.Values) string {
	if method == http.MethodOptions {
		return "PreflightRequest"
	}
	verb := map[string]string{http.MethodGet: "Get", http.MethodPut: "Put", http.MethodDelete: "Delete"}[method]
	switch {
	case verb == "":
	case q.Has("tagging") && depth == 1:
		return verb + "BucketTagging"
	case q.Has("tagging"):
		return verb + "ObjectTagging"
	case q.Has("cors") && depth == 1:
		return verb + "BucketCors"
	}
	return ""
}

func operation(r *http.Request, bucket, key string) string {
	q := r.URL.Query()
	depth := 2
	switch {
	case bucket == "":
		depth = 0
	case key == "":
		depth = 1
	}
	copySrc := r.Header.Get("X-Amz-Copy-Source") != ""
	if depth > 0 {
		if op := configOperation(r.Method, depth, q); op != "" {
			return op
		}
	}
	switch depth {
	case 0:
		if r.Method == http.MethodGet {
			return "ListBuckets"
		}
	case 1:
		switch r.Method {
		case http.MethodGet:
			switch {
			case q.Has("location"):
				return "GetBucketLocation"
			case q.Has("acl"):
				return "GetBucketAcl"
			case q.Has("uploads"):
				return "ListMultipartUploads"
			case q.Has("versioning"):
				return "GetBucketVersioning"
			case q.Get("list-type") == "2":
				return "ListObjectsV2"
			}
			return "ListObjects"
		case http.MethodHead:
			return "HeadBucket"
		case http.MethodPut:
			return "CreateBucket"
		case http.MethodDelete:
			return "DeleteBucket"
		case http.MethodPost:
			if q.Has("delete") {
				return "DeleteObjects"
			}
		}
	default:
		switch r.Method {
		case http.MethodGet:
			switch {
			case q.Has("uploadId"):
				return "ListParts"
			case q.Has("acl"):
				return "GetObjectAcl"
			}
			return "GetObject"
		case http.MethodHead:
			return "HeadObject"
		case http.MethodPut:
			switch {
			case q.Has("uploadId") && copySrc:
				return "UploadPartCopy"
			case q.Has("uploadId"):
				return "UploadPart"
			case copySrc:
				return "CopyObject"
			}
			return "PutObject"
		case http.MethodDelete:
			if q.Has("uploadId") {
				return "AbortMultipartUpload"
			}
			return "DeleteObject"
		case http.MethodPost:
			switch {
			case q.Has("uploads"):
				return "CreateMultipartUpload"
			case q.Has("uploadId"):
				return "CompleteMultipartUpload"
			}
		}
	}
	return "Other"
}
