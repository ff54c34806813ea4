package gateway

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
)

type copyObjectResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyObjectResult"`
	LastModified string
	ETag         string
	checksumXML
}

// parseCopySource parses x-amz-copy-source: "[/]bucket/key", URL-encoded,
// optionally followed by "?versionId=null" (the only version an
// unversioned bucket has).
func parseCopySource(v string, maxKey int) (bucket, key string, err error) {
	src, query, _ := strings.Cut(v, "?")
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return "", "", s3Error("InvalidArgument", "Invalid copy source query.")
		}
		if q.Has("versionId") && q.Get("versionId") == "" {
			return "", "", s3Error("InvalidArgument", "Version id cannot be the empty string.")
		}
	}
	src, err = url.PathUnescape(src)
	if err != nil {
		return "", "", s3Error("InvalidArgument", "Invalid copy source encoding.")
	}
	bucket, key, _ = strings.Cut(strings.TrimPrefix(src, "/"), "/")
	if key == "" || !validBucketName(bucket) {
		return "", "", s3Error("InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")
	}
	if err := checkKey(key, maxKey); err != nil {
		return "", "", err
	}
	return bucket, key, nil
}

// openCopySource opens the object x-amz-copy-source names and checks the
// x-amz-copy-source-if-* conditions against it; a failed one is
// PreconditionFailed, whichever it is, as in S3.
func (g *Gateway) openCopySource(c *gin.Context, source string) (obj objects.Object, bucket, key string, err error) {
	bucket, key, err = parseCopySource(source, g.cfg.MaxKeyLength)
	if err != nil {
		return nil, "", "", err
	}
	if id := copySourceVersion(source); id != "" {
		var vb VersionedBackend
		var ok bool
		if vb, ok = g.cfg.Backend.(VersionedBackend); !ok && id != "null" {
			return nil, "", "", s3Error("NotImplemented", "Kintsugi does not implement versionId with this backend.")
		}
		if ok {
			obj, err = vb.OpenObjectVersion(c.Request.Context(), bucket, key, id)
			if errors.Is(err, objects.ErrDeleteMarker) {
				// S3 answers a marker as the copy source 400.
				err = s3Error("InvalidRequest", "The source of a copy request may not specifically refer to a delete marker by version id.")
			}
		} else {
			obj, err = g.cfg.Backend.OpenObject(c.Request.Context(), bucket, key)
		}
	} else {
		obj, err = g.cfg.Backend.OpenObject(c.Request.Context(), bucket, key)
	}
	if err != nil {
		return nil, "", "", err
	}
	cond := make(http.Header)
	for _, name := range []string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if v := c.Request.Header.Get("X-Amz-Copy-Source-" + name); v != "" {
			cond.Set(name, v)
		}
	}
	info := obj.Info()
	if checkConditions(cond, info.ETag, info.Modified) != 0 {
		return nil, "", "", s3Error("PreconditionFailed", "")
	}
	return obj, bucket, key, nil
}

// errCopyDone unblocks a copy's source stream once the destination
// stopped reading.
var errCopyDone = errors.New("gateway: copy destination is done")

// streamCopy feeds bytes [off, off+n) of src to put through a pipe, so a
// server-side copy holds no more than the object protocol's few stripes.
// A failure of the source is reported in preference to what the
// destination made of the broken stream.
func streamCopy(ctx context.Context, src objects.Object, off, n int64, put func(ctx context.Context, body io.Reader) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := src.WriteRange(ctx, pw, off, n)
		pw.CloseWithError(err)
		done <- err
	}()
	err := put(ctx, pr)
	pr.CloseWithError(errCopyDone)
	cancel()
	if rerr := <-done; err != nil && rerr != nil && !errors.Is(rerr, errCopyDone) && !errors.Is(rerr, context.Canceled) {
		return rerr
	}
	return err
}

// copyDirective reads a COPY/REPLACE directive header; COPY by default.
func copyDirective(h http.Header, name, what string) (string, error) {
	switch d := strings.ToUpper(h.Get(name)); d {
	case "":
		return "COPY", nil
	case "COPY", "REPLACE":
		return d, nil
	}
	return "", s3Error("InvalidArgument", "Unknown "+what+" directive.")
}

// copyObject serves CopyObject: the source is streamed through the object
// protocol into a new version of the destination, on the server.
func (g *Gateway) copyObject(c *gin.Context, bucket, key, source string) {
	r := c.Request
	directive, err := copyDirective(r.Header, "X-Amz-Metadata-Directive", "metadata")
	if err != nil {
		g.fail(c, err)
		return
	}
	tagDirective, err := copyDirective(r.Header, "X-Amz-Tagging-Directive", "tagging")
	if err != nil {
		g.fail(c, err)
		return
	}
	var tags string
	if tagDirective == "REPLACE" {
		if tags, err = headerTags(r.Header); err != nil {
			g.fail(c, err)
			return
		}
	}
	obj, srcBucket, srcKey, err := g.openCopySource(c, source)
	if err != nil {
		g.fail(c, err)
		return
	}
	info := obj.Info()
	// Copying a version onto its own key is how S3 clients restore it.
	if srcBucket == bucket && srcKey == key && directive == "COPY" && copySourceVersion(source) == "" {
		g.fail(c, s3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."))
		return
	}
	if info.Size > g.cfg.MaxObjectSize {
		g.fail(c, s3Error("InvalidRequest", "The specified copy source is larger than the maximum allowable size for a copy source: "+strconv.FormatInt(g.cfg.MaxObjectSize, 10)))
		return
	}
	ct, meta, hdrs := info.ContentType, info.UserMeta, info.Headers
	if tagDirective == "COPY" {
		tags = info.Tagging
	}
	if directive == "REPLACE" {
		if meta, err = userMeta(r.Header, g.cfg.MaxUserMetaBytes); err != nil {
			g.fail(c, err)
			return
		}
		hdrs = storedHeaders(r.Header)
		if ct = r.Header.Get("Content-Type"); ct == "" {
			ct = defaultContentType
		}
	}
	sums := wholeChecksums(info.Checksums)
	var out objects.ObjectInfo
	err = streamCopy(r.Context(), obj, 0, info.Size, func(ctx context.Context, body io.Reader) error {
		var err error
		out, err = g.cfg.Backend.PutObject(ctx, objects.PutInput{
			Bucket:      bucket,
			Key:         key,
			Size:        info.Size,
			Body:        body,
			ContentType: ct,
			UserMeta:    meta,
			Headers:     hdrs,
			Tagging:     tags,
			Checksums:   func() map[string]string { return sums },
		})
		return err
	})
	if err != nil {
		g.fail(c, err)
		return
	}
	if info.Versioned {
		c.Header("x-amz-copy-source-version-id", info.VersionID)
	}
	setVersionHeader(c.Writer.Header(), out)
	writeXML(c, http.StatusOK, copyObjectResult{
		LastModified: xmlTime(out.Modified),
		ETag:         quoteETag(out.ETag),
		checksumXML:  toChecksumXML(out.Checksums),
	})
}

// wholeChecksums are the checksums of a source that describe a copy of
// it as well: whole-object ones, not a multipart source's composite ones.
func wholeChecksums(all map[string]string) map[string]string {
	var sums map[string]string
	for alg, v := range all {
		if !strings.Contains(v, "-") {
			if sums == nil {
				sums = make(map[string]string)
			}
			sums[alg] = v
		}
	}
	return sums
}

// parseCopyRange parses x-amz-copy-source-range ("bytes=first-last", both
// required) against a source of size bytes.
func parseCopyRange(v string, size int64) (off, n int64, err error) {
	spec, ok := strings.CutPrefix(v, "bytes=")
	first, last, ok2 := strings.Cut(spec, "-")
	a, ok3 := parseDigits(first)
	b, ok4 := parseDigits(last)
	if !ok || !ok2 || !ok3 || !ok4 || b < a {
		return 0, 0, s3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
	}
	if b >= size {
		return 0, 0, s3Error("InvalidRange", "Range specified is not valid for source object of size: "+strconv.FormatInt(size, 10))
	}
	return a, b - a + 1, nil
}

// uploadPartCopy serves UploadPartCopy: a part made of a range of an
// existing object, copied on the server.
func (g *Gateway) uploadPartCopy(c *gin.Context, bucket, key string, q url.Values, source string) {
	r := c.Request
	num, err := parsePartNumber(q.Get("partNumber"))
	if err != nil {
		g.fail(c, err)
		return
	}
	obj, _, _, err := g.openCopySource(c, source)
	if err != nil {
		g.fail(c, err)
		return
	}
	info := obj.Info()
	off, n := int64(0), info.Size
	if v := r.Header.Get("X-Amz-Copy-Source-Range"); v != "" {
		if off, n, err = parseCopyRange(v, info.Size); err != nil {
			g.fail(c, err)
			return
		}
	}
	if n > g.cfg.MaxObjectSize {
		g.fail(c, s3Error("EntityTooLarge", ""))
		return
	}
	var part objects.PartInfo
	err = streamCopy(r.Context(), obj, off, n, func(ctx context.Context, body io.Reader) error {
		var err error
		part, err = g.cfg.Backend.PutPart(ctx, objects.PartInput{
			Bucket: bucket, Key: key, UploadID: q.Get("uploadId"), Number: num, Size: n, Body: body,
		})
		return err
	})
	if err != nil {
		g.fail(c, err)
		return
	}
	writeXML(c, http.StatusOK, copyPartResult{LastModified: xmlTime(part.Modified), ETag: quoteETag(part.ETag)})
}
