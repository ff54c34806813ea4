package gateway

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
)

// maxCompleteBody bounds a CompleteMultipartUpload document: 10000 parts
// with an ETag and every checksum each stay well under it.
const maxCompleteBody = 8 << 20

// checksumXML holds the per-part or per-object checksum elements of the
// multipart documents.
type checksumXML struct {
	ChecksumCRC32     string `xml:",omitempty"`
	ChecksumCRC32C    string `xml:",omitempty"`
	ChecksumCRC64NVME string `xml:",omitempty"`
	ChecksumSHA1      string `xml:",omitempty"`
	ChecksumSHA256    string `xml:",omitempty"`
}

func (x *checksumXML) fields() map[string]*string {
	return map[string]*string{
		"crc32": &x.ChecksumCRC32, "crc32c": &x.ChecksumCRC32C, "crc64nvme": &x.ChecksumCRC64NVME,
		"sha1": &x.ChecksumSHA1, "sha256": &x.ChecksumSHA256,
	}
}

func toChecksumXML(sums map[string]string) checksumXML {
	var x checksumXML
	for alg, f := range x.fields() {
		*f = sums[alg]
	}
	return x
}

func (x checksumXML) sums() map[string]string {
	var out map[string]string
	for alg, f := range x.fields() {
		if *f == "" {
			continue
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[alg] = *f
	}
	return out
}

type initiateResult struct {
	XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ InitiateMultipartUploadResult"`
	Bucket   string
	Key      string
	UploadID string `xml:"UploadId"`
}

// completeRequest is the CompleteMultipartUpload body.
type completeRequest struct {
	Parts []struct {
		PartNumber string
		ETag       string
		checksumXML
	} `xml:"Part"`
}

type completeResult struct {
	XMLName  xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CompleteMultipartUploadResult"`
	Location string
	Bucket   string
	Key      string
	ETag     string
	checksumXML
}

type partXML struct {
	PartNumber   int
	LastModified string
	ETag         string
	Size         int64
	checksumXML
}

type listPartsResult struct {
	XMLName              xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListPartsResult"`
	Bucket               string
	Key                  string
	UploadID             string `xml:"UploadId"`
	Initiator            owner
	Owner                owner
	StorageClass         string
	PartNumberMarker     int
	NextPartNumberMarker int `xml:",omitempty"`
	MaxParts             int
	IsTruncated          bool
	Parts                []partXML `xml:"Part"`
}

type uploadXML struct {
	Key          string
	UploadID     string `xml:"UploadId"`
	Initiator    owner
	Owner        owner
	StorageClass string
	Initiated    string
}

type listUploadsResult struct {
	XMLName            xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListMultipartUploadsResult"`
	Bucket             string
	KeyMarker          string
	UploadIDMarker     string `xml:"UploadIdMarker"`
	NextKeyMarker      string `xml:",omitempty"`
	NextUploadIDMarker string `xml:"NextUploadIdMarker,omitempty"`
	Delimiter          string `xml:",omitempty"`
	Prefix             string
	EncodingType       string `xml:",omitempty"`
	MaxUploads         int
	IsTruncated        bool
	Uploads            []uploadXML `xml:"Upload"`
	CommonPrefixes     []prefixXML
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CopyPartResult"`
	LastModified string
	ETag         string
}

// parsePartNumber parses a part number, 1..objects.MaxPartNum.
func parsePartNumber(s string) (int, error) {
	n, ok := parseDigits(s)
	if !ok || n < 1 || n > objects.MaxPartNum {
		return 0, s3Error("InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive.")
	}
	return int(n), nil
}

// partRange resolves GET ?partNumber=pn: the whole object for part 1 of
// an object written in one piece, else the bytes of that part.
func partRange(pn string, info objects.ObjectInfo) (off, n int64, partial bool, err error) {
	num, err := parsePartNumber(pn)
	if err != nil {
		return 0, 0, false, err
	}
	if len(info.PartSizes) == 0 {
		if num != 1 {
			return 0, 0, false, s3Error("InvalidPartNumber", "")
		}
		return 0, info.Size, false, nil
	}
	if num > len(info.PartSizes) {
		return 0, 0, false, s3Error("InvalidPartNumber", "")
	}
	for _, sz := range info.PartSizes[:num-1] {
		off += sz
	}
	n = info.PartSizes[num-1]
	return off, n, n > 0, nil
}

func (g *Gateway) createUpload(c *gin.Context, bucket, key string, p *sigv4.Result) {
	r := c.Request
	if _, err := readSmall(p, maxConfigBody); err != nil {
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
	alg := strings.ToLower(r.Header.Get("X-Amz-Checksum-Algorithm"))
	if alg != "" && !slices.Contains(checksumAlgorithms, alg) {
		g.fail(c, s3Error("InvalidRequest", "Checksum algorithm provided is unsupported."))
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = defaultContentType
	}
	up, err := g.cfg.Backend.CreateUpload(r.Context(), objects.UploadInput{
		Bucket: bucket, Key: key, ContentType: ct, UserMeta: meta, Headers: storedHeaders(r.Header), Tagging: tags,
	})
	if err != nil {
		g.fail(c, err)
		return
	}
	if alg != "" {
		c.Header("x-amz-checksum-algorithm", strings.ToUpper(alg))
	}
	writeXML(c, http.StatusOK, initiateResult{Bucket: bucket, Key: key, UploadID: up.UploadID})
}

func (g *Gateway) uploadPart(c *gin.Context, bucket, key string, q url.Values, p *sigv4.Result) {
	r := c.Request
	num, err := parsePartNumber(q.Get("partNumber"))
	if err == nil {
		err = g.checkLength(p)
	}
	if err != nil {
		g.fail(c, err)
		return
	}
	body := newPayload(p)
	part, err := g.cfg.Backend.PutPart(r.Context(), objects.PartInput{
		Bucket:    bucket,
		Key:       key,
		UploadID:  q.Get("uploadId"),
		Number:    num,
		Size:      p.Length,
		Body:      body,
		Checksums: verifiedChecksums(r.Header, p),
	})
	g.stored(c, body, part.ETag, part.Checksums, err)
}

func (g *Gateway) completeUpload(c *gin.Context, bucket, key string, q url.Values, p *sigv4.Result) {
	r := c.Request
	raw, err := readSmall(p, maxCompleteBody)
	if err != nil {
		g.fail(c, err)
		return
	}
	parts, err := parseCompleteRequest(raw)
	if err != nil {
		g.fail(c, err)
		return
	}
	info, err := g.cfg.Backend.CompleteUpload(r.Context(), objects.CompleteInput{
		Bucket: bucket, Key: key, UploadID: q.Get("uploadId"), Parts: parts,
	})
	if err != nil {
		g.fail(c, err)
		return
	}
	setVersionHeader(c.Writer.Header(), info)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	loc := url.URL{Scheme: scheme, Host: r.Host, Path: "/" + bucket + "/" + key}
	writeXML(c, http.StatusOK, completeResult{
		Location:    loc.String(),
		Bucket:      bucket,
		Key:         key,
		ETag:        quoteETag(info.ETag),
		checksumXML: toChecksumXML(info.Checksums),
	})
}

// parseCompleteRequest reads a CompleteMultipartUpload document. Part
// order is the Backend's to judge (InvalidPartOrder); a document that does
// not parse or lists no part is MalformedXML.
func parseCompleteRequest(raw []byte) ([]objects.CompletePart, error) {
	var req completeRequest
	if err := xml.Unmarshal(raw, &req); err != nil || len(req.Parts) == 0 || len(req.Parts) > objects.MaxPartNum {
		return nil, s3Error("MalformedXML", "")
	}
	parts := make([]objects.CompletePart, len(req.Parts))
	for i, rp := range req.Parts {
		n, err := parsePartNumber(strings.TrimSpace(rp.PartNumber))
		if err != nil {
			return nil, s3Error("MalformedXML", "")
		}
		etag := strings.Trim(strings.TrimSpace(rp.ETag), `"`)
		parts[i] = objects.CompletePart{Number: n, ETag: etag, Checksums: rp.checksumXML.sums()}
	}
	return parts, nil
}

func (g *Gateway) abortUpload(c *gin.Context, bucket, key string, q url.Values) {
	if err := g.cfg.Backend.AbortUpload(c.Request.Context(), bucket, key, q.Get("uploadId")); err != nil {
		g.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// queryInt parses an optional non-negative integer query parameter.
func queryInt(q url.Values, name string) (int, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, ok := parseDigits(v)
	if !ok || n > 1<<31 {
		return 0, s3Error("InvalidArgument", "Provided "+name+" not an integer or within integer range")
	}
	return int(n), nil
}

func (g *Gateway) listParts(c *gin.Context, bucket, key string, q url.Values, p *sigv4.Result) {
	maxParts, err := queryInt(q, "max-parts")
	if err != nil {
		g.fail(c, err)
		return
	}
	if !q.Has("max-parts") || maxParts > objects.MaxListParts {
		maxParts = objects.MaxListParts
	}
	marker, err := queryInt(q, "part-number-marker")
	if err != nil {
		g.fail(c, err)
		return
	}
	uploadID := q.Get("uploadId")
	res := listPartsResult{
		Bucket: bucket, Key: key, UploadID: uploadID,
		Initiator: ownerOf(p), Owner: ownerOf(p), StorageClass: "STANDARD",
		PartNumberMarker: marker, MaxParts: maxParts,
		Parts: []partXML{},
	}
	list, err := g.cfg.Backend.ListParts(c.Request.Context(), bucket, key, uploadID, objects.PartListOptions{After: marker, MaxParts: max(maxParts, 1)})
	if err != nil {
		g.fail(c, err)
		return
	}
	if maxParts > 0 {
		res.IsTruncated = list.Truncated
		if list.Truncated {
			res.NextPartNumberMarker = list.NextAfter
		}
		for _, pt := range list.Parts {
			res.Parts = append(res.Parts, partXML{
				PartNumber: pt.Number, LastModified: xmlTime(pt.Modified), ETag: quoteETag(pt.ETag), Size: pt.Size,
				checksumXML: toChecksumXML(pt.Checksums),
			})
		}
	} else {
		res.IsTruncated = len(list.Parts) > 0
	}
	writeXML(c, http.StatusOK, res)
}

func (g *Gateway) listUploads(c *gin.Context, bucket string, q url.Values, p *sigv4.Result) {
	lp, err := parseListParams(q)
	if err != nil {
		g.fail(c, err)
		return
	}
	maxUploads, err := queryInt(q, "max-uploads")
	if err != nil {
		g.fail(c, err)
		return
	}
	if !q.Has("max-uploads") || maxUploads > objects.MaxListParts {
		maxUploads = objects.MaxListParts
	}
	opts := objects.UploadListOptions{
		Prefix:         lp.prefix,
		Delimiter:      lp.delimiter,
		KeyMarker:      q.Get("key-marker"),
		UploadIDMarker: q.Get("upload-id-marker"),
		MaxUploads:     max(maxUploads, 1),
	}
	if opts.KeyMarker == "" {
		opts.UploadIDMarker = ""
	}
	list, err := g.cfg.Backend.ListUploads(c.Request.Context(), bucket, opts)
	if err != nil {
		g.fail(c, err)
		return
	}
	res := listUploadsResult{
		Bucket:         bucket,
		KeyMarker:      lp.encode(opts.KeyMarker),
		UploadIDMarker: opts.UploadIDMarker,
		Delimiter:      lp.encode(lp.delimiter),
		Prefix:         lp.encode(lp.prefix),
		EncodingType:   lp.encodingType,
		MaxUploads:     maxUploads,
	}
	if maxUploads == 0 {
		res.IsTruncated = len(list.Uploads)+len(list.CommonPrefixes) > 0
		writeXML(c, http.StatusOK, res)
		return
	}
	res.IsTruncated = list.Truncated
	if list.Truncated {
		res.NextKeyMarker, res.NextUploadIDMarker = lp.encode(list.NextKeyMarker), list.NextUploadIDMarker
	}
	for _, u := range list.Uploads {
		res.Uploads = append(res.Uploads, uploadXML{
			Key: lp.encode(u.Key), UploadID: u.UploadID, Initiator: ownerOf(p), Owner: ownerOf(p),
			StorageClass: "STANDARD", Initiated: xmlTime(u.Initiated),
		})
	}
	for _, cp := range list.CommonPrefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, prefixXML{Prefix: lp.encode(cp)})
	}
	writeXML(c, http.StatusOK, res)
}
