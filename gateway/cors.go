package gateway

import (
	"encoding/xml"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
)

// maxCORSRules is S3's limit on rules per bucket.
const maxCORSRules = 100

// corsConfig is the document of Get/PutBucketCors, and the form the bucket
// record stores it in.
type corsConfig struct {
	XMLName xml.Name   `xml:"http://s3.amazonaws.com/doc/2006-03-01/ CORSConfiguration"`
	Rules   []corsRule `xml:"CORSRule"`
}

type corsRule struct {
	ID             string   `xml:"ID,omitempty"`
	AllowedHeaders []string `xml:"AllowedHeader,omitempty"`
	AllowedMethods []string `xml:"AllowedMethod"`
	AllowedOrigins []string `xml:"AllowedOrigin"`
	ExposeHeaders  []string `xml:"ExposeHeader,omitempty"`
	MaxAgeSeconds  *int     `xml:"MaxAgeSeconds,omitempty"`
}

// corsConfigIn is corsConfig as clients send it: any namespace.
type corsConfigIn struct {
	XMLName xml.Name   `xml:"CORSConfiguration"`
	Rules   []corsRule `xml:"CORSRule"`
}

var corsMethods = []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodHead}

// parseCORS reads and checks a CORS configuration as S3 does: 1 to 100
// rules, each with an origin and a method; methods among corsMethods;
// at most one "*" in an origin or allowed header, none in an exposed one.
func parseCORS(body []byte) (corsConfig, error) {
	var in corsConfigIn
	if err := xml.Unmarshal(body, &in); err != nil || len(in.Rules) == 0 {
		return corsConfig{}, s3Error("MalformedXML", "")
	}
	if len(in.Rules) > maxCORSRules {
		return corsConfig{}, s3Error("MalformedXML", "The number of CORS rules should not exceed allowed limit of 100 rules.")
	}
	for _, r := range in.Rules {
		if len(r.AllowedOrigins) == 0 || len(r.AllowedMethods) == 0 {
			return corsConfig{}, s3Error("MalformedXML", "")
		}
		if len(r.ID) > 255 {
			return corsConfig{}, s3Error("InvalidArgument", "The ID of a CORS rule may be at most 255 characters long.")
		}
		if r.MaxAgeSeconds != nil && *r.MaxAgeSeconds < 0 {
			return corsConfig{}, s3Error("MalformedXML", "")
		}
		for _, m := range r.AllowedMethods {
			if !slices.Contains(corsMethods, m) {
				return corsConfig{}, s3Error("InvalidRequest", "Found unsupported HTTP method in CORS config. Unsupported method is "+m)
			}
		}
		for _, o := range r.AllowedOrigins {
			if strings.Count(o, "*") > 1 {
				return corsConfig{}, s3Error("InvalidRequest", `AllowedOrigin "`+o+`" can not have more than one wildcard.`)
			}
		}
		for _, h := range r.ExposeHeaders {
			if strings.Contains(h, "*") {
				return corsConfig{}, s3Error("InvalidRequest", `ExposeHeader "`+h+`" contains wildcard. We currently do not support wildcard for ExposeHeader.`)
			}
		}
		for _, h := range r.AllowedHeaders {
			if strings.Count(h, "*") > 1 {
				return corsConfig{}, s3Error("InvalidRequest", `AllowedHeader "`+h+`" can not have more than one wildcard.`)
			}
		}
	}
	return corsConfig{Rules: in.Rules}, nil
}

// wildcardMatch matches s against a pattern with at most one "*", which
// stands for any run of characters.
func wildcardMatch(pattern, s string) bool {
	before, after, ok := strings.Cut(pattern, "*")
	if !ok {
		return pattern == s
	}
	return len(s) >= len(before)+len(after) && strings.HasPrefix(s, before) && strings.HasSuffix(s, after)
}

// match is the first rule that allows origin to use method with the
// headers requested, as S3 evaluates them: origins compare case-sensitively,
// header names case-insensitively, and every requested header must match
// an AllowedHeader.
func (cfg corsConfig) match(origin, method string, headers []string) (corsRule, bool) {
	for _, r := range cfg.Rules {
		if !slices.Contains(r.AllowedMethods, method) {
			continue
		}
		if !slices.ContainsFunc(r.AllowedOrigins, func(p string) bool { return wildcardMatch(p, origin) }) {
			continue
		}
		allowed := true
		for _, h := range headers {
			h = strings.ToLower(h)
			allowed = allowed && slices.ContainsFunc(r.AllowedHeaders, func(p string) bool { return wildcardMatch(strings.ToLower(p), h) })
		}
		if allowed {
			return r, true
		}
	}
	return corsRule{}, false
}

// allowHeaders writes the answer headers of a rule that matched origin.
// A rule open to every origin answers "*" and no credentials, as S3 does.
func (r corsRule) allowHeaders(h http.Header, origin string) {
	if slices.Contains(r.AllowedOrigins, "*") {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	h.Set("Access-Control-Allow-Methods", strings.Join(r.AllowedMethods, ", "))
	if len(r.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(r.ExposeHeaders, ", "))
	}
	if r.MaxAgeSeconds != nil {
		h.Set("Access-Control-Max-Age", strconv.Itoa(*r.MaxAgeSeconds))
	}
}

const corsVary = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"

// bucketCORS is the CORS configuration of bucket; ok is false if it has
// none. Configurations are read through the bucket cache, so a change
// takes effect on every gateway within its TTL.
func (g *Gateway) bucketCORS(c *gin.Context, bucket string) (cfg corsConfig, ok bool, err error) {
	info, err := g.cfg.Backend.HeadBucket(c.Request.Context(), bucket)
	if err != nil || info.Config.CORS == "" {
		return corsConfig{}, false, err
	}
	if err := xml.Unmarshal([]byte(info.Config.CORS), &cfg); err != nil {
		return corsConfig{}, false, err
	}
	return cfg, true, nil
}

var errCORSForbidden = s3Error("AccessForbidden", "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.")

// preflight answers a CORS preflight (OPTIONS) request. It needs no
// signature: browsers send none.
func (g *Gateway) preflight(c *gin.Context, bucket string) {
	r := c.Request
	origin := r.Header.Get("Origin")
	method := r.Header.Get("Access-Control-Request-Method")
	switch {
	case origin == "":
		g.fail(c, s3Error("BadRequest", "Insufficient information. Origin request header needed."))
		return
	case method == "":
		g.fail(c, s3Error("BadRequest", "Invalid Access-Control-Request-Method: "))
		return
	case !slices.Contains(corsMethods, method):
		g.fail(c, s3Error("BadRequest", "Invalid Access-Control-Request-Method: "+method))
		return
	}
	cfg, ok, err := g.bucketCORS(c, bucket)
	if err != nil {
		g.fail(c, err)
		return
	}
	var headers []string
	for _, v := range r.Header.Values("Access-Control-Request-Headers") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				headers = append(headers, name)
			}
		}
	}
	if !ok {
		g.fail(c, s3Error("AccessForbidden", "CORSResponse: CORS is not enabled for this bucket."))
		return
	}
	rule, matched := cfg.match(origin, method, headers)
	if !matched {
		g.fail(c, errCORSForbidden)
		return
	}
	h := c.Writer.Header()
	rule.allowHeaders(h, origin)
	if len(headers) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.ToLower(strings.Join(headers, ", ")))
	}
	h.Set("Vary", corsVary)
	c.Status(http.StatusOK)
}

// corsHeaders adds the Access-Control-* headers to the answer of a request
// that carries an Origin, when the bucket's first rule for the origin and
// method allows it. Errors are not the request's: without CORS headers
// the browser hides the answer, which is what no rule would do too.
func (g *Gateway) corsHeaders(c *gin.Context, bucket string) {
	origin := c.Request.Header.Get("Origin")
	if origin == "" || bucket == "" || !validBucketName(bucket) {
		return
	}
	cfg, ok, err := g.bucketCORS(c, bucket)
	if err != nil || !ok {
		return
	}
	h := c.Writer.Header()
	h.Set("Vary", corsVary)
	if rule, ok := cfg.match(origin, c.Request.Method, nil); ok {
		rule.allowHeaders(h, origin)
	}
}

func (g *Gateway) getBucketCors(c *gin.Context, bucket string) {
	info, err := g.cfg.Backend.HeadBucket(c.Request.Context(), bucket)
	if err != nil {
		g.fail(c, err)
		return
	}
	if info.Config.CORS == "" {
		g.fail(c, s3Error("NoSuchCORSConfiguration", ""))
		return
	}
	c.Data(http.StatusOK, "application/xml", []byte(xml.Header+info.Config.CORS))
}

func (g *Gateway) putBucketCors(c *gin.Context, bucket string, p *sigv4.Result) {
	body, err := readSmall(p, maxConfigBody)
	if err != nil {
		g.fail(c, err)
		return
	}
	cfg, err := parseCORS(body)
	if err != nil {
		g.fail(c, err)
		return
	}
	doc, err := xml.Marshal(cfg)
	if err != nil {
		g.fail(c, err)
		return
	}
	err = g.cfg.Backend.UpdateBucket(c.Request.Context(), bucket, func(b *objects.BucketConfig) { b.CORS = string(doc) })
	if err != nil {
		g.fail(c, err)
		return
	}
	c.Status(http.StatusOK)
}

func (g *Gateway) deleteBucketCors(c *gin.Context, bucket string) {
	err := g.cfg.Backend.UpdateBucket(c.Request.Context(), bucket, func(b *objects.BucketConfig) { b.CORS = "" })
	if err != nil {
		g.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
