package gateway

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
)

// S3's limits on tag sets.
const (
	maxObjectTags  = 10
	maxBucketTags  = 50
	maxTagKeyLen   = 128 // Unicode characters
	maxTagValueLen = 256
)

type tag struct {
	Key   string
	Value string
}

// tagging is the document of Get/PutObjectTagging and Get/PutBucketTagging.
type tagging struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ Tagging"`
	TagSet  tagSetXML
}

type tagSetXML struct {
	Tags []tag `xml:"Tag"`
}

// taggingIn is tagging as a client sends it: TagSet is required, and the
// namespace is not (S3 accepts documents without it).
type taggingIn struct {
	XMLName xml.Name `xml:"Tagging"`
	TagSet  *struct {
		Tags []struct {
			Key   *string
			Value *string
		} `xml:"Tag"`
	}
}

// parseTagging reads a Tagging document and checks it against S3's rules
// for a set of at most max tags.
func parseTagging(body []byte, max int) ([]tag, error) {
	var in taggingIn
	if err := xml.Unmarshal(body, &in); err != nil || in.TagSet == nil {
		return nil, s3Error("MalformedXML", "")
	}
	tags := make([]tag, 0, len(in.TagSet.Tags))
	for _, t := range in.TagSet.Tags {
		if t.Key == nil || t.Value == nil {
			return nil, s3Error("MalformedXML", "")
		}
		tags = append(tags, tag{Key: *t.Key, Value: *t.Value})
	}
	if err := checkTags(tags, max); err != nil {
		return nil, err
	}
	return tags, nil
}

// readTagging reads the Tagging document of a request body.
func readTagging(p *sigv4.Result, max int) ([]tag, error) {
	body, err := readSmall(p, maxConfigBody)
	if err != nil {
		return nil, err
	}
	return parseTagging(body, max)
}

// checkTags applies S3's limits: at most max tags, unique keys of 1 to 128
// characters, values of up to 256, letters, digits, white space and
// "_.:/=+-@" only, and no keys in the reserved aws: namespace.
func checkTags(tags []tag, max int) error {
	if len(tags) > max {
		if max == maxBucketTags {
			return s3Error("BadRequest", "Bucket tag count cannot be greater than 50")
		}
		return s3Error("BadRequest", "Object tags cannot be greater than 10")
	}
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		switch {
		case t.Key == "" || !validTagText(t.Key):
			return s3Error("InvalidTag", "The TagKey you have provided is invalid")
		case utf8.RuneCountInString(t.Key) > maxTagKeyLen:
			return s3Error("InvalidTag", "The TagKey you have provided is too long, max 128")
		case !validTagText(t.Value):
			return s3Error("InvalidTag", "The TagValue you have provided is invalid")
		case utf8.RuneCountInString(t.Value) > maxTagValueLen:
			return s3Error("InvalidTag", "The TagValue you have provided is too long, max 256")
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return s3Error("InvalidTag", "Your TagKey cannot be prefixed with aws:")
		case seen[t.Key]:
			return s3Error("InvalidTag", "Cannot provide multiple Tags with the same key")
		}
		seen[t.Key] = true
	}
	return nil
}

func validTagText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsSpace(r) && !strings.ContainsRune("_.:/=+-@", r) {
			return false
		}
	}
	return true
}

// encodeTags is the stored form of a tag set: the x-amz-tagging encoding,
// in the client's order, with spaces as %20.
func encodeTags(tags []tag) string {
	var b strings.Builder
	for i, t := range tags {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(escapeTagText(t.Key))
		b.WriteByte('=')
		b.WriteString(escapeTagText(t.Value))
	}
	return b.String()
}

func escapeTagText(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// decodeTags parses an x-amz-tagging value (or the stored form): URL query
// encoding, no duplicate keys.
func decodeTags(v string) ([]tag, error) {
	if v == "" {
		return nil, nil
	}
	var tags []tag
	for _, kv := range strings.Split(v, "&") {
		k, val, _ := strings.Cut(kv, "=")
		k, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(val)
		if err1 != nil || err2 != nil {
			return nil, errBadTaggingHeader
		}
		tags = append(tags, tag{Key: k, Value: val})
	}
	return tags, nil
}

var errBadTaggingHeader = s3Error("InvalidArgument", "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")

// headerTags reads x-amz-tagging from a PUT, multipart initiate or copy:
// the stored form of the set, "" when absent or empty.
func headerTags(h http.Header) (string, error) {
	v := h.Get("X-Amz-Tagging")
	if v == "" {
		return "", nil
	}
	tags, err := decodeTags(v)
	if err != nil {
		return "", err
	}
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		if seen[t.Key] {
			return "", errBadTaggingHeader
		}
		seen[t.Key] = true
	}
	if err := checkTags(tags, maxObjectTags); err != nil {
		return "", err
	}
	return encodeTags(tags), nil
}

// tagCount is the number of tags in a stored tag set.
func tagCount(stored string) int {
	if stored == "" {
		return 0
	}
	return strings.Count(stored, "&") + 1
}

// storedTags decodes a stored set; the store holds only sets the gateway
// checked, so an error there is a bug worth an InternalError.
func storedTags(stored string) (tagging, error) {
	tags, err := decodeTags(stored)
	if err != nil {
		return tagging{}, errors.New("gateway: stored tag set does not decode: " + stored)
	}
	return tagging{TagSet: tagSetXML{Tags: tags}}, nil
}

// TaggingBackend changes the tag set of an existing version in place,
// writing no new version (see objects.Store.SetObjectTags); *objects.Store
// has it. A Backend without it answers Put/DeleteObjectTagging
// NotImplemented.
type TaggingBackend interface {
	SetObjectTags(ctx context.Context, bucket, key, id, tagging string) (objects.ObjectInfo, error)
}

var _ TaggingBackend = (*objects.Store)(nil)

// taggedVersion returns the version id a tagging request names: "" for
// the current version.
func taggedVersion(c *gin.Context) string {
	return c.Request.URL.Query().Get("versionId")
}

func (g *Gateway) getObjectTagging(c *gin.Context, bucket, key string) {
	ctx := c.Request.Context()
	var info objects.ObjectInfo
	var err error
	if id := taggedVersion(c); id != "" {
		_, info, err = g.openVersion(c, bucket, key, id, true)
	} else {
		info, err = g.cfg.Backend.StatObject(ctx, bucket, key)
	}
	if err != nil {
		g.fail(c, err)
		return
	}
	doc, err := storedTags(info.Tagging)
	if err != nil {
		g.fail(c, err)
		return
	}
	setVersionHeader(c.Writer.Header(), info)
	writeXML(c, http.StatusOK, doc)
}

func (g *Gateway) putObjectTagging(c *gin.Context, bucket, key string, p *sigv4.Result) {
	tags, err := readTagging(p, maxObjectTags)
	if err != nil {
		g.fail(c, err)
		return
	}
	g.setObjectTags(c, bucket, key, encodeTags(tags), http.StatusOK)
}

func (g *Gateway) deleteObjectTagging(c *gin.Context, bucket, key string) {
	g.setObjectTags(c, bucket, key, "", http.StatusNoContent)
}

// setObjectTags replaces the tag set of the version the request names and
// answers status, naming the version as S3 does.
func (g *Gateway) setObjectTags(c *gin.Context, bucket, key, stored string, status int) {
	tb, ok := g.cfg.Backend.(TaggingBackend)
	if !ok {
		g.notImplemented(c, "tagging of an existing object")
		return
	}
	info, err := tb.SetObjectTags(c.Request.Context(), bucket, key, taggedVersion(c), stored)
	if errors.Is(err, objects.ErrDeleteMarker) {
		c.Writer.Header().Set("x-amz-delete-marker", "true")
	}
	if err != nil {
		g.fail(c, err)
		return
	}
	setVersionHeader(c.Writer.Header(), info)
	c.Status(status)
}

func (g *Gateway) getBucketTagging(c *gin.Context, bucket string) {
	info, err := g.cfg.Backend.HeadBucket(c.Request.Context(), bucket)
	if err != nil {
		g.fail(c, err)
		return
	}
	if info.Config.Tagging == "" {
		g.fail(c, s3Error("NoSuchTagSet", ""))
		return
	}
	doc, err := storedTags(info.Config.Tagging)
	if err != nil {
		g.fail(c, err)
		return
	}
	writeXML(c, http.StatusOK, doc)
}

func (g *Gateway) putBucketTagging(c *gin.Context, bucket string, p *sigv4.Result) {
	tags, err := readTagging(p, maxBucketTags)
	if err != nil {
		g.fail(c, err)
		return
	}
	stored := encodeTags(tags)
	err = g.cfg.Backend.UpdateBucket(c.Request.Context(), bucket, func(cfg *objects.BucketConfig) { cfg.Tagging = stored })
	if err != nil {
		g.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (g *Gateway) deleteBucketTagging(c *gin.Context, bucket string) {
	err := g.cfg.Backend.UpdateBucket(c.Request.Context(), bucket, func(cfg *objects.BucketConfig) { cfg.Tagging = "" })
	if err != nil {
		g.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
