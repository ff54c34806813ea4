package gateway

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// Config configures a Gateway. Zero limits and an empty Region take their
// defaults.
type Config struct {
	Backend Backend         // required
	Auth    *sigv4.Verifier // nil disables authentication; aws-chunked payloads are still decoded
	Region  string          // answered by GetBucketLocation; default "us-east-1"
	Logger  *slog.Logger    // nil discards logs

	MaxObjectSize    int64 // largest single PUT or part; default 5 GiB (EntityTooLarge beyond)
	MaxKeyLength     int   // in bytes; default 1024 (KeyTooLongError beyond)
	MaxUserMetaBytes int   // total of x-amz-meta-* names and values; default 2048 (MetadataTooLarge beyond)
	// MaxHeaderBytes bounds the request line and headers; default 64 KiB
	// (RequestHeaderSectionTooLarge beyond). The http.Server's own limit
	// must be larger for the S3 error to be the one clients see.
	MaxHeaderBytes int

	// Domain, if set, enables virtual-hosted–style requests: a Host of
	// "<bucket>.<Domain>" names the bucket and the path is the key. A Host
	// of Domain itself, or any other Host, is path-style. Several domains
	// may be given, comma-separated.
	Domain string

	// SlowClientTimeout is how long one read of a request body, or one
	// write of a response body, may wait for the client before the
	// request is cut off with RequestTimeout; default 30s, negative
	// disables the deadlines.
	SlowClientTimeout time.Duration
	// MinBodyRate is the average rate, in bytes per second of time spent
	// waiting for the client, below which an upload is cut off once it
	// has run for SlowClientTimeout: a client trickling bytes cannot pin
	// the gateway. Default 1024; negative disables the check.
	MinBodyRate int64

	// Registerer, if set, receives the S3 request metrics
	// (kintsugi_s3_*); nil records none.
	Registerer prometheus.Registerer
}

// Defaults, as in S3.
const (
	DefaultRegion           = "us-east-1"
	DefaultMaxObjectSize    = 5 << 30
	DefaultMaxKeyLength     = 1024
	DefaultMaxUserMetaBytes = 2048
	DefaultMaxHeaderBytes   = 64 << 10
	DefaultSlowClient       = 30 * time.Second
	DefaultMinBodyRate      = 1024
)

// DefaultConfig returns a Config with every default filled in and no
// Backend.
func DefaultConfig() Config {
	return Config{
		Region:            DefaultRegion,
		MaxObjectSize:     DefaultMaxObjectSize,
		MaxKeyLength:      DefaultMaxKeyLength,
		MaxUserMetaBytes:  DefaultMaxUserMetaBytes,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		SlowClientTimeout: DefaultSlowClient,
		MinBodyRate:       DefaultMinBodyRate,
	}
}

// Validate reports a Config that New would refuse.
func (c *Config) Validate() error {
	const op = "gateway.Config.Validate"
	switch {
	case c.Backend == nil:
		return kerr.E(op, kerr.Invalid, "no Backend")
	case c.MaxObjectSize < 0, c.MaxKeyLength < 0, c.MaxUserMetaBytes < 0, c.MaxHeaderBytes < 0:
		return kerr.E(op, kerr.Invalid, "negative limit")
	}
	for d := range strings.SplitSeq(c.Domain, ",") {
		if d = strings.TrimSpace(d); d != "" && (strings.ContainsAny(d, "/: ") || strings.HasPrefix(d, ".")) {
			return kerr.E(op, kerr.Invalid, fmt.Errorf("domain %q: want a host name like s3.example.com", d))
		}
	}
	return nil
}

// Gateway serves the S3 API over a Backend. It is safe for concurrent use.
type Gateway struct {
	cfg    Config
	log    *slog.Logger
	engine *gin.Engine

	domains []string        // virtual-host domains, lower case
	metrics *requestMetrics // nil: none

	idMu sync.Mutex
	ids  *rand.ChaCha8 // request ids; guarded by idMu
}

// New returns a Gateway for cfg.
func New(cfg Config) (*Gateway, error) {
	const op = "gateway.New"
	if err := cfg.Validate(); err != nil {
		return nil, kerr.E(op, err)
	}
	def := DefaultConfig()
	if cfg.Region == "" {
		cfg.Region = def.Region
	}
	if cfg.MaxObjectSize == 0 {
		cfg.MaxObjectSize = def.MaxObjectSize
	}
	if cfg.MaxKeyLength == 0 {
		cfg.MaxKeyLength = def.MaxKeyLength
	}
	if cfg.MaxUserMetaBytes == 0 {
		cfg.MaxUserMetaBytes = def.MaxUserMetaBytes
	}
	if cfg.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = def.MaxHeaderBytes
	}
	if cfg.SlowClientTimeout == 0 {
		cfg.SlowClientTimeout = def.SlowClientTimeout
	}
	if cfg.MinBodyRate == 0 {
		cfg.MinBodyRate = def.MinBodyRate
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, kerr.E(op, kerr.Internal, err)
	}
	g := &Gateway{cfg: cfg, log: log, ids: rand.NewChaCha8(seed), domains: parseDomains(cfg.Domain)}
	if cfg.Registerer != nil {
		m, err := newRequestMetrics(cfg.Registerer)
		if err != nil {
			return nil, kerr.E(op, kerr.Internal, err)
		}
		g.metrics = m
	}
	g.engine = g.newEngine()
	return g, nil
}

// Handler returns the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.engine }

// newEngine builds the gin engine. Path handling is S3's, not a web
// framework's: paths are never cleaned or redirected, and the key is taken
// from the decoded URL path rather than from gin's parameter, because gin
// unescapes parameters as query strings and would turn a literal "+" into
// a space.
func (g *Gateway) newEngine() *gin.Engine {
	// gin's mode is process-wide; release mode only silences its debug
	// route printing, so setting it from every New is harmless.
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.RemoveExtraSlash = false
	e.UseRawPath = false
	e.UnescapePathValues = false
	e.HandleMethodNotAllowed = false
	if g.metrics != nil {
		e.Use(g.measure)
	}
	e.Use(g.logRequests, g.recoverPanics)

	e.GET("/-/healthy", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete} {
		e.Handle(m, "/", g.serveS3)
		e.Handle(m, "/:bucket", g.serveS3)
		e.Handle(m, "/:bucket/*key", g.serveS3)
	}
	// Anything the routes above do not match (other methods, "//key")
	// still gets an S3 answer.
	e.NoRoute(g.serveS3)
	return e
}

const hdrRequestID = "x-amz-request-id"

// requestID returns a new random request id in S3's format (16 upper-case
// hex digits).
func (g *Gateway) requestID() string {
	g.idMu.Lock()
	v := g.ids.Uint64()
	g.idMu.Unlock()
	return fmt.Sprintf("%016X", v)
}

// recoverPanics turns a handler panic into a 500, or into an aborted
// connection when the response has already started. http.ErrAbortHandler
// passes through: it is how a handler asks net/http to drop the connection.
func (g *Gateway) recoverPanics(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
			panic(v)
		}
		g.log.Error("gateway: handler panic", "panic", v, "method", c.Request.Method,
			"path", c.Request.URL.Path, "request_id", c.Writer.Header().Get(hdrRequestID),
			"stack", string(stack()))
		if c.Writer.Written() {
			panic(http.ErrAbortHandler)
		}
		g.fail(c, kerr.E("gateway.serve", kerr.Internal, fmt.Sprint("panic: ", v)))
		c.Abort()
	}()
	c.Next()
}
