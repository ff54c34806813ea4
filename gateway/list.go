package gateway

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
)

// maxListKeys is S3's page size limit.
const maxListKeys = 1000

type objectXML struct {
	Key          string
	LastModified string
	ETag         string
	Size         int64
	Owner        *owner `xml:",omitempty"`
	StorageClass string
}

type prefixXML struct {
	Prefix string
}

type listV2Result struct {
	XMLName               xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name                  string
	Prefix                string
	Delimiter             string  `xml:",omitempty"`
	StartAfter            string  `xml:",omitempty"`
	ContinuationToken     *string `xml:",omitempty"`
	NextContinuationToken string  `xml:",omitempty"`
	KeyCount              int
	MaxKeys               int
	EncodingType          string `xml:",omitempty"`
	IsTruncated           bool
	Contents              []objectXML
	CommonPrefixes        []prefixXML
}

type listV1Result struct {
	XMLName        xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListBucketResult"`
	Name           string
	Prefix         string
	Marker         string
	NextMarker     string `xml:",omitempty"`
	Delimiter      string `xml:",omitempty"`
	MaxKeys        int
	EncodingType   string `xml:",omitempty"`
	IsTruncated    bool
	Contents       []objectXML
	CommonPrefixes []prefixXML
}

// listParams are the query parameters both listing versions share.
type listParams struct {
	prefix, delimiter string
	maxKeys           int
	encode            func(string) string // identity, or the encoding-type=url encoder
	encodingType      string
	owner             *owner // set on every entry: V2 with fetch-owner=true
}

func parseListParams(q url.Values) (listParams, error) {
	lp := listParams{
		prefix:    q.Get("prefix"),
		delimiter: q.Get("delimiter"),
		maxKeys:   maxListKeys,
		encode:    func(s string) string { return s },
	}
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return lp, s3Error("InvalidArgument", "Provided max-keys not an integer or within integer range")
		}
		lp.maxKeys = min(n, maxListKeys)
	}
	switch et := q.Get("encoding-type"); et {
	case "":
	case "url", "URL":
		lp.encodingType = "url"
		lp.encode = urlEncodeName
	default:
		return lp, s3Error("InvalidArgument", "Invalid Encoding Method specified in Request")
	}
	return lp, nil
}

// urlEncodeName encodes a key or prefix for encoding-type=url the way S3
// does: every byte but ASCII letters, digits and "-_.*/" is percent-encoded,
// so a space is "%20" (not "+", which clients that decode with path rules
// would keep) and a "+" is "%2B".
func urlEncodeName(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '*', c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// list runs one listing page, answering an empty page without asking the
// Backend when max-keys is 0 (the Backend reads 0 as the default).
func (g *Gateway) list(c *gin.Context, bucket string, lp listParams, after string) (objects.ListResult, error) {
	ctx := c.Request.Context()
	if lp.maxKeys == 0 {
		_, err := g.cfg.Backend.HeadBucket(ctx, bucket)
		return objects.ListResult{}, err
	}
	return g.cfg.Backend.ListObjects(ctx, bucket, objects.ListOptions{
		Prefix:    lp.prefix,
		Delimiter: lp.delimiter,
		After:     after,
		MaxKeys:   lp.maxKeys,
	})
}

func (lp listParams) entries(res objects.ListResult) ([]objectXML, []prefixXML) {
	contents := make([]objectXML, 0, len(res.Objects))
	for _, o := range res.Objects {
		contents = append(contents, objectXML{
			Key:          lp.encode(o.Key),
			LastModified: xmlTime(o.Modified),
			ETag:         quoteETag(o.ETag),
			Size:         o.Size,
			Owner:        lp.owner,
			StorageClass: "STANDARD",
		})
	}
	prefixes := make([]prefixXML, 0, len(res.CommonPrefixes))
	for _, p := range res.CommonPrefixes {
		prefixes = append(prefixes, prefixXML{Prefix: lp.encode(p)})
	}
	return contents, prefixes
}

// Continuation tokens are opaque to clients; inside they are the last key
// or common prefix of the previous page.
func encodeToken(after string) string { return base64.RawURLEncoding.EncodeToString([]byte(after)) }

func decodeToken(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) == 0 {
		return "", s3Error("InvalidArgument", "The continuation token provided is incorrect")
	}
	return string(b), nil
}

// echoToken is the ContinuationToken element of an answer: present, even
// empty, when the request had one.
func echoToken(tok string, has bool) *string {
	if !has {
		return nil
	}
	return &tok
}

func (g *Gateway) listObjectsV2(c *gin.Context, bucket string, q url.Values, p *sigv4.Result) {
	lp, err := parseListParams(q)
	if err != nil {
		g.fail(c, err)
		return
	}
	if q.Get("fetch-owner") == "true" {
		o := ownerOf(p)
		lp.owner = &o
	}
	startAfter := q.Get("start-after")
	after := startAfter
	// An empty token is the same as none (S3 echoes it, empty); a token
	// takes the place of start-after.
	token, hasToken := q.Get("continuation-token"), q.Has("continuation-token")
	if token != "" {
		if after, err = decodeToken(token); err != nil {
			g.fail(c, err)
			return
		}
	}
	res, err := g.list(c, bucket, lp, after)
	if err != nil {
		g.fail(c, err)
		return
	}
	out := listV2Result{
		Name:              bucket,
		Prefix:            lp.encode(lp.prefix),
		Delimiter:         lp.encode(lp.delimiter),
		StartAfter:        lp.encode(startAfter),
		ContinuationToken: echoToken(token, hasToken),
		MaxKeys:           lp.maxKeys,
		EncodingType:      lp.encodingType,
		IsTruncated:       res.Truncated,
	}
	out.Contents, out.CommonPrefixes = lp.entries(res)
	out.KeyCount = len(out.Contents) + len(out.CommonPrefixes)
	if res.Truncated {
		out.NextContinuationToken = encodeToken(res.NextAfter)
	}
	writeXML(c, http.StatusOK, out)
}

func (g *Gateway) listObjectsV1(c *gin.Context, bucket string, q url.Values) {
	lp, err := parseListParams(q)
	if err != nil {
		g.fail(c, err)
		return
	}
	marker := q.Get("marker")
	res, err := g.list(c, bucket, lp, marker)
	if err != nil {
		g.fail(c, err)
		return
	}
	out := listV1Result{
		Name:         bucket,
		Prefix:       lp.encode(lp.prefix),
		Marker:       lp.encode(marker),
		Delimiter:    lp.encode(lp.delimiter),
		MaxKeys:      lp.maxKeys,
		EncodingType: lp.encodingType,
		IsTruncated:  res.Truncated,
	}
	out.Contents, out.CommonPrefixes = lp.entries(res)
	// S3 sends NextMarker only with a delimiter; without one, clients
	// continue from the last key.
	if res.Truncated && lp.delimiter != "" {
		out.NextMarker = lp.encode(res.NextAfter)
	}
	writeXML(c, http.StatusOK, out)
}
