package sigv4

import (
	"io"
	"net/http"
	"strings"
	"time"
)

// DefaultMaxSkew is how far a request's date may be from the server's
// clock when Verifier.MaxSkew is zero.
const DefaultMaxSkew = 15 * time.Minute

// Verifier authenticates S3 requests signed with AWS Signature Version 4.
// A Verifier is safe for concurrent use once set up; its fields must not
// change while it is in use.
type Verifier struct {
	Creds Credentials
	// Region must match the credential scope's region. Empty accepts any
	// region, as S3-compatible servers without a configured region do.
	Region  string
	MaxSkew time.Duration    // default DefaultMaxSkew (RequestTimeTooSkewed beyond it)
	Now     func() time.Time // nil = time.Now
}

// Result is an authenticated request.
type Result struct {
	AccessKey string
	// Body yields the object payload: the raw body, or the decoded aws-chunked
	// stream. Reading it to EOF performs the deferred checks (x-amz-content-sha256
	// of a signed payload, each chunk signature, trailing x-amz-checksum-*); a
	// failed check is returned from Read as an *Error instead of io.EOF, so the
	// object protocol aborts the write.
	Body io.Reader
	// Length is the payload length: x-amz-decoded-content-length for aws-chunked,
	// else r.ContentLength (-1 unknown).
	Length int64
	// Trailers holds trailing checksum values once Body hit EOF (e.g. "x-amz-checksum-crc32" -> base64).
	// It is never nil; read it with Trailers.Get.
	Trailers http.Header
}

// Verify authenticates r (Authorization header or presigned query) and
// returns its payload reader. Anonymous requests -> *Error AccessDenied.
//
// Every error Verify returns, and every error Result.Body returns for a
// failed check, is an *Error; an error from reading r.Body itself (a
// dropped connection, http.MaxBytesReader) passes through unchanged.
// Verify does not read r.Body; the returned Result.Body does.
func (v *Verifier) Verify(r *http.Request) (*Result, error) {
	auth := r.Header.Get("Authorization")
	q := r.URL.Query()
	presigned := isPresigned(q)
	switch {
	case auth != "" && presigned:
		return nil, newError(codeInvalidArgument, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.")
	case auth != "":
		return v.verifyHeader(r, auth)
	case presigned:
		p, err := parsePresign(q)
		if err != nil {
			return nil, err
		}
		return v.verifyPresigned(r, p)
	case q.Has("AWSAccessKeyId") && q.Has("Signature"):
		return nil, newError(codeInvalidRequest, "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
	}
	return nil, newError(codeAccessDenied, "Access Denied. Anonymous access is not allowed.")
}

// Unauthenticated returns the payload of a request without checking any
// signature (used only when the gateway runs with auth disabled): it still
// decodes aws-chunked bodies and checks x-amz-content-sha256 when it is a hex digest.
// Content-MD5 and x-amz-checksum-* headers and trailers are checked too.
func Unauthenticated(r *http.Request) (*Result, error) {
	mode, digest := payloadUnsigned, []byte(nil)
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" {
		var err *Error
		if mode, digest, err = parsePayloadMode(h); err != nil {
			return nil, err
		}
	}
	res, err := newResult(r, mode, digest, nil)
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (v *Verifier) verifyHeader(r *http.Request, auth string) (*Result, error) {
	p, err := parseAuthorization(auth)
	if err != nil {
		return nil, err
	}
	if err := v.checkRegion(p.cred, codeHeaderMalformed, "The authorization header is malformed; "); err != nil {
		return nil, err
	}
	secret, err := v.secret(p.cred.accessKey)
	if err != nil {
		return nil, err
	}
	amzDate, t, err := requestTime(r)
	if err != nil {
		return nil, err
	}
	if p.cred.date != t.Format(scopeDateFormat) {
		return nil, newError(codeHeaderMalformed, "The authorization header is malformed; Invalid credential date. Date is not the same as X-Amz-Date.")
	}
	if skew := v.now().Sub(t).Abs(); skew > v.maxSkew() {
		return nil, newError(codeRequestTimeTooSkewed, "The difference between the request time and the current time is too large.")
	}
	payloadHash := r.Header.Get("X-Amz-Content-Sha256")
	if payloadHash == "" {
		// S3 requires the header; a bodiless request signed by a generic
		// SigV4 client still carries the empty body's hash.
		if r.ContentLength != 0 {
			return nil, newError(codeInvalidRequest, "Missing required header for this request: x-amz-content-sha256")
		}
		payloadHash = emptySHA256
	}
	mode, digest, err := parsePayloadMode(payloadHash)
	if err != nil {
		return nil, err
	}
	if err := checkSignedAmzHeaders(r.Header, p.signedHeaders); err != nil {
		return nil, err
	}
	key := signingKey(secret, p.cred)
	if !signatureMatches(r, p, key, amzDate, payloadHash, false) {
		return nil, newError(codeSignatureDoesNotMatch, msgSignatureDoesNotMatch)
	}
	var signer *chunkSigner
	if mode == payloadSigned || mode == payloadSignedTrailer {
		signer = &chunkSigner{key: key, amzDate: amzDate, scope: p.cred.scope(), prev: p.signature}
	}
	res, err := newResult(r, mode, digest, signer)
	if err != nil {
		return nil, err
	}
	res.AccessKey = p.cred.accessKey
	return res, nil
}

func (v *Verifier) verifyPresigned(r *http.Request, p presignParams) (*Result, error) {
	if err := v.checkRegion(p.cred, codeQueryParametersError, "Error parsing the X-Amz-Credential parameter; "); err != nil {
		return nil, err
	}
	secret, err := v.secret(p.cred.accessKey)
	if err != nil {
		return nil, err
	}
	if p.cred.date != p.date.Format(scopeDateFormat) {
		return nil, newError(codeQueryParametersError, "Invalid credential date. Date is not the same as X-Amz-Date.")
	}
	now := v.now()
	if p.date.Sub(now) > v.maxSkew() {
		return nil, newError(codeRequestTimeTooSkewed, "The difference between the request time and the current time is too large.")
	}
	if now.After(p.date.Add(p.expires)) {
		return nil, newError(codeAccessDenied, "Request has expired")
	}
	// A presigned URL is signed before its body exists, so the canonical
	// request carries UNSIGNED-PAYLOAD unless the URL itself names a hash.
	payloadHash := r.URL.Query().Get("X-Amz-Content-Sha256")
	if payloadHash == "" {
		payloadHash = unsignedPayload
	}
	bodyHash := payloadHash
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && payloadHash == unsignedPayload {
		bodyHash = h
	}
	mode, digest, err := parsePayloadMode(bodyHash)
	if err != nil {
		return nil, err
	}
	if mode == payloadSigned || mode == payloadSignedTrailer {
		return nil, newError(codeInvalidRequest, "Presigned requests cannot use signed aws-chunked payloads.")
	}
	if err := checkSignedAmzHeaders(r.Header, p.signedHeaders); err != nil {
		return nil, err
	}
	key := signingKey(secret, p.cred)
	if !signatureMatches(r, p.authParams, key, p.amzDate, payloadHash, true) {
		return nil, newError(codeSignatureDoesNotMatch, msgSignatureDoesNotMatch)
	}
	res, err := newResult(r, mode, digest, nil)
	if err != nil {
		return nil, err
	}
	res.AccessKey = p.cred.accessKey
	return res, nil
}

// signatureMatches reports whether p.signature signs r under key, trying
// each canonical URI form r's path may have been signed with.
func signatureMatches(r *http.Request, p authParams, key []byte, amzDate, payloadHash string, presigned bool) bool {
	query := canonicalQuery(r.URL.RawQuery, presigned)
	scope := p.cred.scope()
	for _, uri := range canonicalURIs(r.URL) {
		cr := canonicalRequest(r, uri, query, p.signedHeaders, payloadHash)
		if sameSignature(p.signature, sign(key, stringToSign(amzDate, scope, cr))) {
			return true
		}
	}
	return false
}

func (v *Verifier) checkRegion(c credential, code, prefix string) *Error {
	if v.Region == "" || c.region == v.Region {
		return nil
	}
	return newError(code, prefix+"the region '"+c.region+"' is wrong; expecting '"+v.Region+"'")
}

func (v *Verifier) secret(accessKey string) (string, *Error) {
	if v.Creds != nil {
		if s, ok := v.Creds.Secret(accessKey); ok {
			return s, nil
		}
	}
	return "", newError(codeInvalidAccessKeyID, "The AWS Access Key Id you provided does not exist in our records.")
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) maxSkew() time.Duration {
	if v.MaxSkew > 0 {
		return v.MaxSkew
	}
	return DefaultMaxSkew
}

// requestTime returns the request's signing time from X-Amz-Date, or else
// Date, as it appears in the string to sign and parsed.
func requestTime(r *http.Request) (string, time.Time, *Error) {
	bad := newError(codeAccessDenied, "AWS authentication requires a valid Date or x-amz-date header")
	if s := r.Header.Get("X-Amz-Date"); s != "" {
		t, err := time.Parse(amzDateFormat, s)
		if err != nil {
			return "", time.Time{}, bad
		}
		return s, t, nil
	}
	if s := r.Header.Get("Date"); s != "" {
		t, err := http.ParseTime(s)
		if err != nil {
			return "", time.Time{}, bad
		}
		t = t.UTC()
		return t.Format(amzDateFormat), t, nil
	}
	return "", time.Time{}, bad
}

// checkSignedAmzHeaders refuses x-amz-* headers that are present but not
// signed: S3 acts on them (x-amz-copy-source, x-amz-meta-*, ...), so an
// unsigned one would let whoever holds a signed request change what it
// does. The exempt ones are covered by the signature some other way or only
// describe the framing that is verified anyway.
func checkSignedAmzHeaders(h http.Header, signed []string) *Error {
	for name := range h {
		lower := strings.ToLower(name)
		if !strings.HasPrefix(lower, "x-amz-") {
			continue
		}
		switch lower {
		case "x-amz-content-sha256", "x-amz-date", "x-amz-decoded-content-length", "x-amz-trailer":
			continue
		}
		if !contains(signed, lower) {
			return newError(codeAccessDenied, "There were headers present in the request which were not signed: "+lower)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
