package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

const (
	algorithm       = "AWS4-HMAC-SHA256"
	serviceS3       = "s3"
	terminator      = "aws4_request"
	amzDateFormat   = "20060102T150405Z"
	scopeDateFormat = "20060102"

	// emptySHA256 is the hex SHA-256 of no bytes: the payload hash of an
	// empty body and the fixed "previous payload" line of a chunk signature.
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// credential is the parsed Credential field: AK/date/region/service/aws4_request.
type credential struct {
	accessKey string
	date      string // yyyymmdd
	region    string
}

// scope is the credential scope: date/region/s3/aws4_request.
func (c credential) scope() string {
	return c.date + "/" + c.region + "/" + serviceS3 + "/" + terminator
}

// signingKey derives the SigV4 key for c's scope from secret.
func signingKey(secret string, c credential) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), c.date)
	k = hmacSHA256(k, c.region)
	k = hmacSHA256(k, serviceS3)
	return hmacSHA256(k, terminator)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// sign returns the hex signature of stringToSign.
func sign(key []byte, stringToSign string) string {
	return hex.EncodeToString(hmacSHA256(key, stringToSign))
}

// sameSignature compares two hex signatures in constant time.
func sameSignature(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// stringToSign builds the SigV4 string to sign for a canonical request.
func stringToSign(amzDate, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// canonicalRequest builds the canonical request of r for the given
// canonical URI, signed header names and payload hash.
func canonicalRequest(r *http.Request, uri, query string, signedHeaders []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(uri)
	b.WriteByte('\n')
	b.WriteString(query)
	b.WriteByte('\n')
	for _, name := range signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(headerValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// headerValue is the canonical value of the lower-case header name: all its
// values, each trimmed with inner runs of spaces folded, joined by commas.
// net/http moves Host, and for a chunked body Transfer-Encoding and
// Content-Length, out of r.Header; they are recovered from r's fields.
func headerValue(r *http.Request, name string) string {
	vals := r.Header.Values(name)
	if len(vals) == 0 {
		switch name {
		case "host":
			if r.Host != "" {
				return foldSpaces(r.Host)
			}
			return foldSpaces(r.URL.Host)
		case "content-length":
			if r.ContentLength >= 0 {
				return strconv.FormatInt(r.ContentLength, 10)
			}
		case "transfer-encoding":
			return strings.Join(r.TransferEncoding, ",")
		}
		return ""
	}
	if len(vals) == 1 {
		return foldSpaces(vals[0])
	}
	folded := make([]string, len(vals))
	for i, v := range vals {
		folded[i] = foldSpaces(v)
	}
	return strings.Join(folded, ",")
}

// foldSpaces trims s and folds each run of spaces inside it to one space.
func foldSpaces(s string) string {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

// canonicalURIs returns the canonical URI forms a client may have signed
// for u, most likely first. S3 encodes the decoded path once, each byte
// outside the unreserved set as %XX, keeping '/'. Clients that send a
// differently escaped path sign what they sent, so the path as received is
// the second candidate. Both decode to the same u.Path, which is what the
// server acts on, so accepting either grants nothing the signer did not.
func canonicalURIs(u *url.URL) []string {
	strict := uriEncode(u.Path, true)
	if strict == "" {
		strict = "/"
	}
	raw := u.EscapedPath()
	if raw == "" || raw == strict {
		return []string{strict}
	}
	return []string{strict, raw}
}

// canonicalQuery builds the canonical query string from a raw query:
// every name and value decoded then re-encoded with uriEncode, sorted by
// name then value. X-Amz-Signature is left out of presigned requests.
func canonicalQuery(raw string, presigned bool) string {
	if raw == "" {
		return ""
	}
	type pair struct{ k, v string }
	var pairs []pair
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, v = queryUnescape(k), queryUnescape(v)
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		pairs = append(pairs, pair{uriEncode(k, false), uriEncode(v, false)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// queryUnescape decodes s as net/url does for r.URL.Query ('+' is a space),
// so the signature covers the parameters the server will act on. A
// malformed escape is kept as sent; net/url drops such a pair.
func queryUnescape(s string) string {
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// uriEncode escapes every byte of s outside A-Z a-z 0-9 - _ . ~ as %XX with
// upper-case hex, keeping '/' when keepSlash is set.
func uriEncode(s string, keepSlash bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i], keepSlash) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexDigits = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c, keepSlash) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return string(b)
}

func unreserved(c byte, keepSlash bool) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '-', c == '_', c == '.', c == '~':
		return true
	case c == '/':
		return keepSlash
	}
	return false
}
