package client

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestErrorDecoding(t *testing.T) {
	f := func(status int, header http.Header, body string, want *Error) {
		t.Helper()
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			for key, values := range header {
				w.Header()[key] = values
			}
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		})
		addr, _ := startServer(t, "tcp", mux)
		c := newTestClient(t, addr)
		_, err := c.GetCollection(t.Context(), "docs")
		var got *Error
		if !errors.As(err, &got) {
			t.Fatalf("status %d: err = %#v, want an *Error", status, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("status %d, body %q:\n got %#v\nwant %#v", status, body, got, want)
		}
	}
	f(404, nil, `{"error":{"code":"not_found","message":"collection \"docs\" not found","details":{"collection":"docs"}}}`,
		&Error{Status: 404, Code: CodeNotFound, Message: `collection "docs" not found`, Details: map[string]any{"collection": "docs"}})
	f(429, http.Header{"Retry-After": {"3"}}, `{"error":{"code":"rate_limited","message":"slow down"}}`,
		&Error{Status: 429, Code: CodeRateLimited, Message: "slow down", RetryAfter: 3 * time.Second})
	f(418, nil, `{"error":{"code":"teapot","message":"a code from a later server"}}`,
		&Error{Status: 418, Code: "teapot", Message: "a code from a later server"})
	// Not an envelope: from a proxy, say.
	f(502, http.Header{"Content-Type": {"text/html"}}, "<html>Bad Gateway</html>\n",
		&Error{Status: 502, Message: "<html>Bad Gateway</html>"})
	f(503, nil, "", &Error{Status: 503, Code: CodeUnavailable, Message: "Service Unavailable"})
	f(500, nil, `{"status":"broken"}`, &Error{Status: 500, Code: CodeInternal, Message: "Internal Server Error", Details: map[string]any{"status": "broken"}})
	f(400, nil, strings.Repeat("x", 1000), &Error{Status: 400, Code: CodeInvalidArgument, Message: strings.Repeat("x", 512) + "..."})
}

func TestErrorString(t *testing.T) {
	f := func(e *Error, want string) {
		t.Helper()
		if got := e.Error(); got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	}
	f(&Error{Status: 404, Code: "not_found", Message: "no such record"}, "hippo: not_found (404): no such record")
	f(&Error{Status: 502, Message: "Bad Gateway"}, "hippo: error (502): Bad Gateway")
	f(&Error{Code: "internal"}, "hippo: internal")
}

func TestIsHelpers(t *testing.T) {
	notFound := fmt.Errorf("get: %w", &Error{Status: 404, Code: CodeNotFound})
	conflict := &Error{Code: CodeConflict, Status: 409}
	if !IsNotFound(notFound) || IsConflict(notFound) {
		t.Error("wrapped not_found")
	}
	if !IsConflict(conflict) || IsNotFound(conflict) {
		t.Error("conflict")
	}
	if IsNotFound(errors.New("not found")) || IsNotFound(nil) || IsConflict(nil) {
		t.Error("a plain error or nil")
	}
	// A batch line's error has no status of its own.
	lineErr := (&errorBody{Code: CodeNotFound}).toError(0)
	if lineErr.Status != 404 || !IsNotFound(lineErr) {
		t.Errorf("line error = %#v", lineErr)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	f := func(v string, want time.Duration) {
		t.Helper()
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
	f("", 0)
	f("0", 0)
	f("-5", 0)
	f(" 120 ", 2*time.Minute)
	f("99999999999999999999", 0) // overflows int64: malformed
	f("9999999999999", time.Duration(1<<63-1)/time.Second*time.Second)
	f("Sun, 01 Jun 2025 12:00:30 GMT", 30*time.Second)
	f("Sun, 01 Jun 2025 11:00:00 GMT", 0)
	f("soon", 0)
}
