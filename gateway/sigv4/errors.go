package sigv4

import "net/http"

// Error is an S3 authentication or payload error. Code is the S3 error code
// and Status the HTTP status to answer with. Message is safe to send to the
// client: it never holds a secret or an expected signature.
type Error struct {
	Code    string
	Message string
	Status  int
}

func (e *Error) Error() string { return "sigv4: " + e.Code + ": " + e.Message }

// S3 error codes this package returns.
const (
	codeAccessDenied          = "AccessDenied"
	codeInvalidAccessKeyID    = "InvalidAccessKeyId"
	codeSignatureDoesNotMatch = "SignatureDoesNotMatch"
	codeRequestTimeTooSkewed  = "RequestTimeTooSkewed"
	codeSHA256Mismatch        = "XAmzContentSHA256Mismatch"
	codeHeaderMalformed       = "AuthorizationHeaderMalformed"
	codeQueryParametersError  = "AuthorizationQueryParametersError"
	codeIncompleteBody        = "IncompleteBody"
	codeInvalidDigest         = "InvalidDigest"
	codeBadDigest             = "BadDigest"
	codeInvalidRequest        = "InvalidRequest"
	codeInvalidArgument       = "InvalidArgument"
)

const msgSignatureDoesNotMatch = "The request signature we calculated does not match the signature you provided. Check your key and signing method."

func newError(code, msg string) *Error {
	status := http.StatusBadRequest
	switch code {
	case codeAccessDenied, codeInvalidAccessKeyID, codeSignatureDoesNotMatch, codeRequestTimeTooSkewed:
		status = http.StatusForbidden
	}
	return &Error{Code: code, Message: msg, Status: status}
}
