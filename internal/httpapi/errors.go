package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/hippo-db/hippo/internal/auth"
	"github.com/hippo-db/hippo/internal/engine"
	"github.com/hippo-db/hippo/internal/filter"
	"github.com/hippo-db/hippo/internal/store"
)

// apiError is the body of every error answer:
// {"error": {"code", "message", "details"}}.
type apiError struct {
	Status  int            `json:"-"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

func (e *apiError) Error() string { return e.Message }

// The API's error codes and their statuses (API.md).
var codeStatus = map[string]int{
	"invalid_argument":       http.StatusBadRequest,
	"unauthenticated":        http.StatusUnauthorized,
	"permission_denied":      http.StatusForbidden,
	"not_found":              http.StatusNotFound,
	"not_acceptable":         http.StatusNotAcceptable,
	"gone":                   http.StatusGone,
	"method_not_allowed":     http.StatusMethodNotAllowed,
	"conflict":               http.StatusConflict,
	"payload_too_large":      http.StatusRequestEntityTooLarge,
	"unsupported_media_type": http.StatusUnsupportedMediaType,
	"rate_limited":           http.StatusTooManyRequests,
	"unavailable":            http.StatusServiceUnavailable,
	"internal":               http.StatusInternalServerError,
}

func newError(code, message string) *apiError {
	return &apiError{Status: codeStatus[code], Code: code, Message: message}
}

// catalog maps any error to its API error. It is the only place where
// internal errors become statuses.
func catalog(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var details map[string]any
	var ee *engine.Error
	if errors.As(err, &ee) {
		details = ee.Details
	}
	var mbe *http.MaxBytesError
	code := "internal"
	switch {
	case errors.As(err, &mbe):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
			Message: "request body is larger than the limit", Details: map[string]any{"limit_bytes": mbe.Limit}}
	case errors.Is(err, engine.ErrInvalid), errors.Is(err, filter.ErrInvalid), errors.Is(err, auth.ErrInvalid):
		code = "invalid_argument"
	case errors.Is(err, auth.ErrUnauthenticated):
		code = "unauthenticated"
	case errors.Is(err, engine.ErrNotFound), errors.Is(err, auth.ErrKeyNotFound):
		code = "not_found"
	case errors.Is(err, engine.ErrConflict):
		code = "conflict"
	case errors.Is(err, engine.ErrTooLarge):
		code = "payload_too_large"
	case errors.Is(err, engine.ErrClosed), errors.Is(err, engine.ErrUnavailable),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = "unavailable"
	case errors.Is(err, store.ErrCorrupt):
		code = "internal"
	}
	return &apiError{Status: codeStatus[code], Code: code, Message: err.Error(), Details: details}
}

// writeError sends err as an error envelope. Internal errors are logged; their
// text is still returned because the operator is usually the user.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := catalog(err)
	if ae.Status >= 500 && ae.Code != "unavailable" {
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if ae.Code == "unavailable" {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, ae.Status, map[string]any{"error": ae})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		slog.Error("encode answer", "err", err)
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"internal","message":"encode answer"}}`)
	}
	writeBody(w, status, append(body, '\n'))
}
