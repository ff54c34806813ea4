package gateway

import (
	"net"
	"net/http"
	"strings"
)

// parseDomains splits a comma-separated domain list into lower-case host
// names.
func parseDomains(s string) []string {
	var out []string
	for d := range strings.SplitSeq(s, ",") {
		if d = strings.ToLower(strings.TrimSpace(d)); d != "" {
			out = append(out, strings.TrimSuffix(d, "."))
		}
	}
	return out
}

// bucketKey returns the bucket and key a request names. With a configured
// domain, a Host of "<bucket>.<domain>" is virtual-hosted style: the
// bucket comes from the host and the whole path is the key. Anything else
// is path-style. The signature covers the path as sent either way.
func (g *Gateway) bucketKey(r *http.Request) (bucket, key string) {
	if len(g.domains) > 0 {
		host := strings.ToLower(r.Host)
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.TrimSuffix(host, ".")
		for _, d := range g.domains {
			if b, ok := strings.CutSuffix(host, "."+d); ok && b != "" {
				return b, strings.TrimPrefix(r.URL.Path, "/")
			}
		}
	}
	return splitPath(r.URL.Path)
}
