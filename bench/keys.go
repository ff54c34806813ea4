package bench

import (
	"strconv"
	"strings"
)

// ObjectKey names object number n of size bytes: prefix + "obj-<n>-<size>".
// The size is in the name so that a later run (get, delete, mixed) can
// regenerate and verify the content from the key and the seed alone,
// without a record of what was written.
func ObjectKey(prefix string, n uint64, size int64) string {
	b := make([]byte, 0, len(prefix)+4+20+1+20)
	b = append(b, prefix...)
	b = append(b, "obj-"...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, size, 10)
	return string(b)
}

// ParseObjectKey is the inverse of ObjectKey: it reports the object number
// and size of key if key is exactly what ObjectKey(prefix, n, size) returns,
// and ok false for any other key (so foreign objects under the prefix are
// left alone).
func ParseObjectKey(prefix, key string) (n uint64, size int64, ok bool) {
	rest, ok := strings.CutPrefix(key, prefix+"obj-")
	if !ok {
		return 0, 0, false
	}
	ns, ss, ok := strings.Cut(rest, "-")
	if !ok || !canonicalDecimal(ns) || !canonicalDecimal(ss) {
		return 0, 0, false
	}
	n, err := strconv.ParseUint(ns, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	size, err = strconv.ParseInt(ss, 10, 64)
	if err != nil || size > maxSize {
		return 0, 0, false
	}
	return n, size, true
}

// canonicalDecimal reports whether s is a decimal number without sign or
// leading zeros, the only form ObjectKey writes.
func canonicalDecimal(s string) bool {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
