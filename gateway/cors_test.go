package gateway

import (
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/kintsugi-store/kintsugi/gateway/objects"
)

func TestSDKBucketCors(t *testing.T) {
	h, c, b := newBucketHarness(t, false, "cors")
	_, err := c.GetBucketCors(bg, &s3.GetBucketCorsInput{Bucket: b})
	wantCode(t, "no configuration", err, "NoSuchCORSConfiguration")
	rules := []types.CORSRule{{
		ID:             aws.String("uploads"),
		AllowedOrigins: []string{"https://app.example.com", "http://*.example.org"},
		AllowedMethods: []string{"PUT", "POST"},
		AllowedHeaders: []string{"*"},
		ExposeHeaders:  []string{"ETag", "x-amz-request-id"},
		MaxAgeSeconds:  aws.Int32(3000),
	}, {
		AllowedOrigins: []string{"*"},
		AllowedMethods: []string{"GET", "HEAD"},
	}}
	if _, err := c.PutBucketCors(bg, &s3.PutBucketCorsInput{Bucket: b, CORSConfiguration: &types.CORSConfiguration{CORSRules: rules}}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetBucketCors(bg, &s3.GetBucketCorsInput{Bucket: b})
	if err != nil || len(out.CORSRules) != 2 {
		t.Fatalf("GetBucketCors: %+v, %v", out, err)
	}
	r := out.CORSRules[0]
	if aws.ToString(r.ID) != "uploads" || !slices.Equal(r.AllowedOrigins, rules[0].AllowedOrigins) || !slices.Equal(r.AllowedMethods, rules[0].AllowedMethods) ||
		!slices.Equal(r.AllowedHeaders, []string{"*"}) || !slices.Equal(r.ExposeHeaders, rules[0].ExposeHeaders) || aws.ToInt32(r.MaxAgeSeconds) != 3000 {
		t.Errorf("rule 0 = %+v", r)
	}
	if r := out.CORSRules[1]; r.MaxAgeSeconds != nil || len(r.AllowedHeaders) != 0 || !slices.Equal(r.AllowedMethods, []string{"GET", "HEAD"}) {
		t.Errorf("rule 1 = %+v", r)
	}

	many := make([]types.CORSRule, 101)
	for i := range many {
		many[i] = types.CORSRule{AllowedOrigins: []string{fmt.Sprintf("https://%d.test", i)}, AllowedMethods: []string{"GET"}}
	}
	for _, tc := range []struct {
		name  string
		rules []types.CORSRule
		code  string
	}{
		{"100 rules", many[:100], ""},
		{"101 rules", many, "MalformedXML"},
		{"method PATCH", []types.CORSRule{{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"PATCH"}}}, "InvalidRequest"},
		{"method lower-case", []types.CORSRule{{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"get"}}}, "InvalidRequest"},
		{"two wildcards in an origin", []types.CORSRule{{AllowedOrigins: []string{"https://*.*.test"}, AllowedMethods: []string{"GET"}}}, "InvalidRequest"},
		{"wildcard exposed header", []types.CORSRule{{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}, ExposeHeaders: []string{"x-*"}}}, "InvalidRequest"},
		{"two wildcards in a header", []types.CORSRule{{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"GET"}, AllowedHeaders: []string{"x-*-*"}}}, "InvalidRequest"},
	} {
		_, err := c.PutBucketCors(bg, &s3.PutBucketCorsInput{Bucket: aws.String("cors2"), CORSConfiguration: &types.CORSConfiguration{CORSRules: tc.rules}})
		if tc.code == "" {
			// cors2 does not exist: a valid document gets that far.
			wantCode(t, tc.name, err, "NoSuchBucket")
			continue
		}
		wantCode(t, tc.name, err, tc.code)
	}
	// Documents the SDK would refuse to send.
	for _, doc := range []string{
		"<CORSConfiguration><CORSRule>",
		"<CORSConfiguration></CORSConfiguration>",
		"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>",
		"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
		"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>soon</MaxAgeSeconds></CORSRule></CORSConfiguration>",
		"<Other><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></Other>",
	} {
		resp, body := h.do("PUT", "/cors?cors", nil, strings.NewReader(doc))
		if resp.StatusCode != 400 || s3Code(body) != "MalformedXML" {
			t.Errorf("%s: %d %s", doc, resp.StatusCode, body)
		}
	}
	if out, err := c.GetBucketCors(bg, &s3.GetBucketCorsInput{Bucket: b}); err != nil || len(out.CORSRules) != 2 {
		t.Errorf("refused puts changed the configuration: %+v, %v", out, err)
	}
	if _, err := c.DeleteBucketCors(bg, &s3.DeleteBucketCorsInput{Bucket: b}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetBucketCors(bg, &s3.GetBucketCorsInput{Bucket: b})
	wantCode(t, "deleted configuration", err, "NoSuchCORSConfiguration")
}

// corsTestRules follows the example configuration of S3's CORS guide: a
// first rule for one origin with PUT/POST/DELETE and any header, a second
// for another, and a catch-all GET rule.
const corsTestRules = `<CORSConfiguration>
 <CORSRule>
   <AllowedOrigin>http://www.example1.com</AllowedOrigin>
   <AllowedMethod>PUT</AllowedMethod>
   <AllowedMethod>POST</AllowedMethod>
   <AllowedMethod>DELETE</AllowedMethod>
   <AllowedHeader>*</AllowedHeader>
 </CORSRule>
 <CORSRule>
   <AllowedOrigin>http://www.example2.com</AllowedOrigin>
   <AllowedOrigin>https://*.example3.com</AllowedOrigin>
   <AllowedMethod>PUT</AllowedMethod>
   <AllowedMethod>GET</AllowedMethod>
   <AllowedHeader>Content-Type</AllowedHeader>
   <AllowedHeader>x-amz-meta-*</AllowedHeader>
   <MaxAgeSeconds>600</MaxAgeSeconds>
   <ExposeHeader>ETag</ExposeHeader>
   <ExposeHeader>x-amz-request-id</ExposeHeader>
 </CORSRule>
 <CORSRule>
   <AllowedOrigin>*</AllowedOrigin>
   <AllowedMethod>GET</AllowedMethod>
 </CORSRule>
</CORSConfiguration>`

// TestCORSPreflight evaluates preflight requests against corsTestRules as
// S3 documents: the first rule whose origin, method and every requested
// header match answers; none is 403.
func TestCORSPreflight(t *testing.T) {
	h := newHarness(t, false, nil)
	h.fake.put("web", "k", "x")
	if resp, body := h.do("PUT", "/web?cors", nil, strings.NewReader(corsTestRules)); resp.StatusCode != 200 {
		t.Fatalf("PutBucketCors: %d %s", resp.StatusCode, body)
	}
	const allMethods1, methods2 = "PUT, POST, DELETE", "PUT, GET"
	tests := []struct {
		name, origin, method, headers string
		status                        int
		allowOrigin, allowMethods     string
		allowHeaders, expose, maxAge  string
		credentials                   bool
	}{
		{name: "first rule", origin: "http://www.example1.com", method: "PUT", headers: "Content-Type, X-Anything",
			status: 200, allowOrigin: "http://www.example1.com", allowMethods: allMethods1, allowHeaders: "content-type, x-anything", credentials: true},
		{name: "first rule, no headers", origin: "http://www.example1.com", method: "DELETE",
			status: 200, allowOrigin: "http://www.example1.com", allowMethods: allMethods1, credentials: true},
		{name: "origin is case-sensitive", origin: "http://WWW.example1.com", method: "PUT", status: 403},
		{name: "GET from origin 1 falls to the wildcard rule", origin: "http://www.example1.com", method: "GET",
			status: 200, allowOrigin: "*", allowMethods: "GET"},
		{name: "second rule", origin: "http://www.example2.com", method: "PUT", headers: "content-type,X-Amz-Meta-Color",
			status: 200, allowOrigin: "http://www.example2.com", allowMethods: methods2, allowHeaders: "content-type, x-amz-meta-color",
			expose: "ETag, x-amz-request-id", maxAge: "600", credentials: true},
		{name: "wildcard origin", origin: "https://a.b.example3.com", method: "GET",
			status: 200, allowOrigin: "https://a.b.example3.com", allowMethods: methods2, expose: "ETag, x-amz-request-id", maxAge: "600", credentials: true},
		{name: "wildcard needs the suffix", origin: "https://example3.com.evil", method: "PUT", status: 403},
		{name: "header not allowed", origin: "http://www.example2.com", method: "PUT", headers: "content-type, x-secret", status: 403},
		{name: "header not allowed anywhere, GET", origin: "http://www.example2.com", method: "GET", headers: "x-secret", status: 403},
		{name: "method not allowed", origin: "http://www.example2.com", method: "DELETE", status: 403},
		{name: "HEAD allowed nowhere", origin: "http://other.test", method: "HEAD", status: 403},
		{name: "any origin may GET", origin: "http://other.test", method: "GET", status: 200, allowOrigin: "*", allowMethods: "GET"},
		{name: "invalid method", origin: "http://other.test", method: "PATCH", status: 400},
		{name: "no method", origin: "http://other.test", status: 400},
		{name: "no origin", method: "GET", status: 400},
	}
	for _, tt := range tests {
		hdr := map[string]string{}
		if tt.origin != "" {
			hdr["Origin"] = tt.origin
		}
		if tt.method != "" {
			hdr["Access-Control-Request-Method"] = tt.method
		}
		if tt.headers != "" {
			hdr["Access-Control-Request-Headers"] = tt.headers
		}
		resp, body := h.do("OPTIONS", "/web/k", hdr, nil)
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d\n%s", tt.name, resp.StatusCode, tt.status, body)
			continue
		}
		if tt.status == 403 && (s3Code(body) != "AccessForbidden" || !strings.Contains(body, "CORSResponse: This CORS request is not allowed")) {
			t.Errorf("%s: body %s", tt.name, body)
		}
		cred := ""
		if tt.credentials {
			cred = "true"
		}
		for _, c := range [][2]string{
			{"Access-Control-Allow-Origin", tt.allowOrigin},
			{"Access-Control-Allow-Methods", tt.allowMethods},
			{"Access-Control-Allow-Headers", tt.allowHeaders},
			{"Access-Control-Expose-Headers", tt.expose},
			{"Access-Control-Max-Age", tt.maxAge},
			{"Access-Control-Allow-Credentials", cred},
		} {
			if got := resp.Header.Get(c[0]); got != c[1] {
				t.Errorf("%s: %s = %q, want %q", tt.name, c[0], got, c[1])
			}
		}
		if tt.status == 200 && !strings.Contains(resp.Header.Get("Vary"), "Origin") {
			t.Errorf("%s: Vary = %q", tt.name, resp.Header.Get("Vary"))
		}
	}
	// The bucket path answers preflight too, and a bucket without CORS
	// refuses every origin.
	if resp, _ := h.do("OPTIONS", "/web", map[string]string{"Origin": "http://other.test", "Access-Control-Request-Method": "GET"}, nil); resp.StatusCode != 200 {
		t.Errorf("bucket preflight: %d", resp.StatusCode)
	}
	h.fake.put("plain", "k", "x")
	resp, body := h.do("OPTIONS", "/plain/k", map[string]string{"Origin": "http://other.test", "Access-Control-Request-Method": "GET"}, nil)
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(body, "CORS is not enabled") {
		t.Errorf("bucket without CORS: %d %s", resp.StatusCode, body)
	}
}

// An actual request with an Origin carries the headers of the first rule
// that allows its origin and method, on successes and errors alike; a
// request that no rule allows is still served, without them.
func TestCORSActualRequests(t *testing.T) {
	for _, auth := range []bool{false, true} {
		h := newHarness(t, false, nil)
		if auth {
			h = newAuthHarness(t, false)
		}
		h.fake.put("web", "k", "hello")
		h.fake.put("plain", "k", "hello")
		if err := h.fake.UpdateBucket(bg, "web", func(cfg *objects.BucketConfig) { cfg.CORS = mustCORS(t, corsTestRules) }); err != nil {
			t.Fatal(err)
		}
		ok := func(status int) int {
			if auth {
				return 403 // unsigned: AccessDenied, readable by the page
			}
			return status
		}
		for _, tc := range []struct {
			name, method, path, origin string
			status                     int
			allowOrigin, expose, cred  string
		}{
			{"GET, rule 2", "GET", "/web/k", "http://www.example2.com", ok(200), "http://www.example2.com", "ETag, x-amz-request-id", "true"},
			{"HEAD, no rule", "HEAD", "/web/k", "http://www.example2.com", ok(200), "", "", ""},
			{"GET, catch-all", "GET", "/web/k", "http://other.test", ok(200), "*", "", ""},
			{"GET, missing key", "GET", "/web/nope", "http://other.test", ok(404), "*", "", ""},
			{"PUT, rule 1", "PUT", "/web/k2", "http://www.example1.com", ok(200), "http://www.example1.com", "", "true"},
			{"DELETE, not allowed", "DELETE", "/web/k", "http://other.test", ok(204), "", "", ""},
			{"no origin", "GET", "/web/k2", "", ok(200), "", "", ""},
			{"bucket without CORS", "GET", "/plain/k", "http://other.test", ok(200), "", "", ""},
		} {
			hdr := map[string]string{}
			if tc.origin != "" {
				hdr["Origin"] = tc.origin
			}
			var body io.Reader
			if tc.method == "PUT" {
				body = strings.NewReader("new")
			}
			resp, _ := h.do(tc.method, tc.path, hdr, body)
			rh := resp.Header
			if resp.StatusCode != tc.status || rh.Get("Access-Control-Allow-Origin") != tc.allowOrigin ||
				rh.Get("Access-Control-Expose-Headers") != tc.expose || rh.Get("Access-Control-Allow-Credentials") != tc.cred {
				t.Errorf("auth %v, %s: %d, allow-origin %q, expose %q, credentials %q", auth, tc.name, resp.StatusCode,
					rh.Get("Access-Control-Allow-Origin"), rh.Get("Access-Control-Expose-Headers"), rh.Get("Access-Control-Allow-Credentials"))
			}
			wantVary := tc.origin != "" && strings.HasPrefix(tc.path, "/web/")
			if strings.Contains(rh.Get("Vary"), "Origin") != wantVary {
				t.Errorf("auth %v, %s: Vary %q", auth, tc.name, rh.Get("Vary"))
			}
		}
	}
}

func mustCORS(t *testing.T, doc string) string {
	t.Helper()
	cfg, err := parseCORS([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	b, err := xml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
