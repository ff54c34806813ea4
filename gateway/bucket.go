package gateway

import (
	"encoding/xml"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
)

const s3NS = "http://s3.amazonaws.com/doc/2006-03-01/"

// iso8601 is the time format of S3 XML documents.
const iso8601 = "2006-01-02T15:04:05.000Z"

func xmlTime(t time.Time) string { return t.UTC().Format(iso8601) }

type owner struct {
	ID          string
	DisplayName string
}

// ownerOf names the owner of everything: the gateway has one tenant.
func ownerOf(p *sigv4.Result) owner {
	if p != nil && p.AccessKey != "" {
		return owner{ID: p.AccessKey, DisplayName: p.AccessKey}
	}
	return owner{ID: "kintsugi", DisplayName: "kintsugi"}
}

type listBucketsResult struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ ListAllMyBucketsResult"`
	Owner   owner
	Buckets []bucketXML `xml:"Buckets>Bucket"`
}

type bucketXML struct {
	Name         string
	CreationDate string
}

func (g *Gateway) listBuckets(c *gin.Context, p *sigv4.Result) {
	bs, err := g.cfg.Backend.ListBuckets(c.Request.Context())
	if err != nil {
		g.fail(c, err)
		return
	}
	res := listBucketsResult{Owner: ownerOf(p), Buckets: make([]bucketXML, 0, len(bs))}
	for _, b := range bs {
		res.Buckets = append(res.Buckets, bucketXML{Name: b.Name, CreationDate: xmlTime(b.Created)})
	}
	writeXML(c, http.StatusOK, res)
}

// maxConfigBody bounds the bodies the gateway parses in memory.
const maxConfigBody = 1 << 20

type createBucketConfiguration struct {
	LocationConstraint string
}

func (g *Gateway) createBucket(c *gin.Context, bucket string, p *sigv4.Result) {
	// The configuration is read (a client may wait for it to be consumed,
	// and a signed payload is only verified at its end) and checked for
	// well-formedness, but its location constraint is ignored: the cluster
	// has one region.
	body, err := readSmall(p, maxConfigBody)
	if err != nil {
		g.fail(c, err)
		return
	}
	if len(body) > 0 {
		var cfg createBucketConfiguration
		if err := xml.Unmarshal(body, &cfg); err != nil {
			g.fail(c, s3Error("MalformedXML", ""))
			return
		}
	}
	err = g.cfg.Backend.CreateBucket(c.Request.Context(), bucket)
	// S3 answers a bucket created again by its owner with success in its
	// original region (leaving the bucket as it is) and with
	// BucketAlreadyOwnedByYou everywhere else.
	if errors.Is(err, objects.ErrBucketExists) && g.cfg.Region == DefaultRegion {
		err = nil
	}
	if err != nil {
		g.fail(c, err)
		return
	}
	c.Header("Location", "/"+bucket)
	c.Status(http.StatusOK)
}

func (g *Gateway) headBucket(c *gin.Context, bucket string) {
	if _, err := g.cfg.Backend.HeadBucket(c.Request.Context(), bucket); err != nil {
		g.fail(c, err)
		return
	}
	c.Header("x-amz-bucket-region", g.cfg.Region)
	c.Status(http.StatusOK)
}

func (g *Gateway) deleteBucket(c *gin.Context, bucket string) {
	if err := g.cfg.Backend.DeleteBucket(c.Request.Context(), bucket); err != nil {
		g.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

type locationConstraint struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ LocationConstraint"`
	Region  string   `xml:",chardata"`
}

func (g *Gateway) getBucketLocation(c *gin.Context, bucket string) {
	if _, err := g.cfg.Backend.HeadBucket(c.Request.Context(), bucket); err != nil {
		g.fail(c, err)
		return
	}
	// S3 answers an empty constraint for its original region.
	region := g.cfg.Region
	if region == DefaultRegion {
		region = ""
	}
	writeXML(c, http.StatusOK, locationConstraint{Region: region})
}

// accessControlPolicy is the canned "private" ACL: the owner has full
// control and nobody else has anything, which is the only access model
// the gateway has.
type accessControlPolicy struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ AccessControlPolicy"`
	Owner   owner
	Grants  []grant `xml:"AccessControlList>Grant"`
}

type grant struct {
	Grantee    grantee
	Permission string
}

type grantee struct {
	XMLNSXSI    string `xml:"xmlns:xsi,attr"`
	Type        string `xml:"xsi:type,attr"`
	ID          string
	DisplayName string
}

func privateACL(p *sigv4.Result) accessControlPolicy {
	o := ownerOf(p)
	return accessControlPolicy{
		Owner: o,
		Grants: []grant{{
			Grantee: grantee{
				XMLNSXSI:    "http://www.w3.org/2001/XMLSchema-instance",
				Type:        "CanonicalUser",
				ID:          o.ID,
				DisplayName: o.DisplayName,
			},
			Permission: "FULL_CONTROL",
		}},
	}
}

func (g *Gateway) getBucketACL(c *gin.Context, bucket string, p *sigv4.Result) {
	if _, err := g.cfg.Backend.HeadBucket(c.Request.Context(), bucket); err != nil {
		g.fail(c, err)
		return
	}
	writeXML(c, http.StatusOK, privateACL(p))
}

func (g *Gateway) getObjectACL(c *gin.Context, bucket, key string, p *sigv4.Result) {
	if _, err := g.cfg.Backend.StatObject(c.Request.Context(), bucket, key); err != nil {
		g.fail(c, err)
		return
	}
	writeXML(c, http.StatusOK, privateACL(p))
}

// versioningConfiguration is the answer for a bucket whose versioning was
// never enabled: no Status at all. Enabling it is not implemented; clients
// that sync or purge ask for the status first.
type versioningConfiguration struct {
	XMLName xml.Name `xml:"http://s3.amazonaws.com/doc/2006-03-01/ VersioningConfiguration"`
}

func (g *Gateway) getBucketVersioning(c *gin.Context, bucket string) {
	if vb, ok := g.cfg.Backend.(VersionedBackend); ok {
		g.getBucketVersioningState(c, bucket, vb)
		return
	}
	if _, err := g.cfg.Backend.HeadBucket(c.Request.Context(), bucket); err != nil {
		g.fail(c, err)
		return
	}
	writeXML(c, http.StatusOK, versioningConfiguration{})
}
