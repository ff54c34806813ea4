package sigv4

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// authParams is what an Authorization header or a presigned query claims.
type authParams struct {
	cred          credential
	signedHeaders []string // lower-case names in the order signed
	signature     string   // as sent: never empty, not necessarily well-formed
}

// presignParams adds the presigned query's own fields to authParams.
type presignParams struct {
	authParams
	amzDate string    // X-Amz-Date as sent
	date    time.Time // X-Amz-Date parsed
	expires time.Duration
}

// maxPresignExpiry is S3's limit on X-Amz-Expires: seven days.
const maxPresignExpiry = 7 * 24 * time.Hour

// parseAuthorization parses an Authorization header of the form
//
//	AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=<hex>
//
// Fields may be separated by "," or ", " and may come in any order.
func parseAuthorization(h string) (authParams, *Error) {
	malformed := func(msg string) (authParams, *Error) {
		return authParams{}, newError(codeHeaderMalformed, "The authorization header is malformed; "+msg)
	}
	rest, ok := strings.CutPrefix(h, algorithm)
	if !ok {
		if strings.HasPrefix(h, "AWS ") {
			return authParams{}, newError(codeInvalidRequest, "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
		}
		return malformed("the authorization algorithm is not supported; expecting " + algorithm + ".")
	}
	if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return malformed("expecting Credential, SignedHeaders and Signature.")
	}
	var cred, signed, sig string
	var seen [3]bool
	for field := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(field), "=")
		if !ok {
			return malformed("incorrect authorization header format.")
		}
		var i int
		switch k {
		case "Credential":
			i, cred = 0, v
		case "SignedHeaders":
			i, signed = 1, v
		case "Signature":
			i, sig = 2, v
		default:
			return malformed("unexpected field " + strconv.Quote(k) + ".")
		}
		if seen[i] {
			return malformed("field " + k + " appears more than once.")
		}
		seen[i] = true
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return malformed("expecting Credential, SignedHeaders and Signature.")
	}
	var p authParams
	var msg string
	if p.cred, msg = parseCredential(cred); msg != "" {
		return malformed(msg)
	}
	if p.signedHeaders, msg = parseSignedHeaders(signed); msg != "" {
		return malformed(msg)
	}
	// A signature of the wrong length or alphabet is checked like any
	// other and fails to match (SignatureDoesNotMatch, as S3 answers),
	// rather than being called malformed: only its absence is.
	if sig == "" {
		return malformed("the signature is empty.")
	}
	p.signature = sig
	return p, nil
}

// presignKeys are the query parameters a SigV4 presigned URL must carry.
var presignKeys = [...]string{
	"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date",
	"X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature",
}

// isPresigned reports whether q tries to authenticate by query string.
func isPresigned(q url.Values) bool {
	return q.Has("X-Amz-Algorithm") || q.Has("X-Amz-Credential") || q.Has("X-Amz-Signature")
}

// parsePresign parses the SigV4 parameters of a presigned query.
func parsePresign(q url.Values) (presignParams, *Error) {
	bad := func(msg string) (presignParams, *Error) {
		return presignParams{}, newError(codeQueryParametersError, msg)
	}
	for _, k := range presignKeys {
		switch len(q[k]) {
		case 0:
			return bad("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		case 1:
		default:
			return bad("Query parameter " + k + " appears more than once.")
		}
	}
	if q.Get("X-Amz-Algorithm") != algorithm {
		return bad("X-Amz-Algorithm only supports \"" + algorithm + "\".")
	}
	var p presignParams
	var msg string
	if p.cred, msg = parseCredential(q.Get("X-Amz-Credential")); msg != "" {
		return bad("Error parsing the X-Amz-Credential parameter; " + msg)
	}
	if p.signedHeaders, msg = parseSignedHeaders(q.Get("X-Amz-SignedHeaders")); msg != "" {
		return bad("Error parsing the X-Amz-SignedHeaders parameter; " + msg)
	}
	p.amzDate = q.Get("X-Amz-Date")
	t, err := time.Parse(amzDateFormat, p.amzDate)
	if err != nil {
		return bad("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\".")
	}
	p.date = t
	secs, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil || secs < 1 {
		return bad("X-Amz-Expires must be a positive integer number of seconds.")
	}
	if secs > int64(maxPresignExpiry/time.Second) {
		return bad("X-Amz-Expires must be less than a week (in seconds) that is 604800.")
	}
	p.expires = time.Duration(secs) * time.Second
	sig := q.Get("X-Amz-Signature")
	if sig == "" {
		return bad("X-Amz-Signature must not be empty.")
	}
	p.signature = sig
	return p, nil
}

// parseCredential parses AK/yyyymmdd/region/s3/aws4_request. The access
// key is everything before the last four fields. It returns a message
// describing the problem, or "".
func parseCredential(s string) (credential, string) {
	parts := strings.Split(s, "/")
	n := len(parts)
	if n < 5 {
		return credential{}, "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"."
	}
	c := credential{
		accessKey: strings.Join(parts[:n-4], "/"),
		date:      parts[n-4],
		region:    parts[n-3],
	}
	switch {
	case c.accessKey == "":
		return credential{}, "the access key is empty."
	case len(c.date) != len(scopeDateFormat) || !allDigits(c.date):
		return credential{}, "invalid credential date \"" + c.date + "\"."
	case c.region == "":
		return credential{}, "the region is empty."
	case parts[n-2] != serviceS3:
		return credential{}, "incorrect service \"" + parts[n-2] + "\"; this endpoint belongs to \"s3\"."
	case parts[n-1] != terminator:
		return credential{}, "incorrect terminal \"" + parts[n-1] + "\"; this endpoint uses \"aws4_request\"."
	}
	if _, err := time.Parse(scopeDateFormat, c.date); err != nil {
		return credential{}, "invalid credential date \"" + c.date + "\"."
	}
	return c, ""
}

// parseSignedHeaders splits a SignedHeaders list. Names must be lower case
// and host must be among them, as S3 requires.
func parseSignedHeaders(s string) ([]string, string) {
	if s == "" {
		return nil, "SignedHeaders is empty."
	}
	names := strings.Split(s, ";")
	host := false
	for _, name := range names {
		if name == "" {
			return nil, "SignedHeaders has an empty name."
		}
		for i := 0; i < len(name); i++ {
			if !headerNameByte(name[i]) {
				return nil, "SignedHeaders must hold lower-case header names."
			}
		}
		host = host || name == "host"
	}
	if !host {
		return nil, "SignedHeaders must include host."
	}
	return names, ""
}

// headerNameByte reports whether c may appear in a lower-case header name
// (an RFC 9110 token without upper-case letters).
func headerNameByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validSignature reports whether s has the form of a SigV4 signature: 64
// lower-case hex digits. Only aws-chunked framing requires it; the
// signatures of headers and presigned URLs are compared whatever they are.
func validSignature(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
