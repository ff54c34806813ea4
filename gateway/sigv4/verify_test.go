package sigv4

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestVerifyHeaderSDKSigner(t *testing.T) {
	body := []byte("hello, kintsugi\n")
	tests := []struct {
		name     string
		method   string
		path     string
		query    string
		body     []byte
		hash     string // x-amz-content-sha256; "" = sha256 of body
		headers  map[string][]string
		wantBody []byte
	}{
		{name: "get", method: "GET", path: "/bucket/key"},
		{name: "head", method: "HEAD", path: "/bucket/key"},
		{name: "delete", method: "DELETE", path: "/bucket/key"},
		{name: "put digest", method: "PUT", path: "/bucket/key", body: body, wantBody: body},
		{name: "put unsigned", method: "PUT", path: "/bucket/key", body: body, hash: unsignedPayload, wantBody: body},
		{name: "put empty", method: "PUT", path: "/bucket/empty", body: []byte{}, wantBody: []byte{}},
		{name: "list query", method: "GET", path: "/bucket", query: "list-type=2&prefix=a%20b%2Bc&delimiter=%2F&max-keys=10&start-after=%C3%BC"},
		{name: "subresource", method: "GET", path: "/bucket", query: "acl"},
		{name: "empty values", method: "POST", path: "/bucket/key", query: "uploads=&z=1&a="},
		{name: "repeated param", method: "GET", path: "/bucket", query: "x=2&x=1&x=10"},
		{name: "service", method: "GET", path: "/"},
		{name: "space", method: "GET", path: "/bucket/a key with  spaces"},
		{name: "unicode", method: "GET", path: "/bucket/ünïcødé/ключ/日本語"},
		{name: "plus", method: "PUT", path: "/bucket/a+b+c", body: body, wantBody: body},
		{name: "percent", method: "GET", path: "/bucket/100%/%2F%zz"},
		{name: "sub-delims", method: "GET", path: "/bucket/!$&'()*,;=:@"},
		{name: "unreserved", method: "GET", path: "/bucket/~tilde_-.dot"},
		{name: "query chars in key", method: "GET", path: "/bucket/what?is#this"},
		{name: "double slash", method: "GET", path: "/bucket/dir//file/"},
		{name: "dot segments", method: "GET", path: "/bucket/a/./b/../c"},
		{name: "meta headers", method: "PUT", path: "/bucket/key", body: body, wantBody: body, headers: map[string][]string{
			"X-Amz-Meta-Note":  {"  several   inner   spaces  "},
			"X-Amz-Meta-Multi": {"one", " two "},
			"Content-Type":     {"text/plain; charset=utf-8"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newClientRequest(t, tt.method, tt.path, tt.query, tt.body)
			for k, v := range tt.headers {
				r.Header[k] = v
			}
			hash := tt.hash
			if hash == "" {
				hash = sha256Hex(tt.body)
			}
			signHeader(t, r, testSecret, hash, signTime)
			sr := toServer(t, r)
			res, err := testVerifier().Verify(sr)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.AccessKey != testAccessKey {
				t.Errorf("AccessKey = %q", res.AccessKey)
			}
			got, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatalf("read body: %v", err)
			}
			if !bytes.Equal(got, tt.wantBody) && !(len(got) == 0 && len(tt.wantBody) == 0) {
				t.Errorf("body = %q, want %q", got, tt.wantBody)
			}
			if tt.body != nil && res.Length != int64(len(tt.body)) {
				t.Errorf("Length = %d, want %d", res.Length, len(tt.body))
			}
		})
	}
}

// TestVerifyRawPathForms checks a client that escapes the path less
// strictly than S3 and signs what it sends.
func TestVerifyRawPathForms(t *testing.T) {
	for _, path := range []string{"/bucket/a+b$c", "/bucket/a,b;c=d@e:f", "/bucket/x%20y"} {
		t.Run(path, func(t *testing.T) {
			r, err := http.NewRequest("GET", "http://"+testHost+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			signHeader(t, r, testSecret, emptySHA256, signTime)
			if _, err := testVerifier().Verify(toServer(t, r)); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestVerifyHeaderErrors(t *testing.T) {
	body := []byte("payload")
	tests := []struct {
		name   string
		mutate func(t *testing.T, r *http.Request) *http.Request // on the signed client request
		v      func(v *Verifier)
		sign   func(t *testing.T, r *http.Request)
		code   string
	}{
		{name: "wrong secret", sign: func(t *testing.T, r *http.Request) {
			signHeader(t, r, "not-the-secret", sha256Hex(body), signTime)
		}, code: codeSignatureDoesNotMatch},
		{name: "unknown key", v: func(v *Verifier) { v.Creds = StaticCredentials{"SOMEONEELSE": testSecret} }, code: codeInvalidAccessKeyID},
		{name: "nil creds", v: func(v *Verifier) { v.Creds = nil }, code: codeInvalidAccessKeyID},
		{name: "skew past", v: func(v *Verifier) { v.Now = func() time.Time { return signTime.Add(16 * time.Minute) } }, code: codeRequestTimeTooSkewed},
		{name: "skew future", v: func(v *Verifier) { v.Now = func() time.Time { return signTime.Add(-16 * time.Minute) } }, code: codeRequestTimeTooSkewed},
		{name: "custom skew", v: func(v *Verifier) {
			v.MaxSkew = time.Minute
			v.Now = func() time.Time { return signTime.Add(61 * time.Second) }
		}, code: codeRequestTimeTooSkewed},
		{name: "wrong region", v: func(v *Verifier) { v.Region = "eu-west-1" }, code: codeHeaderMalformed},
		{name: "tampered path", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.URL.Path, r.URL.RawPath = "/bucket/other", ""
			return r
		}, code: codeSignatureDoesNotMatch},
		{name: "tampered query", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.URL.RawQuery = "versionId=2"
			return r
		}, code: codeSignatureDoesNotMatch},
		{name: "tampered method", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Method = "POST"
			return r
		}, code: codeSignatureDoesNotMatch},
		{name: "tampered signed header", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Set("X-Amz-Meta-Color", "red")
			return r
		}, code: codeSignatureDoesNotMatch},
		{name: "tampered host", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Host = "evil.test"
			return r
		}, code: codeSignatureDoesNotMatch},
		{name: "tampered date", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Set("X-Amz-Date", signTime.Add(time.Second).Format(amzDateFormat))
			return r
		}, code: codeSignatureDoesNotMatch},
		// An altered signature does not match, whatever its length or
		// alphabet; only a missing one is malformed.
		{name: "signature shortened", mutate: alterSignature(func(s string) string { return s[:len(s)-1] }), code: codeSignatureDoesNotMatch},
		{name: "signature lengthened", mutate: alterSignature(func(s string) string { return s + "0" }), code: codeSignatureDoesNotMatch},
		{name: "signature doubled", mutate: alterSignature(func(s string) string { return s + s }), code: codeSignatureDoesNotMatch},
		{name: "signature upper-case", mutate: alterSignature(strings.ToUpper), code: codeSignatureDoesNotMatch},
		{name: "signature not hex", mutate: alterSignature(func(s string) string { return "zz" + s[2:] }), code: codeSignatureDoesNotMatch},
		{name: "signature one char", mutate: alterSignature(func(string) string { return "a" }), code: codeSignatureDoesNotMatch},
		{name: "signature empty", mutate: alterSignature(func(string) string { return "" }), code: codeHeaderMalformed},
		{name: "unsigned amz header", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Set("X-Amz-Copy-Source", "/secret/object")
			return r
		}, code: codeAccessDenied},
		{name: "bad date", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Set("X-Amz-Date", "yesterday")
			return r
		}, code: codeAccessDenied},
		{name: "no date", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Del("X-Amz-Date")
			return r
		}, code: codeAccessDenied},
		{name: "scope date differs", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Set("X-Amz-Date", signTime.Add(24*time.Hour).Format(amzDateFormat))
			return r
		}, code: codeHeaderMalformed},
		{name: "bad payload hash", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Set("X-Amz-Content-Sha256", "SHA-PLEASE")
			return r
		}, code: codeInvalidArgument},
		{name: "missing payload hash", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Del("X-Amz-Content-Sha256")
			return r
		}, code: codeInvalidRequest},
		{name: "sigv2", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Set("Authorization", "AWS "+testAccessKey+":c2lnbmF0dXJl")
			return r
		}, code: codeInvalidRequest},
		{name: "header and presign", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256"
			return r
		}, code: codeInvalidArgument},
		{name: "anonymous", mutate: func(t *testing.T, r *http.Request) *http.Request {
			r.Header.Del("Authorization")
			return r
		}, code: codeAccessDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newClientRequest(t, "PUT", "/bucket/key", "", body)
			r.Header.Set("X-Amz-Meta-Color", "blue")
			if tt.sign != nil {
				tt.sign(t, r)
			} else {
				signHeader(t, r, testSecret, sha256Hex(body), signTime)
			}
			if tt.mutate != nil {
				r = tt.mutate(t, r)
			}
			v := testVerifier()
			if tt.v != nil {
				tt.v(v)
			}
			res, err := v.Verify(toServer(t, r))
			if res != nil {
				t.Errorf("Verify returned a result with error %v", err)
			}
			wantCode(t, err, tt.code)
		})
	}
}

func TestVerifySkewBoundary(t *testing.T) {
	for _, d := range []time.Duration{-15 * time.Minute, -time.Minute, 0, 14*time.Minute + 59*time.Second, 15 * time.Minute} {
		r := newClientRequest(t, "GET", "/bucket/key", "", nil)
		signHeader(t, r, testSecret, emptySHA256, signTime)
		v := testVerifier()
		v.Now = func() time.Time { return signTime.Add(d) }
		if _, err := v.Verify(toServer(t, r)); err != nil {
			t.Errorf("clock %v from signing time: %v", d, err)
		}
	}
}

func TestVerifyAnyRegion(t *testing.T) {
	r := newClientRequest(t, "GET", "/bucket/key", "", nil)
	r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	if err := s3Signer().SignHTTP(t.Context(), testCreds(testSecret), r, emptySHA256, "s3", "kintsugi-local", signTime); err != nil {
		t.Fatal(err)
	}
	v := testVerifier()
	v.Region = ""
	if _, err := v.Verify(toServer(t, r)); err != nil {
		t.Fatalf("empty Region must accept any region: %v", err)
	}
	v.Region = testRegion
	_, err := v.Verify(toServer(t, r))
	wantCode(t, err, codeHeaderMalformed)
}

func TestVerifyTamperedBody(t *testing.T) {
	body := []byte(strings.Repeat("stripe data ", 10000))
	r := newClientRequest(t, "PUT", "/bucket/key", "", body)
	signHeader(t, r, testSecret, sha256Hex(body), signTime)
	tampered := bytes.Clone(body)
	tampered[len(tampered)/2] ^= 1
	r.Body = io.NopCloser(bytes.NewReader(tampered))
	res, err := testVerifier().Verify(toServer(t, r))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	got, err := io.ReadAll(res.Body)
	wantCode(t, err, codeSHA256Mismatch)
	if len(got) != len(body) {
		t.Errorf("read %d bytes before the error, want %d", len(got), len(body))
	}
	// The failure is sticky.
	n, err := res.Body.Read(make([]byte, 10))
	if n != 0 {
		t.Errorf("read %d bytes after the failure", n)
	}
	wantCode(t, err, codeSHA256Mismatch)
}

func TestVerifyOneByteReads(t *testing.T) {
	body := []byte(strings.Repeat("0123456789", 500))
	r := newClientRequest(t, "PUT", "/bucket/key", "", body)
	signHeader(t, r, testSecret, sha256Hex(body), signTime)
	sr := toServer(t, r)
	sr.Body = io.NopCloser(iotest.OneByteReader(sr.Body))
	res, err := testVerifier().Verify(sr)
	if err != nil {
		t.Fatal(err)
	}
	if err := iotest.TestReader(res.Body, body); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyShortBody(t *testing.T) {
	body := []byte("0123456789")
	r := newClientRequest(t, "PUT", "/bucket/key", "", body)
	signHeader(t, r, testSecret, sha256Hex(body), signTime)
	sr := toServer(t, r)
	// The connection closes after 4 of the 10 declared bytes.
	sr.Body = io.NopCloser(io.MultiReader(strings.NewReader("0123"), iotest.ErrReader(io.ErrUnexpectedEOF)))
	res, err := testVerifier().Verify(sr)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(res.Body)
	wantCode(t, err, codeIncompleteBody)
}

func TestVerifyBodyErrorPassesThrough(t *testing.T) {
	body := []byte("0123456789")
	r := newClientRequest(t, "PUT", "/bucket/key", "", body)
	signHeader(t, r, testSecret, unsignedPayload, signTime)
	sr := toServer(t, r)
	boom := io.ErrClosedPipe
	sr.Body = io.NopCloser(iotest.ErrReader(boom))
	res, err := testVerifier().Verify(sr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(res.Body); err != boom {
		t.Fatalf("err = %v, want %v", err, boom)
	}
}

func TestVerifyHeaderDigests(t *testing.T) {
	body := []byte("the quick brown fox")
	md5sum := md5.Sum(body)
	goodMD5 := base64.StdEncoding.EncodeToString(md5sum[:])
	crc := crc32.ChecksumIEEE(body)
	goodCRC := base64.StdEncoding.EncodeToString([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)})
	tests := []struct {
		name      string
		headers   map[string]string
		query     string
		verifyErr string // code from Verify
		readErr   string // code at EOF
	}{
		{name: "md5 ok", headers: map[string]string{"Content-Md5": goodMD5}},
		{name: "md5 mismatch", headers: map[string]string{"Content-Md5": "1B2M2Y8AsgTpgAmY7PhCfg=="}, readErr: codeBadDigest},
		{name: "md5 invalid", headers: map[string]string{"Content-Md5": "not-base64!"}, verifyErr: codeInvalidDigest},
		{name: "md5 wrong size", headers: map[string]string{"Content-Md5": "AAAA"}, verifyErr: codeInvalidDigest},
		{name: "crc32 ok", headers: map[string]string{"X-Amz-Checksum-Crc32": goodCRC}},
		{name: "crc32 mismatch", headers: map[string]string{"X-Amz-Checksum-Crc32": "AAAAAA=="}, readErr: codeBadDigest},
		{name: "crc32 invalid", headers: map[string]string{"X-Amz-Checksum-Crc32": "AAAA"}, verifyErr: codeInvalidRequest},
		{name: "both ok", headers: map[string]string{"Content-Md5": goodMD5, "X-Amz-Checksum-Crc32": goodCRC}},
		{name: "complete multipart ignores checksum", headers: map[string]string{"X-Amz-Checksum-Crc32": "AAAAAA=="}, query: "uploadId=abc"},
		{name: "trailer without trailer mode", headers: map[string]string{"X-Amz-Trailer": "x-amz-checksum-crc32"}, verifyErr: codeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newClientRequest(t, "POST", "/bucket/key", tt.query, body)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			signHeader(t, r, testSecret, unsignedPayload, signTime)
			res, err := testVerifier().Verify(toServer(t, r))
			if tt.verifyErr != "" {
				wantCode(t, err, tt.verifyErr)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got, err := io.ReadAll(res.Body)
			if tt.readErr != "" {
				wantCode(t, err, tt.readErr)
				return
			}
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("read = %q, %v", got, err)
			}
		})
	}
}

func TestRequestTimeDateHeader(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://"+testHost+"/", nil)
	r.Header.Set("Date", "Mon, 06 May 2024 07:08:09 GMT")
	amz, at, err := requestTime(r)
	if err != nil {
		t.Fatal(err)
	}
	if amz != "20240506T070809Z" || !at.Equal(signTime) {
		t.Fatalf("requestTime = %q, %v", amz, at)
	}
	r.Header.Set("X-Amz-Date", "20240506T070810Z")
	if amz, _, _ := requestTime(r); amz != "20240506T070810Z" {
		t.Fatalf("X-Amz-Date must win over Date, got %q", amz)
	}
}

// TestVerifyDateHeader signs with Date instead of X-Amz-Date, following
// the SigV4 documentation step by step.
func TestVerifyDateHeader(t *testing.T) {
	r := toServer(t, newClientRequest(t, "GET", "/bucket/a b", "", nil))
	r.Header.Set("Date", signTime.Format(http.TimeFormat))
	r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	canonical := "GET\n/bucket/a%20b\n\n" +
		"date:" + signTime.Format(http.TimeFormat) + "\n" +
		"host:" + testHost + "\n" +
		"x-amz-content-sha256:" + emptySHA256 + "\n\n" +
		"date;host;x-amz-content-sha256\n" + emptySHA256
	scope := "20240506/" + testRegion + "/s3/aws4_request"
	sts := "AWS4-HMAC-SHA256\n20240506T070809Z\n" + scope + "\n" + sha256Hex([]byte(canonical))
	sig := hmacHex(testSigningKey(testSecret, signTime), sts)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testAccessKey+"/"+scope+",SignedHeaders=date;host;x-amz-content-sha256,Signature="+sig)
	if _, err := testVerifier().Verify(r); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestUnauthenticated(t *testing.T) {
	body := []byte("anyone may write")
	r := newClientRequest(t, "PUT", "/bucket/key", "", body)
	r.Header.Set("X-Amz-Content-Sha256", sha256Hex(body))
	res, err := Unauthenticated(toServer(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(res.Body); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read = %q, %v", got, err)
	}
	if res.AccessKey != "" || res.Length != int64(len(body)) {
		t.Fatalf("AccessKey %q Length %d", res.AccessKey, res.Length)
	}

	r = newClientRequest(t, "PUT", "/bucket/key", "", body)
	r.Header.Set("X-Amz-Content-Sha256", sha256Hex([]byte("something else")))
	res, err = Unauthenticated(toServer(t, r))
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(res.Body)
	wantCode(t, err, codeSHA256Mismatch)

	r = newClientRequest(t, "PUT", "/bucket/key", "", body)
	res, err = Unauthenticated(toServer(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(res.Body); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read = %q, %v", got, err)
	}

	r = newClientRequest(t, "PUT", "/bucket/key", "", body)
	r.Header.Set("X-Amz-Content-Sha256", "bogus")
	_, err = Unauthenticated(toServer(t, r))
	wantCode(t, err, codeInvalidArgument)
}

func TestErrorStatus(t *testing.T) {
	for code, status := range map[string]int{
		codeAccessDenied: 403, codeInvalidAccessKeyID: 403, codeSignatureDoesNotMatch: 403,
		codeRequestTimeTooSkewed: 403, codeSHA256Mismatch: 400, codeHeaderMalformed: 400,
		codeQueryParametersError: 400, codeIncompleteBody: 400, codeInvalidDigest: 400,
		codeBadDigest: 400, codeInvalidRequest: 400, codeInvalidArgument: 400,
	} {
		e := newError(code, "m")
		if e.Status != status || e.Code != code {
			t.Errorf("newError(%s) = %+v, want status %d", code, e, status)
		}
		if got, want := e.Error(), "sigv4: "+code+": m"; got != want {
			t.Errorf("Error() = %q, want %q", got, want)
		}
	}
}

// alterSignature rewrites the Signature field of a signed request's
// Authorization header with f.
func alterSignature(f func(string) string) func(t *testing.T, r *http.Request) *http.Request {
	return func(t *testing.T, r *http.Request) *http.Request {
		h := r.Header.Get("Authorization")
		i := strings.LastIndex(h, "Signature=")
		if i < 0 {
			t.Fatalf("no signature in %q", h)
		}
		r.Header.Set("Authorization", h[:i]+"Signature="+f(h[i+len("Signature="):]))
		return r
	}
}
