package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// DefaultTimeout is the per-call deadline of metadata calls whose ctx has
// none.
const DefaultTimeout = 30 * time.Second

// Options configure a Client. A nil *Options means all defaults.
type Options struct {
	// HTTPClient sends the requests. nil: a transport shared by all
	// Clients, tuned for many concurrent streams to few hosts.
	HTTPClient *http.Client
	// Secret is the cluster secret every request is signed with (see
	// Sign). nil: requests are not signed.
	Secret []byte
	// Timeout is the deadline applied to a call whose ctx has none;
	// default DefaultTimeout. Streaming calls (Stage, ReadShard) are
	// bounded by their ctx only: a large shard may take any time.
	Timeout time.Duration
}

// Client talks to one storage node. It is safe for concurrent use.
type Client struct {
	addr    string
	base    string // scheme://host:port, no trailing slash
	hc      *http.Client
	secret  []byte
	timeout time.Duration
}

// sharedHTTPClient is the default transport of Clients given none.
var sharedHTTPClient = sync.OnceValue(func() *http.Client { return NewHTTPClient(nil) })

// NewHTTPClient returns an HTTP client tuned for node traffic: nodes are
// few and streams to them many, so it keeps plenty of idle connections
// per host, and node traffic is internal, so it never goes through a
// proxy. tlsConfig is for nodes at https:// addresses (nil: the system
// roots). Share one among the Clients of a process, as Options.HTTPClient.
func NewHTTPClient(tlsConfig *tls.Config) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext:           d.DialContext,
		TLSClientConfig:       tlsConfig,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
	}}
}

// New returns a Client for the node at addr, either "host:port" (plain
// HTTP) or "http(s)://host:port".
func New(addr string, opts *Options) *Client {
	c := &Client{addr: addr, timeout: DefaultTimeout}
	if strings.Contains(addr, "://") {
		c.base = strings.TrimRight(addr, "/")
	} else {
		c.base = "http://" + addr
	}
	if opts != nil {
		c.hc = opts.HTTPClient
		c.secret = opts.Secret
		if opts.Timeout > 0 {
			c.timeout = opts.Timeout
		}
	}
	if c.hc == nil {
		c.hc = sharedHTTPClient()
	}
	return c
}

// Addr returns the address the Client was made with.
func (c *Client) Addr() string { return c.addr }

// Health asks the node for its identity and disk usage.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.call(ctx, "client.Health", http.MethodGet, "/v1/health", nil, nil, &h)
	return h, err
}

// newRequest builds a signed request for path with query q.
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader, bodyDigest string) (*http.Request, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if c.secret != nil {
		Sign(req, c.secret, bodyDigest, time.Now())
	}
	setEpoch(ctx, req)
	return req, nil
}

// call sends in (if non-nil) as a JSON body and decodes a 200 answer's JSON
// into out (if non-nil). It applies c.timeout when ctx has no deadline.
func (c *Client) call(ctx context.Context, op, method, path string, q url.Values, in, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return kerr.E(op, kerr.Invalid, err)
		}
	}
	var r io.Reader = http.NoBody
	if len(body) > 0 {
		r = bytes.NewReader(body)
	}
	req, err := c.newRequest(ctx, method, path, q, r, BodyDigest(body))
	if err != nil {
		return kerr.E(op, kerr.Invalid, c.wrap(err))
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.statusError(op, resp)
	}
	if out != nil {
		if err := decodeAnswer(resp.Body, out); err != nil {
			return kerr.E(op, kerr.Transient, c.wrap(fmt.Errorf("decoding answer: %w", err)))
		}
	}
	// Let the connection be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	return nil
}

func (c *Client) wrap(err error) error { return fmt.Errorf("node %s: %w", c.addr, err) }

// transportError classifies an error from http.Client.Do: a node that
// refuses connections or cannot be resolved is Unavailable; timeouts,
// resets and cancellations are Transient. The cause stays in the chain, so
// errors.Is(err, context.Canceled) works.
func (c *Client) transportError(op string, err error) error {
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.As(err, &dns):
		return kerr.E(op, kerr.Unavailable, c.wrap(err))
	}
	return kerr.E(op, kerr.Transient, c.wrap(err))
}

// statusKinds maps a node's HTTP status to an error kind. The node's own
// table (Kind to status) is its inverse for the kinds it uses.
var statusKinds = map[int]kerr.Kind{
	http.StatusBadRequest:            kerr.Invalid,
	http.StatusUnauthorized:          kerr.Unauthorized,
	http.StatusForbidden:             kerr.Unauthorized,
	http.StatusNotFound:              kerr.NotExist,
	http.StatusConflict:              kerr.Conflict,
	http.StatusRequestEntityTooLarge: kerr.TooLarge,
	http.StatusUnprocessableEntity:   kerr.Corrupt,
	http.StatusInsufficientStorage:   kerr.TooLarge,
	http.StatusBadGateway:            kerr.Transient,
	http.StatusServiceUnavailable:    kerr.Transient,
	http.StatusGatewayTimeout:        kerr.Transient,
}

// statusError turns a non-200 answer into an error. For client errors (4xx)
// the kind named in the body wins, as it is more precise than the status
// (409 is Exist or Conflict), and the sentinel it names (ErrorBody.Sentinel)
// is in the error's chain; a failing node (5xx) is Unavailable or
// Transient whatever it says, except that a node saying it is Unavailable
// (stopped until restarted, say) is believed: retrying it is no use. A
// refusal that carries the node's map is a *StaleMapError (see Fence).
func (c *Client) statusError(op string, resp *http.Response) error {
	kind, ok := statusKinds[resp.StatusCode]
	if !ok {
		kind = kerr.Invalid
		if resp.StatusCode >= 500 {
			kind = kerr.Unavailable
		}
	}
	// Large enough for a stale-map refusal, which carries a whole map.
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, MaxSignedBody))
	msg := strings.TrimSpace(string(raw))
	var eb ErrorBody
	var sentinel error
	if json.Unmarshal(raw, &eb) == nil && eb.Message != "" {
		msg = eb.Message
		if k, ok := kindByName(eb.Kind); ok && (resp.StatusCode < 500 || k == kerr.Unavailable) {
			kind = k
			sentinel = sentinels[eb.Sentinel]
		}
		if len(eb.Map) > 0 && resp.StatusCode == http.StatusConflict {
			if err := staleMap(resp.Request, eb.Map); err != nil {
				return kerr.E(op, kerr.Conflict, c.wrap(err))
			}
		}
	}
	if sentinel != nil {
		return kerr.E(op, kind, c.wrap(&remoteError{msg: resp.Status + ": " + msg, sentinel: sentinel}))
	}
	if eb.Newer != "" {
		return kerr.E(op, kind, c.wrap(fmt.Errorf("%s: %w", resp.Status, &ConflictError{Newer: eb.Newer})))
	}
	return kerr.E(op, kind, c.wrap(fmt.Errorf("%s: %s", resp.Status, msg)))
}

// kindByName inverts kerr.Kind.String.
func kindByName(name string) (kerr.Kind, bool) {
	for k := kerr.Other + 1; k.String() != "unknown"; k++ {
		if k.String() == name {
			return k, true
		}
	}
	return kerr.Other, false
}

// answerBufs holds buffers for answers being decoded. A json Decoder would
// allocate 32 KiB per answer, and most answers are a few hundred bytes: a
// 4 KiB PUT, 12 answers, allocated 380 KB more than it needed.
var answerBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decodeAnswer reads a JSON answer whole and decodes it into v.
func decodeAnswer(r io.Reader, v any) error {
	buf := answerBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 { // a long list page's buffer is not kept
			answerBufs.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(r); err != nil {
		return err
	}
	return json.Unmarshal(buf.Bytes(), v)
}
