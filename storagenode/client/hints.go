package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// MaxHints bounds the hints in one AddHints or DeleteHints call.
const MaxHints = 10000

// AddHints records repair hints on the node for the scrubber. A hint is
// identified by (Bucket, Key, Version, Shard): adding it again replaces the
// stored one. Shard -1 names the version as a whole.
func (c *Client) AddHints(ctx context.Context, hints []Hint) error {
	const op = "client.AddHints"
	if err := CheckHints(hints); err != nil {
		return kerr.E(op, err)
	}
	if len(hints) == 0 {
		return nil
	}
	return c.call(ctx, op, http.MethodPost, "/v1/hints", nil, hints, nil)
}

// ListHints returns up to limit of the node's hints (<= 0 means
// DefaultListLen, capped at MaxListLen), in no particular order.
func (c *Client) ListHints(ctx context.Context, limit int) ([]Hint, error) {
	var hs []Hint
	q := url.Values{"limit": {strconv.Itoa(ListLimit(limit))}}
	err := c.call(ctx, "client.ListHints", http.MethodGet, "/v1/hints", q, nil, &hs)
	return hs, err
}

// DeleteHints removes the hints with the same identity as hints; unknown
// ones are ignored.
func (c *Client) DeleteHints(ctx context.Context, hints []Hint) error {
	const op = "client.DeleteHints"
	if err := CheckHints(hints); err != nil {
		return kerr.E(op, err)
	}
	if len(hints) == 0 {
		return nil
	}
	return c.call(ctx, op, http.MethodDelete, "/v1/hints", nil, hints, nil)
}

// CheckHints validates a batch of hints as a node would.
func CheckHints(hints []Hint) error {
	const op = "client.CheckHints"
	if len(hints) > MaxHints {
		return kerr.E(op, kerr.TooLarge, fmt.Errorf("%d hints, more than %d", len(hints), MaxHints))
	}
	for _, h := range hints {
		if err := CheckObject(h.Bucket, h.Key, h.Version); err != nil {
			return kerr.E(op, err)
		}
		if h.Shard != -1 {
			if err := CheckShard(h.Shard); err != nil {
				return kerr.E(op, err)
			}
		}
	}
	return nil
}
