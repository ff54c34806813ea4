package gateway

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// s3Codes is every S3 error code the gateway answers itself, with its HTTP
// status and the message S3 uses.
var s3Codes = map[string]struct {
	status  int
	message string
}{
	"AccessForbidden":              {http.StatusForbidden, "CORSResponse: This CORS request is not allowed."},
	"AccessDenied":                 {http.StatusForbidden, "Access Denied."},
	"BadRequest":                   {http.StatusBadRequest, "Bad Request."},
	"BadDigest":                    {http.StatusBadRequest, "The Content-MD5 or checksum you specified did not match what we received."},
	"EntityTooSmall":               {http.StatusBadRequest, "Your proposed upload is smaller than the minimum allowed object size."},
	"BucketAlreadyOwnedByYou":      {http.StatusConflict, "Your previous request to create the named bucket succeeded and you already own it."},
	"BucketNotEmpty":               {http.StatusConflict, "The bucket you tried to delete is not empty."},
	"EntityTooLarge":               {http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed object size."},
	"IncompleteBody":               {http.StatusBadRequest, "You did not provide the number of bytes specified by the Content-Length HTTP header."},
	"InternalError":                {http.StatusInternalServerError, "We encountered an internal error. Please try again."},
	"InvalidArgument":              {http.StatusBadRequest, "Invalid Argument."},
	"InvalidBucketName":            {http.StatusBadRequest, "The specified bucket is not valid."},
	"InvalidDigest":                {http.StatusBadRequest, "The Content-MD5 you specified is not valid."},
	"InvalidPart":                  {http.StatusBadRequest, "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag."},
	"InvalidPartOrder":             {http.StatusBadRequest, "The list of parts was not in ascending order. The parts list must be specified in order by part number."},
	"InvalidPartNumber":            {http.StatusRequestedRangeNotSatisfiable, "The requested partnumber is not satisfiable."},
	"InvalidRange":                 {http.StatusRequestedRangeNotSatisfiable, "The requested range is not satisfiable."},
	"InvalidTag":                   {http.StatusBadRequest, "The tag provided was not a valid tag."},
	"InvalidRequest":               {http.StatusBadRequest, "Invalid Request."},
	"KeyTooLongError":              {http.StatusBadRequest, "Your key is too long."},
	"MalformedXML":                 {http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema."},
	"MetadataTooLarge":             {http.StatusBadRequest, "Your metadata headers exceed the maximum allowed metadata size."},
	"MethodNotAllowed":             {http.StatusMethodNotAllowed, "The specified method is not allowed against this resource."},
	"MissingContentLength":         {http.StatusLengthRequired, "You must provide the Content-Length HTTP header."},
	"NoSuchBucket":                 {http.StatusNotFound, "The specified bucket does not exist."},
	"NoSuchKey":                    {http.StatusNotFound, "The specified key does not exist."},
	"NoSuchCORSConfiguration":      {http.StatusNotFound, "The CORS configuration does not exist."},
	"NoSuchTagSet":                 {http.StatusNotFound, "The TagSet does not exist."},
	"NoSuchUpload":                 {http.StatusNotFound, "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed."},
	"NotImplemented":               {http.StatusNotImplemented, "A header or query you provided implies functionality that is not implemented."},
	"OperationAborted":             {http.StatusConflict, "A conflicting conditional operation is currently in progress against this resource. Please try again."},
	"PreconditionFailed":           {http.StatusPreconditionFailed, "At least one of the pre-conditions you specified did not hold."},
	"RequestHeaderSectionTooLarge": {http.StatusBadRequest, "Your request header section exceeds the maximum allowed size."},
	"RequestTimeout":               {http.StatusBadRequest, "Your socket connection to the server was not read from or written to within the timeout period."},
	"ServiceUnavailable":           {http.StatusServiceUnavailable, "Not enough storage nodes are available to serve the request. Please try again."},

	// Versioning and lifecycle.
	"NoSuchVersion": {http.StatusNotFound, "The specified version does not exist."},
	"IllegalVersioningConfigurationException": {http.StatusBadRequest, "The versioning configuration specified in the request is invalid."},
	"NoSuchLifecycleConfiguration":            {http.StatusNotFound, "The lifecycle configuration does not exist."},
}

// SupersededMessage is the S3 error message of a write that lost a race
// with a concurrent write of its key (objects.ErrSuperseded). The error
// keeps the code and status of ServiceUnavailable, which SDKs retry; the
// message tells it from a shortfall of storage nodes. It says "not
// acknowledged", not "not applied": like any write that missed its
// quorum, one that reached a few nodes may still take effect.
const SupersededMessage = "A concurrent write of this key with a newer version won; this write was not acknowledged. Please try again."

// MapChangedMessage is the S3 error message of a write that nodes refused
// because the cluster map changed while it ran (objects.ErrMapChanged):
// its nodes hold a newer map than the write was made under. Like
// SupersededMessage it keeps ServiceUnavailable, which SDKs retry, and
// says that the nodes were not out; the gateway has the new map by then.
const MapChangedMessage = "The cluster map changed during this write; it was not acknowledged. Please try again."

// errorMap is the one table from Backend errors to S3 codes. Rows are tried
// in order: sentinels first, because they are more precise than the kind
// that wraps them.
var errorMap = []struct {
	is      error     // matched with errors.Is when non-nil
	kind    kerr.Kind // matched with kerr.KindOf otherwise
	code    string
	message string // empty: the code's default message
}{
	{is: objects.ErrNoSuchBucket, code: "NoSuchBucket"},
	{is: objects.ErrNoSuchKey, code: "NoSuchKey"},
	{is: objects.ErrNoSuchVersion, code: "NoSuchVersion"},
	{is: objects.ErrDeleteMarker, code: "MethodNotAllowed"},
	{is: objects.ErrNoSuchLifecycle, code: "NoSuchLifecycleConfiguration"},
	{is: objects.ErrBucketExists, code: "BucketAlreadyOwnedByYou"},
	{is: objects.ErrBucketNotEmpty, code: "BucketNotEmpty"},
	{is: objects.ErrIncompleteBody, code: "IncompleteBody"},
	{is: objects.ErrSuperseded, code: "ServiceUnavailable", message: SupersededMessage},
	{is: objects.ErrMapChanged, code: "ServiceUnavailable", message: MapChangedMessage},
	{is: objects.ErrQuorum, code: "ServiceUnavailable"},
	{is: objects.ErrInvalidRange, code: "InvalidRange"},
	{is: objects.ErrNoSuchUpload, code: "NoSuchUpload"},
	{is: objects.ErrInvalidPart, code: "InvalidPart"},
	{is: objects.ErrInvalidPartOrder, code: "InvalidPartOrder"},
	{is: objects.ErrEntityTooSmall, code: "EntityTooSmall"},
	{is: objects.ErrInvalidArgument, code: "InvalidArgument"},
	{is: context.DeadlineExceeded, code: "ServiceUnavailable"},
	{is: context.Canceled, code: "RequestTimeout"},
	{kind: kerr.NotExist, code: "NoSuchKey"},
	{kind: kerr.Exist, code: "BucketAlreadyOwnedByYou"},
	{kind: kerr.NotEmpty, code: "BucketNotEmpty"},
	{kind: kerr.Invalid, code: "InvalidArgument"},
	{kind: kerr.TooLarge, code: "EntityTooLarge"},
	{kind: kerr.Unauthorized, code: "AccessDenied"},
	{kind: kerr.Unavailable, code: "ServiceUnavailable"},
	{kind: kerr.Transient, code: "ServiceUnavailable"},
	{kind: kerr.Conflict, code: "OperationAborted"},
}

// apiError is an S3 error raised by the gateway itself.
type apiError struct {
	code    string
	message string // empty: the code's default message
}

func (e *apiError) Error() string {
	if e.message != "" {
		return e.code + ": " + e.message
	}
	return e.code
}

// s3Error returns an error that answers with code; msg overrides the
// code's default message when not empty.
func s3Error(code, msg string) error { return &apiError{code: code, message: msg} }

// s3Status resolves err to the S3 code, HTTP status and message to send.
// Anything unknown is an InternalError.
func s3Status(err error) (code string, status int, message string) {
	var ae *apiError
	var se *sigv4.Error
	switch {
	case errors.As(err, &ae):
		code, message = ae.code, ae.message
	case errors.As(err, &se):
		status := se.Status
		if status < 400 || status > 599 {
			status = http.StatusForbidden
		}
		return se.Code, status, se.Message
	default:
		code = "InternalError"
		kind := kerr.KindOf(err)
		for _, row := range errorMap {
			if (row.is != nil && errors.Is(err, row.is)) || (row.is == nil && kind == row.kind) {
				code, message = row.code, row.message
				break
			}
		}
	}
	info, ok := s3Codes[code]
	if !ok {
		info = s3Codes["InternalError"]
	}
	if message == "" {
		message = info.message
	}
	return code, info.status, message
}

// errorBody is the S3 XML error document.
type errorBody struct {
	XMLName    xml.Name `xml:"Error"`
	Code       string
	Message    string
	BucketName string `xml:",omitempty"`
	Key        string `xml:",omitempty"`
	Resource   string
	RequestID  string `xml:"RequestId"`
}

// fail answers the request with err as an S3 error and records err for the
// request log. HEAD answers carry no body.
func (g *Gateway) fail(c *gin.Context, err error) {
	_ = c.Error(err)
	code, status, message := s3Status(err)
	if c.Request.Method == http.MethodHead {
		c.Status(status)
		return
	}
	bucket, key := g.bucketKey(c.Request)
	body := errorBody{
		Code:      code,
		Message:   message,
		Resource:  c.Request.URL.Path,
		RequestID: c.Writer.Header().Get(hdrRequestID),
	}
	switch code {
	case "NoSuchBucket", "BucketNotEmpty", "BucketAlreadyOwnedByYou", "InvalidBucketName":
		body.BucketName = bucket
	case "NoSuchKey":
		body.Key = key
	}
	writeXML(c, status, body)
}

// writeXML answers with v as an XML document.
func writeXML(c *gin.Context, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		// Only a programming error in the response types can get here.
		_ = c.Error(err)
		c.Status(http.StatusInternalServerError)
		return
	}
	c.Data(status, "application/xml", append([]byte(xml.Header), b...))
}
