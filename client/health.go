package client

import (
	"context"
	"net/http"
)

// Health asks whether the server is alive (GET /healthz) and returns the
// object it answers with.
func (c *Client) Health(ctx context.Context) (map[string]any, error) {
	var status map[string]any
	_, err := c.call(ctx, http.MethodGet, "/healthz", nil, nil, &status)
	return status, err
}

// Ready asks whether the server is ready to serve (GET /readyz) and returns
// the object it answers with, which describes the store and connection pool.
// A server that is not ready answers 503, which Ready returns as an *Error
// with Code CodeUnavailable; the object is then in its Details.
func (c *Client) Ready(ctx context.Context) (map[string]any, error) {
	var status map[string]any
	_, err := c.call(ctx, http.MethodGet, "/readyz", nil, nil, &status)
	return status, err
}
