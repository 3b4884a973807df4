package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error codes the server puts in the "code" field of its error envelope, with
// the HTTP status each one comes with.
const (
	CodeInvalidArgument      = "invalid_argument"       // 400
	CodeUnauthenticated      = "unauthenticated"        // 401
	CodePermissionDenied     = "permission_denied"      // 403
	CodeNotFound             = "not_found"              // 404
	CodeConflict             = "conflict"               // 409
	CodePayloadTooLarge      = "payload_too_large"      // 413
	CodeUnsupportedMediaType = "unsupported_media_type" // 415
	CodeRateLimited          = "rate_limited"           // 429, with Retry-After
	CodeInternal             = "internal"               // 500
	CodeUnavailable          = "unavailable"            // 503
)

// codeStatus maps each code to its HTTP status. It fills in Error.Status for
// errors that arrive without one (a failed line of a batch search), and
// statusCode fills in Error.Code for answers without an envelope (a proxy's
// error page).
var codeStatus = map[string]int{
	CodeInvalidArgument:      http.StatusBadRequest,
	CodeUnauthenticated:      http.StatusUnauthorized,
	CodePermissionDenied:     http.StatusForbidden,
	CodeNotFound:             http.StatusNotFound,
	CodeConflict:             http.StatusConflict,
	CodePayloadTooLarge:      http.StatusRequestEntityTooLarge,
	CodeUnsupportedMediaType: http.StatusUnsupportedMediaType,
	CodeRateLimited:          http.StatusTooManyRequests,
	CodeInternal:             http.StatusInternalServerError,
	CodeUnavailable:          http.StatusServiceUnavailable,
}

func statusCode(status int) string {
	for code, s := range codeStatus {
		if s == status {
			return code
		}
	}
	return ""
}

// Error is an error answered by the server: a non-2xx HTTP status, or a failed
// line of a batch search. Use errors.As to get at it:
//
//	var herr *client.Error
//	if errors.As(err, &herr) && herr.Code == client.CodeRateLimited {
//		time.Sleep(herr.RetryAfter)
//	}
//
// Errors of the transport itself (refused connections, cancelled contexts) are
// not *Error; they satisfy errors.Is(err, context.DeadlineExceeded) and the like.
type Error struct {
	// Status is the HTTP status code. For a failed line of a batch search,
	// which has no status of its own, it is the status that goes with Code.
	Status int

	// Code is the machine-readable code, one of the Code constants or a code
	// added by a later server. If the answer had no error envelope (it came
	// from a proxy, say), Code is the one that goes with Status, or empty.
	Code string

	// Message is the human-readable explanation.
	Message string

	// Details holds the envelope's "details" object, if any. If the answer
	// was a JSON object without an envelope (as /readyz answers when the
	// server is not ready), Details holds that object.
	Details map[string]any

	// RetryAfter is the server's Retry-After header, or zero if it sent none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("hippo: ")
	if e.Code != "" {
		b.WriteString(e.Code)
	} else {
		b.WriteString("error")
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (%d)", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// IsNotFound reports whether err is, or wraps, an *Error saying that the
// collection or record does not exist.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Code == CodeNotFound || e.Status == http.StatusNotFound)
}

// IsConflict reports whether err is, or wraps, an *Error saying that the
// request conflicts with the current state, for example a collection that
// already exists with other settings.
func IsConflict(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Code == CodeConflict || e.Status == http.StatusConflict)
}

// errorBody is the inside of the envelope {"error": {...}}.
type errorBody struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

func (b *errorBody) toError(status int) *Error {
	if status == 0 {
		status = codeStatus[b.Code]
	}
	return &Error{Status: status, Code: b.Code, Message: b.Message, Details: b.Details}
}

// maxErrorBody bounds how much of an error answer is read: envelopes are small,
// and a misbehaving proxy must not make the client buffer a large page.
const maxErrorBody = 64 << 10

// responseError reads a non-2xx answer into an *Error. It does not close the
// body.
func responseError(resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e *Error
	var envelope struct {
		Error *errorBody `json:"error"`
	}
	if json.Unmarshal(body, &envelope) == nil && envelope.Error != nil {
		e = envelope.Error.toError(resp.StatusCode)
	} else {
		e = &Error{Status: resp.StatusCode, Code: statusCode(resp.StatusCode)}
		var object map[string]any
		if json.Unmarshal(body, &object) == nil {
			e.Details = object
		} else {
			e.Message = strings.TrimSpace(string(body))
			if len(e.Message) > 512 {
				e.Message = e.Message[:512] + "..."
			}
		}
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}

// parseRetryAfter parses a Retry-After value, either delay-seconds or an
// HTTP-date (RFC 9110, section 10.2.3), into a duration from now. It returns
// zero for an absent, malformed or past value.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if seconds, err := strconv.ParseInt(v, 10, 64); err == nil {
		if seconds <= 0 {
			return 0
		}
		const maxSeconds = int64(math.MaxInt64 / time.Second) // beyond, Duration overflows
		return time.Duration(min(seconds, maxSeconds)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
