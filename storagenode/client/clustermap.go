package client

import (
	"context"
	"github.com/segmentio/encoding/json"
	"net/http"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
)

// Cluster map propagation:
//
//	GET /v1/map   -> the stored cluster map (JSON); 404 if none
//	PUT /v1/map   body: cluster map (JSON) -> {"epoch": N}; 409 unless its epoch is higher (or equal, same content)

// GetMap returns the newest cluster map the node was given, parsed and
// validated. Errors: kerr.NotExist if the node has none.
func (c *Client) GetMap(ctx context.Context) (*placement.Map, error) {
	const op = "client.GetMap"
	var raw json.RawMessage
	if err := c.call(ctx, op, http.MethodGet, "/v1/map", nil, nil, &raw); err != nil {
		return nil, err
	}
	m, err := placement.Parse(raw)
	if err != nil {
		return nil, kerr.E(op, kerr.Corrupt, c.wrap(err))
	}
	return m, nil
}

// PutMap offers m to the node. The node keeps it only if its epoch is
// higher than that of the map it has; offering the map it has is a no-op.
// Errors: kerr.Conflict when the node has a newer map, or another map of
// the same epoch (the message says which); kerr.Invalid for a map that
// does not validate.
func (c *Client) PutMap(ctx context.Context, m *placement.Map) error {
	return c.call(ctx, "client.PutMap", http.MethodPut, "/v1/map", nil, m.WithDefaults(), nil)
}
