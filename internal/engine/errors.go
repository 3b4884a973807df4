package engine

import (
	"errors"
	"fmt"
)

// Errors returned by the engine, grouped by what went wrong. The HTTP layer
// maps each to a status and code in one place (httpapi's error catalog).
var (
	// Input and state errors: the request is wrong or does not fit the data.
	ErrInvalid  = errors.New("hippo: invalid argument")
	ErrNotFound = errors.New("hippo: not found")
	ErrConflict = errors.New("hippo: conflict")
	ErrTooLarge = errors.New("hippo: payload too large")

	// Lifecycle errors: the engine cannot take the request now.
	ErrClosed      = errors.New("hippo: engine closed")
	ErrUnavailable = errors.New("hippo: unavailable")
)

// Error carries a machine-readable detail map along with a sentinel.
type Error struct {
	Kind    error // one of the sentinels above
	Message string
	Details map[string]any
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Kind }

func invalidf(format string, args ...any) error {
	return &Error{Kind: ErrInvalid, Message: fmt.Sprintf(format, args...)}
}

func tooLargef(format string, args ...any) error {
	return &Error{Kind: ErrTooLarge, Message: fmt.Sprintf(format, args...)}
}

func notFoundf(format string, args ...any) error {
	return &Error{Kind: ErrNotFound, Message: fmt.Sprintf(format, args...)}
}

func conflictf(format string, args ...any) error {
	return &Error{Kind: ErrConflict, Message: fmt.Sprintf(format, args...)}
}
