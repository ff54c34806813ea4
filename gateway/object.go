package gateway

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
)

// defaultContentType is what S3 answers for an object stored without one.
const defaultContentType = "binary/octet-stream"

const metaPrefix = "X-Amz-Meta-"

// userMeta collects the x-amz-meta-* headers with lower-cased names. S3
// joins repeated headers with commas and limits names plus values to max
// bytes.
func userMeta(h http.Header, max int) (map[string]string, error) {
	var meta map[string]string
	total := 0
	for name, vs := range h {
		if len(name) <= len(metaPrefix) || !strings.EqualFold(name[:len(metaPrefix)], metaPrefix) {
			continue
		}
		if meta == nil {
			meta = make(map[string]string)
		}
		k := strings.ToLower(name[len(metaPrefix):])
		v := strings.Join(vs, ",")
		meta[k] = v
		total += len(k) + len(v)
	}
	if total > max {
		return nil, s3Error("MetadataTooLarge", "")
	}
	return meta, nil
}

// storedHeaderNames are the standard headers S3 stores with an object and
// sends back on GET and HEAD.
var storedHeaderNames = []string{"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires"}

// storedHeaders collects the storedHeaderNames a write sends. The
// aws-chunked content coding describes the request's framing, not the
// object, so S3 drops it.
func storedHeaders(h http.Header) map[string]string {
	var out map[string]string
	for _, name := range storedHeaderNames {
		v := h.Get(name)
		if name == "Content-Encoding" {
			v = withoutAWSChunked(v)
		}
		if v == "" {
			continue
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[name] = v
	}
	return out
}

func withoutAWSChunked(v string) string {
	var keep []string
	for _, c := range strings.Split(v, ",") {
		if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "aws-chunked") {
			keep = append(keep, c)
		}
	}
	return strings.Join(keep, ",")
}

func (g *Gateway) putObject(c *gin.Context, bucket, key string, p *sigv4.Result) {
	r := c.Request
	if err := g.checkLength(p); err != nil {
		g.fail(c, err)
		return
	}
	meta, err := userMeta(r.Header, g.cfg.MaxUserMetaBytes)
	if err != nil {
		g.fail(c, err)
		return
	}
	tags, err := headerTags(r.Header)
	if err != nil {
		g.fail(c, err)
		return
	}
	body := newPayload(p)
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = defaultContentType
	}
	info, err := g.cfg.Backend.PutObject(r.Context(), objects.PutInput{
		Bucket:      bucket,
		Key:         key,
		Size:        p.Length,
		Body:        body,
		ContentType: ct,
		UserMeta:    meta,
		Headers:     storedHeaders(r.Header),
		Tagging:     tags,
		Checksums:   verifiedChecksums(r.Header, p),
	})
	if err == nil {
		setVersionHeader(c.Writer.Header(), info)
		if info.Raised {
			// Not S3: tells tests and operators the object was
			// written with raised parity while some of its nodes
			// were down (docs/operations.md).
			c.Writer.Header().Set("X-Kintsugi-Raised", "1")
		}
	}
	g.stored(c, body, info.ETag, info.Checksums, err)
}

// checkLength refuses a body S3 refuses before reading it: of unknown
// length, or larger than an object may be.
func (g *Gateway) checkLength(p *sigv4.Result) error {
	switch {
	case p.Length < 0:
		return s3Error("MissingContentLength", "")
	case p.Length > g.cfg.MaxObjectSize:
		return s3Error("EntityTooLarge", "")
	}
	return nil
}

// stored answers a PUT of an object or a part: the error, the payload's
// own failure first (a bad signature or checksum explains a cut-off
// stream better than the backend can), or the ETag and the checksums the
// payload was verified against, echoed as S3 does.
func (g *Gateway) stored(c *gin.Context, body *payload, etag string, sums map[string]string, err error) {
	if err != nil {
		if perr := body.failure(); perr != nil {
			err = perr
		}
		g.fail(c, err)
		return
	}
	h := c.Writer.Header()
	h.Set("ETag", quoteETag(etag))
	echoChecksums(h, sums)
	c.Status(http.StatusOK)
}

func quoteETag(etag string) string { return `"` + etag + `"` }

// setObjectHeaders writes the representation headers of info.
func setObjectHeaders(h http.Header, info objects.ObjectInfo) {
	ct := info.ContentType
	if ct == "" {
		ct = defaultContentType
	}
	h.Set("Content-Type", ct)
	h.Set("ETag", quoteETag(info.ETag))
	h.Set("Last-Modified", info.Modified.UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	// Lower-case names, as S3 sends them: SDKs that do not fold case (boto3)
	// hand the names to users as they arrive.
	for k, v := range info.UserMeta {
		h["x-amz-meta-"+k] = []string{v}
	}
	for k, v := range info.Headers {
		h.Set(k, v)
	}
	if n := tagCount(info.Tagging); n > 0 {
		h.Set("x-amz-tagging-count", strconv.Itoa(n))
	}
}

// responseOverrides are the GET query parameters that replace a response
// header, as presigned download links use them.
var responseOverrides = [][2]string{
	{"response-cache-control", "Cache-Control"},
	{"response-content-disposition", "Content-Disposition"},
	{"response-content-encoding", "Content-Encoding"},
	{"response-content-language", "Content-Language"},
	{"response-content-type", "Content-Type"},
	{"response-expires", "Expires"},
}

// getObject serves GET and HEAD on an object.
func (g *Gateway) getObject(c *gin.Context, bucket, key string) {
	r := c.Request
	ctx := r.Context()
	head := r.Method == http.MethodHead
	var obj objects.Object
	var info objects.ObjectInfo
	var err error
	if q := r.URL.Query(); q.Has("versionId") {
		obj, info, err = g.openVersion(c, bucket, key, q.Get("versionId"), head)
	} else if head {
		info, err = g.cfg.Backend.StatObject(ctx, bucket, key)
	} else if obj, err = g.cfg.Backend.OpenObject(ctx, bucket, key); err == nil {
		info = obj.Info()
	}
	if me := (*objects.CurrentMarkerError)(nil); errors.As(err, &me) {
		c.Writer.Header().Set("x-amz-delete-marker", "true")
		setVersionHeader(c.Writer.Header(), me.Marker)
	}
	if err != nil {
		g.fail(c, err)
		return
	}

	h := c.Writer.Header()
	setObjectHeaders(h, info)
	setVersionHeader(h, info)
	switch checkConditions(r.Header, info.ETag, info.Modified) {
	case http.StatusNotModified:
		h.Del("Content-Type")
		c.Status(http.StatusNotModified)
		return
	case http.StatusPreconditionFailed:
		clearObjectHeaders(h)
		g.fail(c, s3Error("PreconditionFailed", ""))
		return
	}
	off, n, partial, err := parseRange(r.Header.Get("Range"), info.Size)
	if pn := r.URL.Query().Get("partNumber"); pn != "" && err == nil {
		if r.Header.Get("Range") != "" {
			err = s3Error("InvalidRequest", "Cannot specify both Range header and partNumber query parameter.")
		} else {
			off, n, partial, err = partRange(pn, info)
		}
		if err == nil && len(info.PartSizes) > 0 {
			h.Set("x-amz-mp-parts-count", strconv.Itoa(len(info.PartSizes)))
		}
	}
	if err != nil {
		clearObjectHeaders(h)
		h.Set("Content-Range", "bytes */"+strconv.FormatInt(info.Size, 10))
		g.fail(c, err)
		return
	}
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", "bytes "+strconv.FormatInt(off, 10)+"-"+
			strconv.FormatInt(off+n-1, 10)+"/"+strconv.FormatInt(info.Size, 10))
	}
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	if !partial && strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") {
		setChecksumHeaders(h, info.Checksums)
	}
	if !head {
		q := r.URL.Query()
		for _, o := range responseOverrides {
			if v := q.Get(o[0]); v != "" {
				h.Set(o[1], v)
			}
		}
	}
	c.Status(status)
	if head || n == 0 {
		return
	}

	w := &exactWriter{w: c.Writer, remain: n}
	err = obj.WriteRange(ctx, w, off, n)
	if err == nil && w.remain != 0 {
		err = errShortRange
	}
	if err == nil {
		return
	}
	if !c.Writer.Written() {
		// Nothing has been sent yet: the client can still get a proper
		// error instead of a broken body.
		clearObjectHeaders(h)
		g.fail(c, err)
		return
	}
	// The status line and some bytes are out; finishing the response
	// normally would hand the client a short body that looks complete.
	_ = c.Error(err)
	panic(http.ErrAbortHandler)
}

var errShortRange = errors.New("gateway: object wrote fewer bytes than its range")

// clearObjectHeaders removes what setObjectHeaders and getObject set, before
// an error answer replaces the object.
func clearObjectHeaders(h http.Header) {
	for name := range h {
		switch strings.ToLower(name) {
		case strings.ToLower(hdrRequestID), "server", "vary":
		default:
			if strings.HasPrefix(name, "Access-Control-") {
				continue // CORS answers errors too
			}
			delete(h, name) // not Del: user metadata names are not canonical
		}
	}
}

// exactWriter passes through at most remain bytes, so that a Backend bug can
// never send more than the Content-Length it was given.
type exactWriter struct {
	w      io.Writer
	remain int64
}

func (w *exactWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		// An empty write would commit the status line and rob a later
		// error of its chance to be a proper answer.
		return 0, nil
	}
	if int64(len(p)) > w.remain {
		return 0, errors.New("gateway: object wrote past its range")
	}
	n, err := w.w.Write(p)
	w.remain -= int64(n)
	return n, err
}

func (g *Gateway) deleteObject(c *gin.Context, bucket, key string) {
	if vb, ok := g.cfg.Backend.(VersionedBackend); ok {
		g.deleteObjectVersioned(c, vb, bucket, key)
		return
	}
	err := g.cfg.Backend.DeleteObject(c.Request.Context(), bucket, key)
	if err != nil && !errors.Is(err, objects.ErrNoSuchKey) {
		g.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// maxDeleteKeys is S3's limit on keys per multi-object delete.
const maxDeleteKeys = 1000

type deleteRequest struct {
	Quiet   bool
	Objects []struct {
		Key       string
		VersionID string `xml:"VersionId"`
	} `xml:"Object"`
}

type deleteResult struct {
	XMLName xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ DeleteResult"`
	Deleted []deletedXML   `xml:"Deleted"`
	Errors  []deleteErrXML `xml:"Error"`
}

type deletedXML struct {
	Key                   string
	VersionId             string `xml:",omitempty"`
	DeleteMarker          bool   `xml:",omitempty"`
	DeleteMarkerVersionId string `xml:",omitempty"`
}

type deleteErrXML struct {
	Key     string
	Code    string
	Message string
}

// parseDeleteRequest reads a multi-object delete document: 1 to
// maxDeleteKeys objects, else MalformedXML. Keys are checked one by one
// later, so that one bad key fails alone.
func parseDeleteRequest(body []byte) (deleteRequest, error) {
	var req deleteRequest
	if err := xml.Unmarshal(body, &req); err != nil || len(req.Objects) == 0 || len(req.Objects) > maxDeleteKeys {
		return deleteRequest{}, s3Error("MalformedXML", "")
	}
	return req, nil
}

// deleteObjects serves the multi-object delete (POST /bucket?delete) that
// recursive removes in the aws CLI and most SDKs use.
func (g *Gateway) deleteObjects(c *gin.Context, bucket string, p *sigv4.Result) {
	ctx := c.Request.Context()
	body, err := readSmall(p, 2*maxConfigBody)
	if err != nil {
		g.fail(c, err)
		return
	}
	req, err := parseDeleteRequest(body)
	if err != nil {
		g.fail(c, err)
		return
	}
	if _, err := g.cfg.Backend.HeadBucket(ctx, bucket); err != nil {
		g.fail(c, err)
		return
	}
	var res deleteResult
	for _, o := range req.Objects {
		err := checkKey(o.Key, g.cfg.MaxKeyLength)
		if err == nil && o.Key == "" {
			err = s3Error("InvalidArgument", "object key is empty")
		}
		var dr objects.DeleteResult
		if err == nil {
			dr, err = g.deleteOne(ctx, bucket, o.Key, o.VersionID)
		}
		if err != nil && !errors.Is(err, objects.ErrNoSuchKey) {
			_ = c.Error(err)
			code, _, msg := s3Status(err)
			res.Errors = append(res.Errors, deleteErrXML{Key: o.Key, Code: code, Message: msg})
			continue
		}
		if !req.Quiet {
			d := deletedXML{Key: o.Key, VersionId: o.VersionID, DeleteMarker: dr.DeleteMarker}
			if o.VersionID == "" && dr.DeleteMarker {
				d.DeleteMarkerVersionId = dr.VersionID
			}
			res.Deleted = append(res.Deleted, d)
		}
	}
	writeXML(c, http.StatusOK, res)
}
