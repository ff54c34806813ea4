package gateway

import (
	"strconv"
	"strings"
)

// errRangeNotSatisfiable is returned by parseRange for a well-formed range
// that selects no byte of the object.
var errRangeNotSatisfiable = s3Error("InvalidRange", "")

// parseRange resolves a Range header against an object of size bytes. It
// follows S3: "bytes=a-b", "bytes=a-" and "bytes=-n" select bytes [off,
// off+length) with b clamped to the end; a header that is absent,
// malformed or asks for several ranges is ignored (partial is false and
// the whole object is served); a first byte at or beyond the end, or an
// empty suffix, is errRangeNotSatisfiable.
func parseRange(h string, size int64) (off, length int64, partial bool, err error) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, size, false, nil
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" {
		n, ok := parseDigits(last)
		if !ok {
			return 0, size, false, nil
		}
		if n == 0 || size == 0 {
			return 0, 0, false, errRangeNotSatisfiable
		}
		n = min(n, size)
		return size - n, n, true, nil
	}
	a, ok := parseDigits(first)
	if !ok {
		return 0, size, false, nil
	}
	b := int64(-1)
	if last != "" {
		if b, ok = parseDigits(last); !ok || b < a {
			return 0, size, false, nil
		}
	}
	if a >= size {
		return 0, 0, false, errRangeNotSatisfiable
	}
	if b < 0 || b >= size {
		b = size - 1
	}
	return a, b - a + 1, true, nil
}

// parseDigits parses a non-empty run of ASCII digits that fits an int64.
// strconv.ParseInt alone would also accept a sign.
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
