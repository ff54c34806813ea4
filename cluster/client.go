package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Client calls the cluster API of one storage node. It is safe for
// concurrent use.
type Client struct {
	addr   string
	base   string
	hc     *http.Client
	secret []byte
}

// defaultHTTP serves Clients whose options name no HTTP client. Its
// calls are bounded by their contexts, long polls included; a connection
// gets a few seconds, so that a host cut off fails a forward fast enough
// for the next leader to be tried.
var defaultHTTP = &http.Client{Transport: &http.Transport{
	DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	MaxIdleConnsPerHost: 4,
	IdleConnTimeout:     90 * time.Second,
}}

// NewClient returns a Client for the node at addr ("host:port" or
// "http(s)://host:port"); opts supplies the secret and HTTP client, as
// for the node's data API (nil: unsigned, default transport).
func NewClient(addr string, opts *client.Options) *Client {
	c := &Client{addr: addr, base: "http://" + addr, hc: defaultHTTP}
	if strings.Contains(addr, "://") {
		c.base = strings.TrimRight(addr, "/")
	}
	if opts != nil {
		c.secret = opts.Secret
		if opts.HTTPClient != nil {
			c.hc = opts.HTTPClient
		}
	}
	return c
}

// Addr returns the node's address.
func (c *Client) Addr() string { return c.addr }

// Apply asks the node to commit ch; a follower forwards it to the
// leader. Errors: *placement.ConflictError, an error matching
// placement.ErrInvalidChange, ErrNotInitialised (each: nothing changed);
// *NotLeaderError when no leader is reachable; any other error leaves
// the outcome unknown.
func (c *Client) Apply(ctx context.Context, ch placement.Change) (*placement.Map, error) {
	return c.apply(ctx, ch, false)
}

func (c *Client) apply(ctx context.Context, ch placement.Change, forwarded bool) (*placement.Map, error) {
	var m placement.Map
	hdr := http.Header{}
	if forwarded {
		hdr.Set(headerForwarded, "1")
	}
	setDeadline(hdr, ctx, forwarded)
	if err := c.call(ctx, http.MethodPost, "/v1/cluster/apply", nil, hdr, ch, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Init bootstraps a new group on the node, seeded with m. Errors:
// ErrInitialised if the node already belongs to a group.
func (c *Client) Init(ctx context.Context, m *placement.Map) (*placement.Map, error) {
	var got placement.Map
	if err := c.call(ctx, http.MethodPost, "/v1/cluster/init", nil, nil, m, &got); err != nil {
		return nil, err
	}
	return &got, nil
}

// Status returns the group as the node sees it, each voter's report
// included.
func (c *Client) Status(ctx context.Context) (ClusterStatus, error) {
	var st ClusterStatus
	err := c.call(ctx, http.MethodGet, "/v1/cluster/status", nil, nil, nil, &st)
	return st, err
}

// LocalStatus returns the node's own member status.
func (c *Client) LocalStatus(ctx context.Context) (Status, error) {
	var st Status
	err := c.call(ctx, http.MethodGet, "/v1/cluster/status", url.Values{"local": {"1"}}, nil, nil, &st)
	return st, err
}

// Map returns the node's map once its epoch is above after, or its
// current map when wait ends (a long poll; wait 0 answers at once).
// Errors: ErrNotInitialised if the node holds no map.
func (c *Client) Map(ctx context.Context, after uint64, wait time.Duration) (*placement.Map, error) {
	q := url.Values{"after": {fmt.Sprint(after)}, "wait": {wait.String()}}
	var m placement.Map
	if err := c.call(ctx, http.MethodGet, "/v1/cluster/map", q, nil, nil, &m); err != nil {
		return nil, err
	}
	return m.WithDefaults(), nil
}

func (c *Client) call(ctx context.Context, method, path string, q url.Values, hdr http.Header, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.secret != nil {
		client.Sign(req, c.secret, client.BodyDigest(body), time.Now())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("node %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, client.MaxSignedBody))
	if err != nil {
		return fmt.Errorf("node %s: %w", c.addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return decodeErr(c.addr, resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("node %s: decoding answer: %w", c.addr, err)
	}
	return nil
}

// decodeErr turns an error answer back into the error the node had.
func decodeErr(addr string, status int, data []byte) error {
	var b errorBody
	if json.Unmarshal(data, &b) != nil || !ourKinds[b.Kind] {
		// Not one of ours: the node's authentication, or a node without
		// the cluster API.
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return fmt.Errorf("node %s: %w", addr, ErrNoRaft)
		}
		var nb client.ErrorBody
		if json.Unmarshal(data, &nb) == nil && nb.Message != "" {
			return fmt.Errorf("node %s: %s (%d)", addr, nb.Message, status)
		}
		return fmt.Errorf("node %s: HTTP %d", addr, status)
	}
	switch b.Kind {
	case "Conflict":
		return &placement.ConflictError{Expected: b.Expected, Current: b.Current}
	case "Exist":
		return ErrInitialised
	case "NotExist":
		return ErrNotInitialised
	case "Invalid":
		return &refused{b.Message}
	case "OutcomeUnknown":
		return &OutcomeUnknownError{Err: errors.New(b.Message)}
	}
	if b.Leader != "" || strings.Contains(b.Message, "no Raft leader") {
		return &NotLeaderError{Leader: b.Leader, LeaderAddr: b.LeaderAddr}
	}
	if b.Message == (&NotLeaderError{Handover: true}).Error() {
		return &NotLeaderError{Handover: true}
	}
	if b.Message == ErrExpired.Error() {
		return ErrExpired
	}
	return fmt.Errorf("node %s: %s", addr, b.Message)
}

// ourKinds are the kinds of errorBody; anything else is the node's own
// answer (its authentication, or a node without the cluster API).
var ourKinds = map[string]bool{"Conflict": true, "Exist": true, "NotExist": true, "Invalid": true, "Unavailable": true, "OutcomeUnknown": true}

// ErrNoRaft: the node serves no cluster API (it runs without Raft).
var ErrNoRaft = errors.New("the node runs without a Raft-held map")
