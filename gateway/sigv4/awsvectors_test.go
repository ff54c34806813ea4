package sigv4

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The examples published in the Amazon S3 API reference ("Signature
// Calculations for the Authorization Header", "... Query Parameters",
// "... Transferring Payload in Multiple Chunks" and "... Trailing
// Headers"): if these verify, the canonicalisation matches the real
// service and not merely the SDK.
const (
	docAccessKey = "AKIAIOSFODNN7EXAMPLE"
	docSecret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

var docTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

func docVerifier() *Verifier {
	return &Verifier{
		Creds:  StaticCredentials{docAccessKey: docSecret},
		Region: "us-east-1",
		Now:    func() time.Time { return docTime },
	}
}

// rawRequest parses an HTTP/1.1 request written with \n line ends.
func rawRequest(t *testing.T, head string, body []byte) *http.Request {
	t.Helper()
	wire := strings.ReplaceAll(strings.TrimLeft(head, "\n"), "\n", "\r\n") + "\r\n"
	r, err := http.ReadRequest(bufio.NewReader(io.MultiReader(strings.NewReader(wire), bytes.NewReader(body))))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAWSDocumentedExamples(t *testing.T) {
	const cred = "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
	tests := []struct {
		name string
		head string
		body string
	}{
		{"GET object", `
GET /test.txt HTTP/1.1
Host: examplebucket.s3.amazonaws.com
Authorization: AWS4-HMAC-SHA256 ` + cred + `,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41
Range: bytes=0-9
x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
x-amz-date: 20130524T000000Z
`, ""},
		{"PUT object", `
PUT /test%24file.text HTTP/1.1
Host: examplebucket.s3.amazonaws.com
Date: Fri, 24 May 2013 00:00:00 GMT
Authorization: AWS4-HMAC-SHA256 ` + cred + `,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd
x-amz-date: 20130524T000000Z
x-amz-storage-class: REDUCED_REDUNDANCY
x-amz-content-sha256: 44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072
Content-Length: 21
`, "Welcome to Amazon S3."},
		{"PUT object, raw dollar", `
PUT /test$file.text HTTP/1.1
Host: examplebucket.s3.amazonaws.com
Date: Fri, 24 May 2013 00:00:00 GMT
Authorization: AWS4-HMAC-SHA256 ` + cred + `,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd
x-amz-date: 20130524T000000Z
x-amz-storage-class: REDUCED_REDUNDANCY
x-amz-content-sha256: 44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072
Content-Length: 21
`, "Welcome to Amazon S3."},
		{"GET bucket lifecycle", `
GET /?lifecycle HTTP/1.1
Host: examplebucket.s3.amazonaws.com
Authorization: AWS4-HMAC-SHA256 ` + cred + `,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543
x-amz-date: 20130524T000000Z
x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
`, ""},
		{"list objects", `
GET /?max-keys=2&prefix=J HTTP/1.1
Host: examplebucket.s3.amazonaws.com
Authorization: AWS4-HMAC-SHA256 ` + cred + `,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7
x-amz-date: 20130524T000000Z
x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
`, ""},
		{"presigned GET", `
GET /test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404 HTTP/1.1
Host: examplebucket.s3.amazonaws.com
`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := docVerifier().Verify(rawRequest(t, tt.head, []byte(tt.body)))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.AccessKey != docAccessKey {
				t.Errorf("AccessKey = %q", res.AccessKey)
			}
			got, err := io.ReadAll(res.Body)
			if err != nil || string(got) != tt.body {
				t.Fatalf("body = %q, %v", got, err)
			}
		})
	}
}

func docChunks(sigs [3]string, trailer string) []byte {
	var b bytes.Buffer
	b.WriteString("10000;chunk-signature=" + sigs[0] + "\r\n")
	b.Write(bytes.Repeat([]byte("a"), 65536))
	b.WriteString("\r\n400;chunk-signature=" + sigs[1] + "\r\n")
	b.Write(bytes.Repeat([]byte("a"), 1024))
	b.WriteString("\r\n0;chunk-signature=" + sigs[2] + "\r\n")
	b.WriteString(trailer)
	b.WriteString("\r\n")
	return b.Bytes()
}

func TestAWSDocumentedChunkedUpload(t *testing.T) {
	body := docChunks([3]string{
		"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
		"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
		"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
	}, "")
	if len(body) != 66824 {
		t.Fatalf("encoded length %d, the example says 66824", len(body))
	}
	r := rawRequest(t, `
PUT /examplebucket/chunkObject.txt HTTP/1.1
Host: s3.amazonaws.com
x-amz-date: 20130524T000000Z
x-amz-storage-class: REDUCED_REDUNDANCY
Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9
x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD
Content-Encoding: aws-chunked
x-amz-decoded-content-length: 66560
Content-Length: 66824
`, body)
	res, err := docVerifier().Verify(r)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	got, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, bytes.Repeat([]byte("a"), 66560)) || res.Length != 66560 {
		t.Fatalf("decoded %d bytes, Length %d", len(got), res.Length)
	}
}

// TestAWSDocumentedSignedTrailer checks the chunk and trailer signatures of
// the trailing-headers example, chained from its published seed signature.
func TestAWSDocumentedSignedTrailer(t *testing.T) {
	cred := credential{accessKey: docAccessKey, date: "20130524", region: "us-east-1"}
	for _, tc := range []struct {
		name    string
		trailer string
		code    string
	}{
		{"as published", "x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n", ""},
		{"empty line before trailers", "\r\nx-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n", ""},
		{"other value", "x-amz-checksum-crc32c:sOO8/A==\r\nx-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n", codeSignatureDoesNotMatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := docChunks([3]string{
				"b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
				"1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
				"2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
			}, tc.trailer)
			signer := &chunkSigner{
				key:     signingKey(docSecret, cred),
				amzDate: "20130524T000000Z",
				scope:   cred.scope(),
				prev:    "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
			}
			dec := newChunkedReader(bytes.NewReader(body), payloadSignedTrailer, signer, []string{"x-amz-checksum-crc32c"})
			got, err := io.ReadAll(dec)
			if tc.code != "" {
				wantCode(t, err, tc.code)
				return
			}
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, bytes.Repeat([]byte("a"), 66560)) {
				t.Fatalf("decoded %d bytes", len(got))
			}
			if v := dec.trailers.Get("x-amz-checksum-crc32c"); v != "sOO8/Q==" {
				t.Errorf("trailer = %q", v)
			}
		})
	}
}
