package gateway

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
)

// VersionedBackend is what a Backend needs for S3 versioning;
// *objects.Store has it. A Backend without it answers versioned requests
// NotImplemented, as before versioning existed.
type VersionedBackend interface {
	PutBucketVersioning(ctx context.Context, bucket, state string) error
	GetBucketVersioning(ctx context.Context, bucket string) (string, error)
	OpenObjectVersion(ctx context.Context, bucket, key, id string) (objects.Object, error)
	StatObjectVersion(ctx context.Context, bucket, key, id string) (objects.ObjectInfo, error)
	DeleteObjectMarked(ctx context.Context, bucket, key string) (objects.DeleteResult, error)
	DeleteObjectVersion(ctx context.Context, bucket, key, id string) (objects.DeleteResult, error)
	ListObjectVersions(ctx context.Context, bucket string, opts objects.VersionListOptions) (objects.VersionList, error)
}

var _ VersionedBackend = (*objects.Store)(nil)

// versioned returns the Backend's versioning, or answers NotImplemented.
func (g *Gateway) versioned(c *gin.Context) (VersionedBackend, bool) {
	vb, ok := g.cfg.Backend.(VersionedBackend)
	if !ok {
		g.notImplemented(c, "versioning")
	}
	return vb, ok
}

// setVersionHeader names the version an answer is about, in a bucket that
// has (or had) versioning, as S3 does.
func setVersionHeader(h http.Header, info objects.ObjectInfo) {
	if info.Versioned && info.VersionID != "" {
		h.Set("x-amz-version-id", info.VersionID)
	}
}

type versioningXML struct {
	XMLName   xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ VersioningConfiguration"`
	Status    string   `xml:",omitempty"`
	MfaDelete string   `xml:",omitempty"`
}

func (g *Gateway) putBucketVersioning(c *gin.Context, bucket string, p *sigv4.Result) {
	vb, ok := g.versioned(c)
	if !ok {
		return
	}
	body, err := readSmall(p, maxConfigBody)
	if err != nil {
		g.fail(c, err)
		return
	}
	var cfg versioningXML
	if err := xml.Unmarshal(body, &cfg); err != nil {
		g.fail(c, s3Error("MalformedXML", ""))
		return
	}
	switch {
	case cfg.MfaDelete == "Enabled":
		g.fail(c, s3Error("NotImplemented", "Kintsugi does not implement MFA delete."))
		return
	case cfg.MfaDelete != "" && cfg.MfaDelete != "Disabled":
		g.fail(c, s3Error("IllegalVersioningConfigurationException", ""))
		return
	case cfg.Status != "Enabled" && cfg.Status != "Suspended":
		g.fail(c, s3Error("IllegalVersioningConfigurationException", ""))
		return
	}
	if err := vb.PutBucketVersioning(c.Request.Context(), bucket, cfg.Status); err != nil {
		g.fail(c, err)
		return
	}
	c.Status(http.StatusOK)
}

// getBucketVersioningState answers GetBucketVersioning: no Status at all
// for a bucket never versioned, as S3 does.
func (g *Gateway) getBucketVersioningState(c *gin.Context, bucket string, vb VersionedBackend) {
	state, err := vb.GetBucketVersioning(c.Request.Context(), bucket)
	if err != nil {
		g.fail(c, err)
		return
	}
	writeXML(c, http.StatusOK, versioningXML{Status: state})
}

// openVersion is getObject's read of one version: the object (nil for
// HEAD) and its description. A delete marker is answered 405 with
// x-amz-delete-marker, as S3 does.
func (g *Gateway) openVersion(c *gin.Context, bucket, key, id string, head bool) (objects.Object, objects.ObjectInfo, error) {
	ctx := c.Request.Context()
	vb, ok := g.cfg.Backend.(VersionedBackend)
	switch {
	case !ok && id != "null":
		return nil, objects.ObjectInfo{}, s3Error("NotImplemented", "Kintsugi does not implement versionId with this backend.")
	case !ok && head:
		info, err := g.cfg.Backend.StatObject(ctx, bucket, key)
		return nil, info, err
	case !ok:
		obj, err := g.cfg.Backend.OpenObject(ctx, bucket, key)
		if err != nil {
			return nil, objects.ObjectInfo{}, err
		}
		return obj, obj.Info(), nil
	}
	var obj objects.Object
	var info objects.ObjectInfo
	var err error
	if head {
		info, err = vb.StatObjectVersion(ctx, bucket, key, id)
	} else if obj, err = vb.OpenObjectVersion(ctx, bucket, key, id); obj != nil {
		info = obj.Info()
	}
	if errors.Is(err, objects.ErrDeleteMarker) {
		h := c.Writer.Header()
		h.Set("x-amz-delete-marker", "true")
		h.Set("x-amz-version-id", id)
		h.Set("Last-Modified", info.Modified.UTC().Format(http.TimeFormat))
	}
	return obj, info, err
}

// deleteObjectVersioned serves DELETE on an object of a versioning
// Backend: with versionId it deletes that version for good, else it
// writes a delete marker in a versioned bucket.
func (g *Gateway) deleteObjectVersioned(c *gin.Context, vb VersionedBackend, bucket, key string) {
	ctx := c.Request.Context()
	var res objects.DeleteResult
	var err error
	if id := c.Request.URL.Query().Get("versionId"); c.Request.URL.Query().Has("versionId") {
		res, err = vb.DeleteObjectVersion(ctx, bucket, key, id)
	} else {
		res, err = vb.DeleteObjectMarked(ctx, bucket, key)
	}
	if err != nil && !errors.Is(err, objects.ErrNoSuchKey) {
		g.fail(c, err)
		return
	}
	h := c.Writer.Header()
	if res.VersionID != "" {
		h.Set("x-amz-version-id", res.VersionID)
	}
	if res.DeleteMarker {
		h.Set("x-amz-delete-marker", "true")
	}
	c.Status(http.StatusNoContent)
}

// deleteOne is one object of a multi-object delete, versioned or not.
func (g *Gateway) deleteOne(ctx context.Context, bucket, key, id string) (objects.DeleteResult, error) {
	vb, ok := g.cfg.Backend.(VersionedBackend)
	switch {
	case !ok && id != "" && id != "null":
		return objects.DeleteResult{}, s3Error("NotImplemented", "Kintsugi does not implement versionId with this backend.")
	case !ok:
		return objects.DeleteResult{}, g.cfg.Backend.DeleteObject(ctx, bucket, key)
	case id != "":
		return vb.DeleteObjectVersion(ctx, bucket, key, id)
	}
	return vb.DeleteObjectMarked(ctx, bucket, key)
}

// copySourceVersion returns the versionId x-amz-copy-source names, or "".
func copySourceVersion(v string) string {
	_, query, _ := strings.Cut(v, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return ""
	}
	return q.Get("versionId")
}

type listVersionsResult struct {
	XMLName             xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListVersionsResult"`
	Name                string
	Prefix              string
	KeyMarker           string
	VersionIdMarker     string
	NextKeyMarker       string `xml:",omitempty"`
	NextVersionIdMarker string `xml:",omitempty"`
	MaxKeys             int
	Delimiter           string `xml:",omitempty"`
	EncodingType        string `xml:",omitempty"`
	IsTruncated         bool
	// Entries are versionXML and deleteMarkerXML values, in listing
	// order: S3 interleaves the two.
	Entries        []any
	CommonPrefixes []prefixXML
}

type versionXML struct {
	XMLName      xml.Name `xml:"Version"`
	Key          string
	VersionId    string
	IsLatest     bool
	LastModified string
	ETag         string
	Size         int64
	StorageClass string
}

type deleteMarkerXML struct {
	XMLName      xml.Name `xml:"DeleteMarker"`
	Key          string
	VersionId    string
	IsLatest     bool
	LastModified string
}

// listObjectVersions serves GET /bucket?versions.
func (g *Gateway) listObjectVersions(c *gin.Context, bucket string, q url.Values) {
	vb, ok := g.versioned(c)
	if !ok {
		return
	}
	lp, err := parseListParams(q)
	if err != nil {
		g.fail(c, err)
		return
	}
	keyMarker, versionMarker := q.Get("key-marker"), q.Get("version-id-marker")
	if versionMarker != "" && keyMarker == "" {
		g.fail(c, s3Error("InvalidArgument", "A version-id marker cannot be specified without a key marker."))
		return
	}
	out := listVersionsResult{
		Name:            bucket,
		Prefix:          lp.encode(lp.prefix),
		KeyMarker:       lp.encode(keyMarker),
		VersionIdMarker: versionMarker,
		MaxKeys:         lp.maxKeys,
		Delimiter:       lp.encode(lp.delimiter),
		EncodingType:    lp.encodingType,
	}
	if lp.maxKeys == 0 {
		if _, err := g.cfg.Backend.HeadBucket(c.Request.Context(), bucket); err != nil {
			g.fail(c, err)
			return
		}
		writeXML(c, http.StatusOK, out)
		return
	}
	res, err := vb.ListObjectVersions(c.Request.Context(), bucket, objects.VersionListOptions{
		Prefix:        lp.prefix,
		Delimiter:     lp.delimiter,
		KeyMarker:     keyMarker,
		VersionMarker: versionMarker,
		MaxKeys:       lp.maxKeys,
	})
	if err != nil {
		g.fail(c, err)
		return
	}
	out.IsTruncated = res.Truncated
	if res.Truncated {
		out.NextKeyMarker, out.NextVersionIdMarker = lp.encode(res.NextKeyMarker), res.NextVersionMarker
	}
	for _, v := range res.Versions {
		if v.DeleteMarker {
			out.Entries = append(out.Entries, deleteMarkerXML{
				Key: lp.encode(v.Key), VersionId: v.VersionID, IsLatest: v.IsLatest, LastModified: xmlTime(v.Modified),
			})
			continue
		}
		out.Entries = append(out.Entries, versionXML{
			Key: lp.encode(v.Key), VersionId: v.VersionID, IsLatest: v.IsLatest, LastModified: xmlTime(v.Modified),
			ETag: quoteETag(v.ETag), Size: v.Size, StorageClass: "STANDARD",
		})
	}
	for _, p := range res.CommonPrefixes {
		out.CommonPrefixes = append(out.CommonPrefixes, prefixXML{Prefix: lp.encode(p)})
	}
	writeXML(c, http.StatusOK, out)
}
