package gateway

import (
	"net/http"
	"strings"
	"time"
)

// checkConditions evaluates the conditional headers of a GET or HEAD
// against the object's ETag (hex, unquoted) and modification time, in the
// order of RFC 9110 section 13.2.2, which is also what S3 does: If-Match,
// else If-Unmodified-Since; then If-None-Match, else If-Modified-Since. It
// returns 0 when the request should proceed, or 412 or 304. Unparsable
// dates are ignored.
func checkConditions(h http.Header, etag string, modified time.Time) int {
	modified = modified.Truncate(time.Second)
	if im := h.Get("If-Match"); im != "" {
		if !etagListMatches(im, etag) {
			return http.StatusPreconditionFailed
		}
	} else if t, ok := httpTime(h.Get("If-Unmodified-Since")); ok && modified.After(t) {
		return http.StatusPreconditionFailed
	}
	if inm := h.Get("If-None-Match"); inm != "" {
		if etagListMatches(inm, etag) {
			return http.StatusNotModified
		}
	} else if t, ok := httpTime(h.Get("If-Modified-Since")); ok && !modified.After(t) {
		return http.StatusNotModified
	}
	return 0
}

// etagListMatches reports whether a comma-separated If-Match or
// If-None-Match list names etag or is "*". Comparison is weak: a W/ prefix
// and the quotes are ignored, as S3 does.
func etagListMatches(list, etag string) bool {
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "*" {
			return true
		}
		item = strings.TrimPrefix(item, "W/")
		if strings.Trim(item, `"`) == etag {
			return true
		}
	}
	return false
}

func httpTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := http.ParseTime(s)
	return t, err == nil
}
