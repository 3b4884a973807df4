package client

import (
	"context"
	"net/http"
	"time"
)

// Key describes an API key; it never holds the secret.
type Key struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Scope string `json:"scope"` // "read", "write" or "admin"
	// Collections are the glob patterns of the collections the key may
	// use; ["*"] is every collection.
	Collections []string `json:"collections"`
	// Rate is the key's own limit in requests per second; 0 means the
	// server's default.
	Rate      float64   `json:"rate,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// KeySpec describes a key to create.
type KeySpec struct {
	Name        string   `json:"name"`
	Scope       string   `json:"scope"`                 // "read", "write" or "admin"
	Collections []string `json:"collections,omitempty"` // glob patterns; none means every collection
	Rate        float64  `json:"rate,omitempty"`        // requests per second; 0: the server's default
}

// CreateKey creates an API key (POST /v1/admin/keys, which needs the admin
// class) and returns it with its secret token, which the server does not
// keep: this is the only time it can be read. Clients send the token as
//
//	client.WithHeader("Authorization", "Bearer "+token)
func (c *Client) CreateKey(ctx context.Context, spec KeySpec) (key Key, token string, err error) {
	var out struct {
		Key
		Token string `json:"key"`
	}
	if _, err := c.call(ctx, http.MethodPost, "/v1/admin/keys", nil, spec, &out); err != nil {
		return Key{}, "", err
	}
	return out.Key, out.Token, nil
}

// ListKeys lists the API keys (GET /v1/admin/keys), oldest first.
func (c *Client) ListKeys(ctx context.Context) ([]Key, error) {
	var out struct {
		Keys []Key `json:"keys"`
	}
	_, err := c.call(ctx, http.MethodGet, "/v1/admin/keys", nil, nil, &out)
	return out.Keys, err
}

// RevokeKey revokes an API key by id (DELETE /v1/admin/keys/{id}). Requests
// with the key are refused from the moment it returns, and the key's open
// streams end. An unknown id is an *Error with CodeNotFound.
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	if err := checkName("key id", id); err != nil {
		return err
	}
	_, err := c.call(ctx, http.MethodDelete, "/v1/admin/keys/"+escapeSegment(id), nil, nil, nil)
	return err
}
