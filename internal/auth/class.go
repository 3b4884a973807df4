package auth

import "fmt"

// Class is an access class: what a listener allows, what a key's scope
// grants and what a route needs. The zero value allows nothing.
type Class string

// Access classes, from least to most. Each includes the ones before it.
const (
	ClassRead  Class = "read"  // recall: get, list, search, export, the change feed
	ClassWrite Class = "write" // consolidate: read, plus every mutation
	ClassAdmin Class = "admin" // write, plus managing API keys
)

// Classes lists the access classes from least to most.
var Classes = []Class{ClassRead, ClassWrite, ClassAdmin}

func (c Class) rank() int {
	switch c {
	case ClassRead:
		return 1
	case ClassWrite:
		return 2
	case ClassAdmin:
		return 3
	}
	return 0
}

// Valid reports whether c is one of the three classes.
func (c Class) Valid() bool { return c.rank() > 0 }

// Allows reports whether holding c is enough for what needs need. An invalid
// class allows nothing and is allowed by nothing.
func (c Class) Allows(need Class) bool {
	return need.rank() > 0 && c.rank() >= need.rank()
}

// ParseClass parses "read", "write" or "admin".
func ParseClass(s string) (Class, error) {
	c := Class(s)
	if !c.Valid() {
		return "", fmt.Errorf("%w: class %q: want read, write or admin", ErrInvalid, s)
	}
	return c, nil
}
