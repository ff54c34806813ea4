package gateway

import (
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/gin-gonic/gin"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
)

// subresources are the S3 query parameters that select an API other than
// the plain bucket or object one. A request carrying one the gateway does
// not serve is answered NotImplemented rather than silently treated as the
// plain operation (a PUT ?tagging must not overwrite the object).
var subresources = map[string]bool{
	"accelerate": true, "acl": true, "analytics": true, "attributes": true,
	"cors": true, "delete": true, "encryption": true, "intelligent-tiering": true,
	"inventory": true, "legal-hold": true, "lifecycle": true, "location": true,
	"logging": true, "metadataTable": true, "metrics": true, "notification": true,
	"object-lock": true, "ownershipControls": true, "partNumber": true,
	"policy": true, "policyStatus": true, "publicAccessBlock": true,
	"replication": true, "requestPayment": true, "restore": true,
	"retention": true, "select": true, "session": true, "tagging": true,
	"torrent": true, "uploadId": true, "uploads": true, "versionId": true,
	"versioning": true, "versions": true, "website": true,
}

// unsupported returns the first subresource in q that is not in allowed, or
// "". versionId=null names the only version an unversioned bucket has.
func unsupported(q url.Values, allowed ...string) string {
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if !subresources[name] {
			continue
		}
		if name == "versionId" && q.Get(name) == "null" {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok {
			return name
		}
	}
	return ""
}

// serveS3 authenticates an S3 request (path-style, or virtual-hosted when
// a domain is configured) and dispatches it on method, bucket, key and
// sub-resource.
func (g *Gateway) serveS3(c *gin.Context) {
	r := c.Request
	bucket, key := g.bucketKey(r)
	q := r.URL.Query()

	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodOptions:
	default:
		g.fail(c, s3Error("MethodNotAllowed", ""))
		return
	}
	if headerBytes(r) > g.cfg.MaxHeaderBytes {
		c.Header("Connection", "close")
		g.fail(c, s3Error("RequestHeaderSectionTooLarge", ""))
		return
	}
	if r.Method == http.MethodOptions {
		// A CORS preflight: browsers send it unsigned.
		if bucket == "" || !validBucketName(bucket) {
			g.fail(c, s3Error("MethodNotAllowed", ""))
			return
		}
		g.preflight(c, bucket)
		return
	}
	defer g.guardSlowClient(c)()
	g.corsHeaders(c, bucket)
	payload, err := g.authenticate(r)
	if err != nil {
		g.fail(c, err)
		return
	}
	if bucket == "" {
		if key != "" {
			g.fail(c, s3Error("InvalidBucketName", ""))
			return
		}
		if r.Method != http.MethodGet {
			g.fail(c, s3Error("MethodNotAllowed", ""))
			return
		}
		g.listBuckets(c, payload)
		return
	}
	if !validBucketName(bucket) {
		g.fail(c, s3Error("InvalidBucketName", ""))
		return
	}
	if key == "" {
		g.serveBucket(c, bucket, q, payload)
		return
	}
	if err := checkKey(key, g.cfg.MaxKeyLength); err != nil {
		g.fail(c, err)
		return
	}
	g.serveObject(c, bucket, key, q, payload)
}

// authenticate verifies the request's signature, or only decodes its
// payload when authentication is disabled.
func (g *Gateway) authenticate(r *http.Request) (*sigv4.Result, error) {
	if g.cfg.Auth == nil {
		return sigv4.Unauthenticated(r)
	}
	return g.cfg.Auth.Verify(r)
}

func (g *Gateway) serveBucket(c *gin.Context, bucket string, q url.Values, p *sigv4.Result) {
	switch c.Request.Method {
	case http.MethodGet:
		if sub := unsupported(q, "location", "acl", "uploads", "versioning", "versions", "lifecycle", "tagging", "cors"); sub != "" {
			g.notImplemented(c, sub)
			return
		}
		switch {
		case q.Has("tagging"):
			g.getBucketTagging(c, bucket)
		case q.Has("cors"):
			g.getBucketCors(c, bucket)
		case q.Has("location"):
			g.getBucketLocation(c, bucket)
		case q.Has("acl"):
			g.getBucketACL(c, bucket, p)
		case q.Has("uploads"):
			g.listUploads(c, bucket, q, p)
		case q.Has("versioning"):
			g.getBucketVersioning(c, bucket)
		case q.Has("versions"):
			g.listObjectVersions(c, bucket, q)
		case q.Has("lifecycle"):
			g.getBucketLifecycle(c, bucket)
		case q.Get("list-type") == "2":
			g.listObjectsV2(c, bucket, q, p)
		default:
			g.listObjectsV1(c, bucket, q)
		}
	case http.MethodHead:
		g.headBucket(c, bucket)
	case http.MethodPut:
		if sub := unsupported(q, "tagging", "cors", "versioning", "lifecycle"); sub != "" {
			g.notImplemented(c, sub)
			return
		}
		switch {
		case q.Has("tagging"):
			g.putBucketTagging(c, bucket, p)
		case q.Has("cors"):
			g.putBucketCors(c, bucket, p)
		case q.Has("versioning"):
			g.putBucketVersioning(c, bucket, p)
		case q.Has("lifecycle"):
			g.putBucketLifecycle(c, bucket, p)
		default:
			g.createBucket(c, bucket, p)
		}
	case http.MethodDelete:
		if sub := unsupported(q, "tagging", "cors", "lifecycle"); sub != "" {
			g.notImplemented(c, sub)
			return
		}
		switch {
		case q.Has("tagging"):
			g.deleteBucketTagging(c, bucket)
		case q.Has("cors"):
			g.deleteBucketCors(c, bucket)
		case q.Has("lifecycle"):
			g.deleteBucketLifecycle(c, bucket)
		default:
			g.deleteBucket(c, bucket)
		}
	case http.MethodPost:
		if sub := unsupported(q, "delete"); sub != "" || !q.Has("delete") {
			g.notImplemented(c, sub)
			return
		}
		g.deleteObjects(c, bucket, p)
	}
}

func (g *Gateway) serveObject(c *gin.Context, bucket, key string, q url.Values, p *sigv4.Result) {
	r := c.Request
	copySource := r.Header.Get("X-Amz-Copy-Source")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		allowed := []string{"partNumber", "versionId"}
		if r.Method == http.MethodGet {
			allowed = append(allowed, "acl", "uploadId", "tagging")
		}
		if sub := unsupported(q, allowed...); sub != "" {
			g.notImplemented(c, sub)
			return
		}
		switch {
		case q.Has("uploadId"):
			g.listParts(c, bucket, key, q, p)
		case q.Has("acl"):
			g.getObjectACL(c, bucket, key, p)
		case q.Has("tagging"):
			g.getObjectTagging(c, bucket, key)
		default:
			g.getObject(c, bucket, key)
		}
	case http.MethodPut:
		allowed := []string{"partNumber", "uploadId", "tagging"}
		if q.Has("tagging") {
			allowed = append(allowed, "versionId")
		}
		if sub := unsupported(q, allowed...); sub != "" {
			g.notImplemented(c, sub)
			return
		}
		switch {
		case q.Has("tagging"):
			g.putObjectTagging(c, bucket, key, p)
		case q.Has("partNumber") != q.Has("uploadId"):
			g.fail(c, s3Error("InvalidRequest", "partNumber and uploadId must be given together."))
		case q.Has("uploadId") && copySource != "":
			g.uploadPartCopy(c, bucket, key, q, copySource)
		case q.Has("uploadId"):
			g.uploadPart(c, bucket, key, q, p)
		case copySource != "":
			g.copyObject(c, bucket, key, copySource)
		default:
			g.putObject(c, bucket, key, p)
		}
	case http.MethodDelete:
		if sub := unsupported(q, "uploadId", "tagging", "versionId"); sub != "" {
			g.notImplemented(c, sub)
			return
		}
		switch {
		case q.Has("uploadId"):
			g.abortUpload(c, bucket, key, q)
		case q.Has("tagging"):
			g.deleteObjectTagging(c, bucket, key)
		default:
			g.deleteObject(c, bucket, key)
		}
	case http.MethodPost:
		if sub := unsupported(q, "uploads", "uploadId"); sub != "" {
			g.notImplemented(c, sub)
			return
		}
		switch {
		case q.Has("uploads"):
			g.createUpload(c, bucket, key, p)
		case q.Has("uploadId"):
			g.completeUpload(c, bucket, key, q, p)
		default:
			g.fail(c, s3Error("MethodNotAllowed", ""))
		}
	}
}

func (g *Gateway) notImplemented(c *gin.Context, what string) {
	msg := ""
	if what != "" {
		msg = "Kintsugi does not implement " + what + " yet."
	}
	g.fail(c, s3Error("NotImplemented", msg))
}

// headerBytes is the size of the request line and headers as the client
// sent them, near enough.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + len("Host: \r\n") + len(r.Host)
	for name, vs := range r.Header {
		for _, v := range vs {
			n += len(name) + len(v) + 4
		}
	}
	return n
}
