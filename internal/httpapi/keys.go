package httpapi

import (
	"net/http"
	"time"

	"github.com/hippo-db/hippo/internal/auth"
)

// keyRoutes are the admin routes that manage API keys (docs/api.md, "API
// keys"). The admin socket serves them to `hippo keys`.
func (a *API) keyRoutes() []Route {
	return []Route{
		{"POST", "/v1/admin/keys", ClassAdmin, a.createKey},
		{"GET", "/v1/admin/keys", ClassAdmin, a.listKeys},
		{"DELETE", "/v1/admin/keys/{id}", ClassAdmin, a.revokeKey},
	}
}

type wireKeySpec struct {
	Name        string   `json:"name"`
	Scope       string   `json:"scope"`
	Collections []string `json:"collections"`
	Rate        float64  `json:"rate"`
}

// wireNewKey is a created key: its description and, this once, the key.
type wireNewKey struct {
	auth.Key
	Secret string `json:"key"`
}

func (a *API) keyring() (*auth.Keyring, error) {
	if a.access.keys == nil {
		return nil, newError("unavailable", "this server keeps no API keys")
	}
	return a.access.keys, nil
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request) {
	kr, err := a.keyring()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var spec wireKeySpec
	if err := decodeBody(w, r, MaxRecordBodyBytes, &spec); err != nil {
		a.writeError(w, r, err)
		return
	}
	key, token, err := kr.Create(auth.KeySpec{Name: spec.Name, Scope: Class(spec.Scope), Collections: spec.Collections, Rate: spec.Rate}, time.Now())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.log.Info("API key created", "id", key.ID, "name", key.Name, "scope", key.Scope, "collections", key.Collections, "by", who(r))
	writeJSON(w, http.StatusCreated, wireNewKey{Key: key, Secret: token})
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) {
	kr, err := a.keyring()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": kr.List()})
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) {
	kr, err := a.keyring()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	key, err := kr.Revoke(r.PathValue("id"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.log.Info("API key revoked", "id", key.ID, "name", key.Name, "by", who(r))
	writeJSON(w, http.StatusOK, map[string]any{"id": key.ID, "revoked": true})
}

// who describes the client of r for audit lines: its key, or its peer.
func who(r *http.Request) string {
	if g := grantFrom(r.Context()); g != nil && g.key != nil {
		return "key " + g.key.Key.ID
	}
	if c := auth.ConnFrom(r.Context()); c != nil && c.Listener != nil {
		if c.Peer != nil {
			return c.Listener.Spec.String() + " " + c.Peer.String()
		}
		return c.Listener.Spec.String() + " " + r.RemoteAddr
	}
	return r.RemoteAddr
}
