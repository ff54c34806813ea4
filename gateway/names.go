package gateway

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

// validBucketName reports whether name follows the S3 rules for general
// purpose buckets: 3 to 63 characters, dot-separated labels of lower-case
// letters, digits and hyphens that begin and end with a letter or digit,
// not an IPv4 address, and none of the prefixes and suffixes S3 reserves.
// The label rule is stricter than S3's minimum (it refuses "a-.b") so that
// every name also works as a DNS host name.
func validBucketName(name string) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	if addr, err := netip.ParseAddr(name); err == nil && addr.Is4() {
		return false
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	return true
}

// checkKey validates a non-empty object key. Keys are opaque names, so
// anything S3 accepts is accepted ("..", "//", "%", spaces) except bytes
// that cannot round-trip through XML listings or log lines: invalid UTF-8,
// C0 control characters and DEL.
func checkKey(key string, maxLen int) error {
	if len(key) > maxLen {
		return s3Error("KeyTooLongError", "")
	}
	if !utf8.ValidString(key) {
		return s3Error("InvalidArgument", "object key is not valid UTF-8")
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c == 0x7f {
			return s3Error("InvalidArgument", "object key contains control characters")
		}
	}
	return nil
}

// splitPath splits a decoded path-style URL path into bucket and key.
// "/b" and "/b/" both name bucket b with an empty key.
func splitPath(p string) (bucket, key string) {
	p = strings.TrimPrefix(p, "/")
	bucket, key, _ = strings.Cut(p, "/")
	return bucket, key
}
