package gateway

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/gateway/objects"
)

// do sends a raw request; path is sent as written (escapes included).
func (h *harness) do(method, path string, hdr map[string]string, body io.Reader) (*http.Response, string) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := *h.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, string(b)
}

var s3CodeRE = regexp.MustCompile(`<Code>([^<]*)</Code>`)

// s3Code extracts the error code of an S3 XML error body.
func s3Code(body string) string {
	if m := s3CodeRE.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

func TestNewConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without a Backend succeeded")
	}
	cfg := DefaultConfig()
	cfg.Backend = newFake()
	cfg.MaxKeyLength = -1
	if _, err := New(cfg); err == nil {
		t.Error("New with a negative limit succeeded")
	}
	gw, err := New(Config{Backend: newFake()})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Config{Backend: gw.cfg.Backend, Region: "us-east-1", MaxObjectSize: 5 << 30,
		MaxKeyLength: 1024, MaxUserMetaBytes: 2048, MaxHeaderBytes: 64 << 10,
		SlowClientTimeout: 30 * time.Second, MinBodyRate: 1024}); gw.cfg != want {
		t.Errorf("defaults = %+v, want %+v", gw.cfg, want)
	}
}

func TestHealthAndCommonHeaders(t *testing.T) {
	h := newHarness(t, false, nil)
	resp, body := h.do("GET", "/-/healthy", nil, nil)
	if resp.StatusCode != 200 || body != "ok" {
		t.Errorf("health = %d %q", resp.StatusCode, body)
	}
	ids := map[string]bool{}
	idRE := regexp.MustCompile(`^[0-9A-F]{16}$`)
	for _, p := range []string{"/-/healthy", "/", "/nobucket", "/nobucket/key"} {
		resp, _ := h.do("GET", p, nil, nil)
		id := resp.Header.Get("x-amz-request-id")
		if !idRE.MatchString(id) || ids[id] {
			t.Errorf("%s: request id %q (seen before: %v)", p, id, ids[id])
		}
		ids[id] = true
		if s := resp.Header.Get("Server"); s != "Kintsugi" {
			t.Errorf("%s: Server %q", p, s)
		}
	}
}

func TestErrorBody(t *testing.T) {
	h := newHarness(t, false, nil)
	h.fake.put("errs", "present", "x")
	resp, body := h.do("GET", "/errs/no%20such", nil, nil)
	id := resp.Header.Get("x-amz-request-id")
	want := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>` +
		`<Key>no such</Key><Resource>/errs/no such</Resource><RequestId>` + id + `</RequestId></Error>`
	if resp.StatusCode != 404 || body != want || resp.Header.Get("Content-Type") != "application/xml" {
		t.Errorf("got %d %q\n%s\nwant\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body, want)
	}
	resp, body = h.do("GET", "/nobucket", nil, nil)
	id = resp.Header.Get("x-amz-request-id")
	want = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist.</Message>` +
		`<BucketName>nobucket</BucketName><Resource>/nobucket</Resource><RequestId>` + id + `</RequestId></Error>`
	if resp.StatusCode != 404 || body != want {
		t.Errorf("got %d\n%s\nwant\n%s", resp.StatusCode, body, want)
	}
	// HEAD errors have no body.
	for _, p := range []string{"/errs/nope", "/nobucket", "/nobucket/k", "/Bad_Name"} {
		resp, body = h.do("HEAD", p, nil, nil)
		if resp.StatusCode/100 != 4 || body != "" {
			t.Errorf("HEAD %s = %d %q", p, resp.StatusCode, body)
		}
	}
}

func TestStatusTable(t *testing.T) {
	h := newHarness(t, false, nil)
	h.fake.put("tbl", "k", "0123456789")
	tests := []struct {
		method, path string
		hdr          map[string]string
		status       int
		code         string
	}{
		{"PATCH", "/tbl/k", nil, 405, "MethodNotAllowed"},
		{"OPTIONS", "/", nil, 405, "MethodNotAllowed"},
		{"DELETE", "/", nil, 405, "MethodNotAllowed"},
		{"POST", "/tbl/k", nil, 405, "MethodNotAllowed"},
		{"POST", "/tbl", nil, 501, "NotImplemented"},
		{"GET", "/tbl?versioning", nil, 200, ""},
		{"GET", "/nobucket?versioning", nil, 404, "NoSuchBucket"},
		{"PUT", "/tbl?versioning", nil, 501, "NotImplemented"},
		{"GET", "/tbl?uploads", nil, 200, ""},
		{"GET", "/tbl?uploads&max-uploads=x", nil, 400, "InvalidArgument"},
		{"PUT", "/tbl?acl", nil, 501, "NotImplemented"},
		{"DELETE", "/tbl?policy", nil, 501, "NotImplemented"},
		{"GET", "/tbl/k?tagging", nil, 200, ""},
		{"GET", "/tbl/missing?tagging", nil, 404, "NoSuchKey"},
		{"PUT", "/tbl/k?tagging", nil, 400, "MalformedXML"},
		{"PUT", "/tbl/k", map[string]string{"X-Amz-Tagging": "a=1&a=2"}, 400, "InvalidArgument"},
		{"PUT", "/tbl/k", map[string]string{"X-Amz-Tagging": "a=%zz"}, 400, "InvalidArgument"},
		{"PUT", "/tbl/k", map[string]string{"X-Amz-Tagging": "a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11"}, 400, "BadRequest"},
		{"PUT", "/tbl/k", map[string]string{"X-Amz-Tagging": "a=%3C"}, 400, "InvalidTag"},
		{"PUT", "/tbl/k2", map[string]string{"X-Amz-Copy-Source": "/tbl/k", "X-Amz-Tagging-Directive": "MERGE"}, 400, "InvalidArgument"},
		{"GET", "/tbl?tagging", nil, 404, "NoSuchTagSet"},
		{"GET", "/nobucket?tagging", nil, 404, "NoSuchBucket"},
		{"GET", "/tbl?cors", nil, 404, "NoSuchCORSConfiguration"},
		{"PUT", "/tbl?cors", nil, 400, "MalformedXML"},
		{"DELETE", "/nobucket?cors", nil, 404, "NoSuchBucket"},
		{"OPTIONS", "/tbl/k", map[string]string{"Origin": "http://a.test", "Access-Control-Request-Method": "GET"}, 403, "AccessForbidden"},
		{"OPTIONS", "/tbl/k", map[string]string{"Access-Control-Request-Method": "GET"}, 400, "BadRequest"},
		{"OPTIONS", "/nobucket/k", map[string]string{"Origin": "http://a.test", "Access-Control-Request-Method": "GET"}, 404, "NoSuchBucket"},
		{"OPTIONS", "/", nil, 405, "MethodNotAllowed"},
		{"PUT", "/tbl/k?partNumber=1&uploadId=x", nil, 404, "NoSuchUpload"},
		{"PUT", "/tbl/k?partNumber=1", nil, 400, "InvalidRequest"},
		{"PUT", "/tbl/k?partNumber=0&uploadId=x", nil, 400, "InvalidArgument"},
		{"PUT", "/tbl/k?partNumber=10001&uploadId=x", nil, 400, "InvalidArgument"},
		{"DELETE", "/tbl/k?uploadId=x", nil, 404, "NoSuchUpload"},
		{"GET", "/tbl/k?uploadId=x", nil, 404, "NoSuchUpload"},
		{"GET", "/tbl/k?uploadId=x&max-parts=-1", nil, 400, "InvalidArgument"},
		{"POST", "/tbl/k?uploadId=x", nil, 400, "MalformedXML"},
		{"POST", "/tbl/k?uploads&tagging", nil, 501, "NotImplemented"},
		{"PUT", "/tbl/k2", map[string]string{"X-Amz-Copy-Source": "/tbl/missing"}, 404, "NoSuchKey"},
		{"PUT", "/tbl/k2", map[string]string{"X-Amz-Copy-Source": "nobucketonly"}, 400, "InvalidArgument"},
		{"PUT", "/tbl/k2", map[string]string{"X-Amz-Copy-Source": "/tbl/k?versionId=7"}, 501, "NotImplemented"},
		{"PUT", "/tbl/k2", map[string]string{"X-Amz-Copy-Source": "/tbl/k", "X-Amz-Metadata-Directive": "MERGE"}, 400, "InvalidArgument"},
		{"PUT", "/tbl/k2", map[string]string{"X-Amz-Copy-Source": "/tbl/k", "X-Amz-Copy-Source-If-Match": `"nope"`}, 412, "PreconditionFailed"},
		{"PUT", "/tbl/k2", map[string]string{"X-Amz-Copy-Source": "/tbl/k", "X-Amz-Copy-Source-If-None-Match": "*"}, 412, "PreconditionFailed"},
		{"PUT", "/tbl/k", map[string]string{"X-Amz-Copy-Source": "/tbl/k"}, 400, "InvalidRequest"},
		{"GET", "/tbl/k?partNumber=1", map[string]string{"Range": "bytes=0-1"}, 400, "InvalidRequest"},
		{"GET", "/tbl/k?partNumber=x", nil, 400, "InvalidArgument"},
		{"GET", "/tbl/k", map[string]string{"X-Big": strings.Repeat("h", 70<<10)}, 400, "RequestHeaderSectionTooLarge"},
		{"GET", "/tbl/k?versionId=3", nil, 501, "NotImplemented"},
		{"GET", "/tbl/k?versionId=null", nil, 200, ""},
		{"GET", "/tbl/k?partNumber=1", nil, 200, ""},
		{"GET", "/tbl/k?partNumber=2", nil, 416, "InvalidPartNumber"},
		{"GET", "/tbl/k?x-id=GetObject", nil, 200, ""},
		{"GET", "/tbl?list-type=2&max-keys=-1", nil, 400, "InvalidArgument"},
		{"GET", "/tbl?max-keys=ten", nil, 400, "InvalidArgument"},
		{"GET", "/tbl?list-type=2&continuation-token=", nil, 200, ""},
		{"GET", "/tbl?list-type=2&continuation-token=%21", nil, 400, "InvalidArgument"},
		{"GET", "/AB", nil, 400, "InvalidBucketName"},
		{"GET", "//k", nil, 400, "InvalidBucketName"},
		{"PUT", "/tbl/k", map[string]string{"Content-MD5": "bm90IGFuIG1kNQ=="}, 400, "InvalidDigest"},
		{"PUT", "/tbl/k", map[string]string{"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="}, 400, "BadDigest"},
		{"PUT", "/tbl", nil, 200, ""}, // us-east-1: see TestCreateBucketAgain
		{"DELETE", "/tbl", nil, 409, "BucketNotEmpty"},
		{"GET", "/tbl/k", map[string]string{"Range": "bytes=10-"}, 416, "InvalidRange"},
		{"GET", "/tbl/k", map[string]string{"If-Match": `"x"`}, 412, "PreconditionFailed"},
		{"GET", "/tbl/k", map[string]string{"If-None-Match": "*"}, 304, ""},
		{"HEAD", "/tbl/k", map[string]string{"If-Match": `"x"`}, 412, ""},
	}
	for _, tt := range tests {
		body := io.Reader(nil)
		if tt.method == "PUT" && strings.HasPrefix(tt.path, "/tbl/") {
			body = strings.NewReader("new")
		}
		resp, got := h.do(tt.method, tt.path, tt.hdr, body)
		if resp.StatusCode != tt.status || s3Code(got) != tt.code {
			t.Errorf("%s %s: %d %q, want %d %q\n%s", tt.method, tt.path, resp.StatusCode, s3Code(got), tt.status, tt.code, got)
		}
	}
	if got, _ := h.fake.data("tbl", "k"); got != "0123456789" {
		t.Errorf("refused requests changed the object to %q", got)
	}
}

func TestKeysComeFromThePath(t *testing.T) {
	h := newHarness(t, false, nil)
	if err := h.fake.CreateBucket(bg, "keys"); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, key string }{
		{"/keys/a%2Fb", "a/b"},
		{"/keys/a+b", "a+b"},
		{"/keys/a%2Bb", "a+b"},
		{"/keys/a%20b", "a b"},
		{"/keys/x//y/../z", "x//y/../z"},
		{"/keys/./dot", "./dot"},
		{"/keys/..", ".."},
		{"/keys//lead", "/lead"},
		{"/keys/trail/", "trail/"},
		{"/keys/%25", "%"},
		{"/keys/%E6%97%A5%E6%9C%AC", "日本"},
		{"/keys/q%3Fx%23y", "q?x#y"},
	}
	for i, tt := range tests {
		data := fmt.Sprintf("data %d", i)
		resp, body := h.do("PUT", tt.path, nil, strings.NewReader(data))
		if resp.StatusCode != 200 {
			t.Errorf("PUT %s: %d %s", tt.path, resp.StatusCode, body)
			continue
		}
		if got, ok := h.fake.data("keys", tt.key); !ok || got != data {
			t.Errorf("PUT %s stored key %q: %q %v", tt.path, tt.key, got, ok)
		}
		resp, body = h.do("GET", tt.path, nil, nil)
		if resp.StatusCode != 200 || body != data {
			t.Errorf("GET %s: %d %q", tt.path, resp.StatusCode, body)
		}
	}
	for _, p := range []string{"/keys/%00", "/keys/a%0Ab", "/keys/%7F", "/keys/%FF", "/keys/%C3"} {
		resp, body := h.do("PUT", p, nil, strings.NewReader("x"))
		if resp.StatusCode != 400 || s3Code(body) != "InvalidArgument" {
			t.Errorf("PUT %s: %d %s", p, resp.StatusCode, body)
		}
	}
	// An empty key is the bucket.
	resp, body := h.do("PUT", "/newbucket/", nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Location") != "/newbucket" {
		t.Errorf("PUT /newbucket/: %d %s", resp.StatusCode, body)
	}
	if _, err := h.fake.HeadBucket(bg, "newbucket"); err != nil {
		t.Error(err)
	}
}

func TestGetWire(t *testing.T) {
	h := newHarness(t, false, func(c *Config) { c.Region = "eu-west-1" })
	info := h.fake.put("wire", "k", "0123456789")
	h.fake.put("wire", "empty", "")
	etag := `"` + info.ETag + `"`
	lastMod := info.Modified.Format(http.TimeFormat)

	type want struct {
		status int
		body   string
		hdr    map[string]string // "" = must be absent
	}
	tests := []struct {
		name, method, path string
		hdr                map[string]string
		want               want
	}{
		{"full", "GET", "/wire/k", nil, want{200, "0123456789", map[string]string{
			"Content-Length": "10", "ETag": etag, "Last-Modified": lastMod, "Content-Type": "binary/octet-stream",
			"Accept-Ranges": "bytes", "Content-Range": ""}}},
		{"range", "GET", "/wire/k", map[string]string{"Range": "bytes=2-4"}, want{206, "234", map[string]string{
			"Content-Length": "3", "Content-Range": "bytes 2-4/10", "ETag": etag}}},
		{"suffix", "GET", "/wire/k", map[string]string{"Range": "bytes=-3"}, want{206, "789", map[string]string{
			"Content-Range": "bytes 7-9/10"}}},
		{"multi ignored", "GET", "/wire/k", map[string]string{"Range": "bytes=0-1,4-5"}, want{200, "0123456789", map[string]string{
			"Content-Range": ""}}},
		{"garbage ignored", "GET", "/wire/k", map[string]string{"Range": "bytes=x-y"}, want{200, "0123456789", nil}},
		{"unsatisfiable", "GET", "/wire/k", map[string]string{"Range": "bytes=10-"}, want{416, "", map[string]string{
			"Content-Range": "bytes */10", "ETag": ""}}},
		{"head range", "HEAD", "/wire/k", map[string]string{"Range": "bytes=5-"}, want{206, "", map[string]string{
			"Content-Length": "5", "Content-Range": "bytes 5-9/10"}}},
		{"head", "HEAD", "/wire/k", nil, want{200, "", map[string]string{"Content-Length": "10", "ETag": etag}}},
		{"empty", "GET", "/wire/empty", nil, want{200, "", map[string]string{"Content-Length": "0"}}},
		{"empty range", "GET", "/wire/empty", map[string]string{"Range": "bytes=0-"}, want{416, "", map[string]string{
			"Content-Range": "bytes */0"}}},
		{"not modified", "GET", "/wire/k", map[string]string{"If-None-Match": etag}, want{304, "", map[string]string{
			"ETag": etag, "Last-Modified": lastMod}}},
		{"modified since", "GET", "/wire/k", map[string]string{"If-Modified-Since": info.Modified.Add(-time.Second).Format(http.TimeFormat)},
			want{200, "0123456789", nil}},
		{"precondition", "HEAD", "/wire/k", map[string]string{"If-Unmodified-Since": info.Modified.Add(-time.Second).Format(http.TimeFormat)},
			want{412, "", map[string]string{"ETag": ""}}},
		{"overrides", "GET", "/wire/k?response-content-type=text/plain&response-content-disposition=attachment", nil,
			want{200, "0123456789", map[string]string{"Content-Type": "text/plain", "Content-Disposition": "attachment"}}},
		{"location", "GET", "/wire?location", nil, want{200, `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">eu-west-1</LocationConstraint>`, nil}},
		{"head bucket", "HEAD", "/wire", nil, want{200, "", map[string]string{"x-amz-bucket-region": "eu-west-1"}}},
	}
	for _, tt := range tests {
		resp, body := h.do(tt.method, tt.path, tt.hdr, nil)
		if resp.StatusCode != tt.want.status || (tt.want.body != "" || resp.StatusCode < 300) && body != tt.want.body {
			t.Errorf("%s: %d %q, want %d %q", tt.name, resp.StatusCode, body, tt.want.status, tt.want.body)
		}
		for k, v := range tt.want.hdr {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s = %q, want %q", tt.name, k, got, v)
			}
		}
	}
}

func TestPutWire(t *testing.T) {
	h := newHarness(t, false, nil)
	if err := h.fake.CreateBucket(bg, "put"); err != nil {
		t.Fatal(err)
	}
	// No Content-Length (HTTP chunked) and no decoded length.
	req, _ := http.NewRequest("PUT", h.srv.URL+"/put/chunked", io.NopCloser(strings.NewReader("data")))
	req.ContentLength = -1
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 411 || s3Code(string(body)) != "MissingContentLength" {
		t.Errorf("chunked PUT: %d %s", resp.StatusCode, body)
	}

	resp, _ = h.do("PUT", "/put/meta", map[string]string{
		"Content-Type": "text/plain", "X-Amz-Meta-Color": "Blue", "x-amz-meta-EMPTY": "",
	}, strings.NewReader("hello"))
	info, _ := h.fake.StatObject(bg, "put", "meta")
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != `"5d41402abc4b2a76b9719d911017c592"` ||
		info.ContentType != "text/plain" || len(info.UserMeta) != 2 || info.UserMeta["color"] != "Blue" {
		t.Errorf("PUT with metadata: %d %q %+v", resp.StatusCode, resp.Header.Get("ETag"), info)
	}
	resp, _ = h.do("GET", "/put/meta", nil, nil)
	if resp.Header.Get("X-Amz-Meta-Color") != "Blue" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("GET headers %v", resp.Header)
	}
	resp, _ = h.do("PUT", "/put/md5", map[string]string{"Content-MD5": "XUFAKrxLKna5cZ2REBfFkg=="}, strings.NewReader("hello"))
	if resp.StatusCode != 200 {
		t.Errorf("PUT with a good Content-MD5: %d", resp.StatusCode)
	}
}

// A body that ends before its Content-Length creates nothing.
func TestPutShortBody(t *testing.T) {
	h := newHarness(t, false, nil)
	if err := h.fake.CreateBucket(bg, "short"); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(h.srv.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /short/obj HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\n\r\n0123456789", u.Host)
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || s3Code(string(body)) != "IncompleteBody" {
		t.Errorf("short body: %d %s", resp.StatusCode, body)
	}
	if _, ok := h.fake.data("short", "obj"); ok {
		t.Error("a short body created the object")
	}
	h.fake.mu.Lock()
	puts, perr := h.fake.puts, h.fake.lastPutErr
	h.fake.mu.Unlock()
	if puts != 1 || perr == nil {
		t.Errorf("backend saw %d puts, last error %v; want 1 failed put", puts, perr)
	}
}

func TestGetAbortsOnRawConnection(t *testing.T) {
	h := newHarness(t, false, nil)
	data := strings.Repeat("abcdefgh", 8192)
	h.fake.put("abort", "k", data)

	// Failing after the response has reached the wire: the body breaks.
	h.fake.failAfter = 40000
	resp, err := h.srv.Client().Get(h.srv.URL + "/abort/k")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(data)) {
		t.Fatalf("status %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	got, err := io.ReadAll(resp.Body)
	if err == nil || len(got) > 40000 || string(got) != data[:len(got)] {
		t.Errorf("read %d bytes, err %v; want at most 40000 correct bytes, then an error", len(got), err)
	}

	// Failing while the first bytes are still buffered in the server: the
	// connection drops before a status line is seen.
	h.fake.failAfter = 1000
	if resp, err := h.srv.Client().Get(h.srv.URL + "/abort/k"); err == nil {
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("read %d bytes without error", len(got))
		}
	}
}

func TestACLAndListBucketsXML(t *testing.T) {
	h := newHarness(t, false, nil)
	h.fake.put("acl", "k", "x")
	resp, body := h.do("GET", "/acl/k?acl", nil, nil)
	want := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>kintsugi</ID><DisplayName>kintsugi</DisplayName></Owner>` +
		`<AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">` +
		`<ID>kintsugi</ID><DisplayName>kintsugi</DisplayName></Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>`
	if resp.StatusCode != 200 || body != want {
		t.Errorf("object acl: %d\n%s\nwant\n%s", resp.StatusCode, body, want)
	}
	resp, body = h.do("GET", "/acl/missing?acl", nil, nil)
	if resp.StatusCode != 404 || s3Code(body) != "NoSuchKey" {
		t.Errorf("acl of a missing key: %d %s", resp.StatusCode, body)
	}
	b, _ := h.fake.HeadBucket(bg, "acl")
	_, body = h.do("GET", "/", nil, nil)
	want = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>kintsugi</ID><DisplayName>kintsugi</DisplayName></Owner>` +
		`<Buckets><Bucket><Name>acl</Name><CreationDate>` + b.Created.Format("2006-01-02T15:04:05.000Z") + `</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>`
	if body != want {
		t.Errorf("list buckets:\n%s\nwant\n%s", body, want)
	}
}

func TestListXML(t *testing.T) {
	h := newHarness(t, false, nil)
	info := h.fake.put("lxb", "a b/c", "12345")
	h.fake.put("lxb", "d", "x")
	_, body := h.do("GET", "/lxb?list-type=2&delimiter=/&encoding-type=url&max-keys=1&fetch-owner=true", nil, nil)
	want := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>lxb</Name><Prefix></Prefix><Delimiter>/</Delimiter>` +
		`<NextContinuationToken>` + encodeToken("a b/") + `</NextContinuationToken><KeyCount>1</KeyCount><MaxKeys>1</MaxKeys>` +
		`<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><CommonPrefixes><Prefix>a%20b/</Prefix></CommonPrefixes></ListBucketResult>`
	if body != want {
		t.Errorf("v2:\n%s\nwant\n%s", body, want)
	}
	_, body = h.do("GET", "/lxb?prefix=a", nil, nil)
	want = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>lxb</Name><Prefix>a</Prefix><Marker></Marker>` +
		`<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>a b/c</Key><LastModified>` +
		info.Modified.Format("2006-01-02T15:04:05.000Z") + `</LastModified><ETag>&#34;827ccb0eea8a706c4c34a16891f84e7b&#34;</ETag>` +
		`<Size>5</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>`
	if body != want {
		t.Errorf("v1:\n%s\nwant\n%s", body, want)
	}
}

// panicBackend panics in ListBuckets.
type panicBackend struct{ *fakeBackend }

func (panicBackend) ListBuckets(ctx context.Context) ([]objects.BucketInfo, error) {
	panic("listing exploded")
}

func TestPanicRecovery(t *testing.T) {
	h := newHarness(t, false, func(c *Config) { c.Backend = panicBackend{newFake()} })
	resp, body := h.do("GET", "/", nil, nil)
	if resp.StatusCode != 500 || s3Code(body) != "InternalError" {
		t.Errorf("panic: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.do("GET", "/-/healthy", nil, nil); resp.StatusCode != 200 {
		t.Errorf("after a panic: %d", resp.StatusCode)
	}
	if !strings.Contains(h.logs.String(), "listing exploded") {
		t.Errorf("panic not logged:\n%s", h.logs.String())
	}
}

func TestRequestLog(t *testing.T) {
	h := newHarness(t, false, nil)
	h.fake.put("logs", "k", "hello")
	h.fake.putErr = objects.ErrQuorum
	type line struct {
		Level, Msg, Method, Path, RequestID string
		Status, Bytes                       int
		Duration                            int64
		Err                                 string
	}
	for _, tt := range []struct {
		method, path string
		status       int
		level        string
		bytes        int
	}{
		{"GET", "/logs/k", 200, "DEBUG", 5},
		{"GET", "/logs/nope", 404, "INFO", -1},
		{"PUT", "/logs/new", 503, "WARN", -1},
	} {
		var body io.Reader
		if tt.method == "PUT" {
			body = strings.NewReader("x")
		}
		resp, _ := h.do(tt.method, tt.path, nil, body)
		id := resp.Header.Get("x-amz-request-id")
		var found *line
		for _, s := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
			var l line
			raw := map[string]any{}
			if err := json.Unmarshal([]byte(s), &raw); err != nil {
				t.Fatalf("log line %q: %v", s, err)
			}
			if raw["request_id"] != id {
				continue
			}
			l.Level, l.Msg, l.Method, l.Path = raw["level"].(string), raw["msg"].(string), raw["method"].(string), raw["path"].(string)
			l.Status, l.Bytes = int(raw["status"].(float64)), int(raw["bytes"].(float64))
			l.Err, _ = raw["err"].(string)
			_, hasDur := raw["duration"]
			if !hasDur {
				t.Errorf("no duration in %s", s)
			}
			found = &l
		}
		if found == nil {
			t.Fatalf("%s %s: no log line with request id %s", tt.method, tt.path, id)
		}
		if found.Level != tt.level || found.Method != tt.method || found.Path != tt.path || found.Status != tt.status ||
			(tt.bytes >= 0 && found.Bytes != tt.bytes) || (tt.status >= 400) != (found.Err != "") {
			t.Errorf("%s %s: log %+v", tt.method, tt.path, *found)
		}
	}
}

// An aws-chunked body whose trailing checksum is wrong creates nothing,
// although the Backend stops reading at the declared length: the trailer
// is checked before the last byte is handed over.
func TestPutChunkedTrailerMismatch(t *testing.T) {
	h := newHarness(t, false, nil)
	if err := h.fake.CreateBucket(bg, "trl"); err != nil {
		t.Fatal(err)
	}
	data := strings.Repeat("0123456789abcdef", 4096)
	crc := crc32.ChecksumIEEE([]byte(data))
	for _, tt := range []struct {
		name   string
		sum    uint32
		status int
		code   string
	}{
		{"wrong", crc + 1, 400, "BadDigest"},
		{"right", crc, 200, ""},
	} {
		var sum [4]byte
		binary.BigEndian.PutUint32(sum[:], tt.sum)
		body := fmt.Sprintf("%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n",
			len(data), data, base64.StdEncoding.EncodeToString(sum[:]))
		resp, got := h.do("PUT", "/trl/"+tt.name, map[string]string{
			"X-Amz-Content-Sha256":         "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
			"Content-Encoding":             "aws-chunked",
			"X-Amz-Decoded-Content-Length": fmt.Sprint(len(data)),
			"X-Amz-Trailer":                "x-amz-checksum-crc32",
		}, strings.NewReader(body))
		if resp.StatusCode != tt.status || s3Code(got) != tt.code {
			t.Errorf("%s: %d %s", tt.name, resp.StatusCode, got)
		}
		stored, ok := h.fake.data("trl", tt.name)
		if ok != (tt.status == 200) || ok && stored != data {
			t.Errorf("%s: stored %v (%d bytes)", tt.name, ok, len(stored))
		}
		if tt.status == 200 && resp.Header.Get("X-Amz-Checksum-Crc32") != base64.StdEncoding.EncodeToString(sum[:]) {
			t.Errorf("%s: checksum not echoed: %v", tt.name, resp.Header)
		}
	}
}

// A write that lost its commit quorum to a concurrent write of the key,
// or to a cluster map change, answers 503 ServiceUnavailable, which SDKs
// retry, like a lost quorum, but with a message that says the nodes were
// not the cause.
func TestWireCommitShortfallMessage(t *testing.T) {
	const nodesMsg = "Not enough storage nodes are available to serve the request. Please try again."
	tests := []struct {
		name    string
		err     error
		message string
	}{
		{"nodes down", fmt.Errorf("%w: committed 3 of 6 shards, need 5", objects.ErrQuorum), nodesMsg},
		{"concurrent write won", fmt.Errorf("%w: %w: committed 3 of 6 shards, need 5; 3 refused as holding a newer version", objects.ErrQuorum, objects.ErrSuperseded), SupersededMessage},
		{"map changed", fmt.Errorf("%w: %w: committed 0 of 6 shards, need 5; 5 refused as holding a newer cluster map", objects.ErrQuorum, objects.ErrMapChanged), MapChangedMessage},
	}
	h := newHarness(t, false, nil)
	h.fake.put("race", "seed", "x")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h.fake.putErr = tc.err
			resp, body := h.do("PUT", "/race/k", nil, strings.NewReader("data"))
			if resp.StatusCode != http.StatusServiceUnavailable || s3Code(body) != "ServiceUnavailable" {
				t.Fatalf("status %d, code %q, want 503 ServiceUnavailable: %s", resp.StatusCode, s3Code(body), body)
			}
			if want := "<Message>" + tc.message + "</Message>"; !strings.Contains(body, want) {
				t.Errorf("body %s, want %s", body, want)
			}
		})
	}
	h.fake.putErr = nil
}
