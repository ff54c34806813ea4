package sigv4

import (
	"bytes"
	"io"
	"net/url"
	"strings"
	"testing"
)

func FuzzParseAuthorization(f *testing.F) {
	sig := strings.Repeat("0a", 32)
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20240506/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig)
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/20240506/r/s3/aws4_request,SignedHeaders=host,Signature=" + sig)
	f.Add("AWS4-HMAC-SHA256 ,,,=,Credential=,SignedHeaders=;;,Signature=")
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20240506/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + sig[:7] + "XYZ")
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20240506/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + sig + sig)
	f.Add("AWS AKID:sig")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		p, err := parseAuthorization(h)
		if err != nil {
			if p.signature != "" || p.cred.accessKey != "" {
				t.Fatalf("error %v with a result %+v", err, p)
			}
			return
		}
		if p.signature == "" || p.cred.accessKey == "" || len(p.cred.date) != 8 || p.cred.region == "" {
			t.Fatalf("accepted %q as %+v", h, p)
		}
		if !contains(p.signedHeaders, "host") {
			t.Fatalf("accepted %q without host signed", h)
		}
		if !strings.HasPrefix(h, algorithm+" ") && !strings.HasPrefix(h, algorithm+"\t") {
			t.Fatalf("accepted %q", h)
		}
	})
}

func FuzzParsePresign(f *testing.F) {
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=0")
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a/b&X-Amz-Date=x&X-Amz-Expires=604801&X-Amz-SignedHeaders=&X-Amz-Signature=")
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=%E2%9C%93")
	f.Add("%zz=1&a=%")
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		p, err := parsePresign(q)
		if err != nil {
			if err.Code != codeQueryParametersError {
				t.Fatalf("code %s", err.Code)
			}
			return
		}
		if p.expires <= 0 || p.expires > maxPresignExpiry || p.signature == "" || p.date.IsZero() {
			t.Fatalf("accepted %q as %+v", raw, p)
		}
		// The canonical query of an accepted URL never carries the signature.
		if strings.Contains(canonicalQuery(raw, true), "X-Amz-Signature=") {
			t.Fatalf("canonical query of %q keeps X-Amz-Signature", raw)
		}
	})
}

func FuzzChunkedReader(f *testing.F) {
	// Small seeds: the fuzzer minimises every new input it finds, and
	// that is slow on large ones.
	payload := testPayload(300)
	sum := checksumOf(f, "crc32", payload)
	f.Add(streamSpec{chunkSize: 128}.encode(payload), uint8(0))
	f.Add(streamSpec{chunkSize: 100, trailers: []string{"x-amz-checksum-crc32:" + sum}}.encode(payload), uint8(1))
	f.Add(streamSpec{chunkSize: 100, trailers: []string{"x-amz-checksum-crc32:" + sum}, lf: true}.encode(payload), uint8(1))
	key := testSigningKey(testSecret, signTime)
	f.Add(streamSpec{chunkSize: 64, key: key, seed: strings.Repeat("0", 64)}.encode(payload), uint8(2))
	f.Add(streamSpec{chunkSize: 256, key: key, seed: strings.Repeat("0", 64), trailers: []string{"x-amz-checksum-crc32:" + sum}}.encode(payload), uint8(3))
	f.Add([]byte("0\r\n\r\n"), uint8(0))
	f.Add([]byte("ffffffffffffffff\r\n"), uint8(0))
	f.Add([]byte("1;chunk-signature=\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, sel uint8) {
		modes := []payloadMode{payloadUnsignedTrailer, payloadUnsignedTrailer, payloadSigned, payloadSignedTrailer}
		mode := modes[int(sel)%len(modes)]
		var signer *chunkSigner
		if sel&4 != 0 && (mode == payloadSigned || mode == payloadSignedTrailer) {
			signer = &chunkSigner{key: key, amzDate: "20240506T070809Z", scope: "20240506/us-east-1/s3/aws4_request", prev: strings.Repeat("0", 64)}
		}
		var declared []string
		if sel%2 == 1 {
			declared = []string{"x-amz-checksum-crc32"}
		}
		dec := newChunkedReader(bytes.NewReader(in), mode, signer, declared)
		var out int
		buf := make([]byte, 1+int(sel)%700)
		for {
			n, err := dec.Read(buf)
			if n < 0 || n > len(buf) {
				t.Fatalf("Read returned %d for a %d-byte buffer", n, len(buf))
			}
			out += n
			if out > len(in) {
				t.Fatalf("decoded %d bytes from %d bytes of input", out, len(in))
			}
			if err == io.EOF {
				if mode.trailer() && len(declared) > 0 && dec.trailers.Get(declared[0]) == "" {
					t.Fatal("EOF without the declared trailer")
				}
				return
			}
			if err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("error %v (%T) is not an *Error", err, err)
				}
				if n2, err2 := dec.Read(buf); n2 != 0 || err2 != err {
					t.Fatalf("error not sticky: %d, %v after %v", n2, err2, err)
				}
				return
			}
		}
	})
}
