// Package kerr is the project's error vocabulary: an error carries the
// operation that failed (Op), what kind of failure it is (Kind) and the
// underlying cause. Callers branch on Kind (or errors.Is with a sentinel), never
// on message text. The gateway maps Kind to an HTTP status in one table.
//
// kerr imports only the standard library and must never import another
// package of the project.
package kerr

import (
	"errors"
	"strings"
)

// Kind classifies an error so that callers can react without parsing text.
type Kind uint8

// Kinds. The numeric values are not persisted anywhere, but append only to
// keep logs comparable across versions.
const (
	Other        Kind = iota // unclassified
	NotExist                 // object, bucket, version or shard does not exist
	Exist                    // already exists (e.g. bucket)
	Invalid                  // caller's input is malformed or out of range
	Corrupt                  // stored data failed its checksum
	Unavailable              // not enough nodes to serve (quorum lost)
	Transient                // may succeed if retried (timeout, conn reset)
	Internal                 // a bug or broken invariant
	Conflict                 // a concurrent change won (e.g. CAS on a map epoch)
	NotEmpty                 // bucket not empty
	Unauthorized             // missing or bad credentials
	TooLarge                 // entity too large / disk full
)

var kindNames = [...]string{
	Other: "other", NotExist: "not exist", Exist: "exists", Invalid: "invalid",
	Corrupt: "corrupt", Unavailable: "unavailable", Transient: "transient",
	Internal: "internal", Conflict: "conflict", NotEmpty: "not empty",
	Unauthorized: "unauthorized", TooLarge: "too large",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Error is the project's structured error.
type Error struct {
	Op   string // operation, e.g. "storagenode.Stage"
	Kind Kind
	Err  error // underlying cause; may be nil
}

// E builds an *Error from its arguments in any order: a string is the Op,
// a Kind is the Kind, an error is the cause. A nested *Error's Kind is
// inherited when none is given.
func E(op string, args ...any) error {
	e := &Error{Op: op}
	for _, a := range args {
		switch a := a.(type) {
		case Kind:
			e.Kind = a
		case error:
			e.Err = a
		case string:
			e.Err = errors.New(a)
		}
	}
	if e.Kind == Other {
		e.Kind = KindOf(e.Err)
	}
	return e
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Kind != Other {
		b.WriteString(": ")
		b.WriteString(e.Kind.String())
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// KindOf reports the Kind of the outermost *Error in err's chain that has
// one, or Other.
func KindOf(err error) Kind {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return Other
		}
		if e.Kind != Other {
			return e.Kind
		}
		err = e.Err
	}
	return Other
}

// Is reports whether err has kind k.
func Is(k Kind, err error) bool { return KindOf(err) == k }
