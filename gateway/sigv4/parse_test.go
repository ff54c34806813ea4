package sigv4

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseAuthorization(t *testing.T) {
	sig := strings.Repeat("5a", 32)
	cred := "Credential=AKID/20240506/us-east-1/s3/aws4_request"
	p, err := parseAuthorization("AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;x-amz-date, Signature=" + sig)
	if err != nil {
		t.Fatal(err)
	}
	if p.cred != (credential{"AKID", "20240506", "us-east-1"}) || strings.Join(p.signedHeaders, ";") != "host;x-amz-date" || p.signature != sig {
		t.Fatalf("parsed %+v", p)
	}
	for _, h := range []string{
		"AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=host,Signature=" + sig,
		"AWS4-HMAC-SHA256 Signature=" + sig + ", SignedHeaders=host, " + cred,
		"AWS4-HMAC-SHA256  " + cred + " ,  SignedHeaders=host ,Signature=" + sig,
	} {
		if _, err := parseAuthorization(h); err != nil {
			t.Errorf("%q: %v", h, err)
		}
	}
	if p, err := parseAuthorization("AWS4-HMAC-SHA256 Credential=a/b/20240506/eu/s3/aws4_request,SignedHeaders=host,Signature=" + sig); err != nil || p.cred.accessKey != "a/b" {
		t.Errorf("slash in access key: %+v, %v", p, err)
	}

	tests := []struct {
		name, header, code string
	}{
		{"empty", "", codeHeaderMalformed},
		{"sigv2", "AWS AKID:c2ln", codeInvalidRequest},
		{"sigv4a", "AWS4-ECDSA-P256-SHA256 " + cred + ",SignedHeaders=host,Signature=" + sig, codeHeaderMalformed},
		{"algorithm only", "AWS4-HMAC-SHA256", codeHeaderMalformed},
		{"no space", "AWS4-HMAC-SHA256" + cred + ",SignedHeaders=host,Signature=" + sig, codeHeaderMalformed},
		{"missing signature", "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=host", codeHeaderMalformed},
		{"missing credential", "AWS4-HMAC-SHA256 SignedHeaders=host,Signature=" + sig, codeHeaderMalformed},
		{"duplicate field", "AWS4-HMAC-SHA256 " + cred + "," + cred + ",SignedHeaders=host,Signature=" + sig, codeHeaderMalformed},
		{"unknown field", "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=host,Signature=" + sig + ",Extra=1", codeHeaderMalformed},
		{"field without =", "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders,Signature=" + sig, codeHeaderMalformed},
		{"short credential", "AWS4-HMAC-SHA256 Credential=AKID/20240506/us-east-1/s3,SignedHeaders=host,Signature=" + sig, codeHeaderMalformed},
		{"wrong service", "AWS4-HMAC-SHA256 Credential=AKID/20240506/us-east-1/iam/aws4_request,SignedHeaders=host,Signature=" + sig, codeHeaderMalformed},
		{"wrong terminator", "AWS4-HMAC-SHA256 Credential=AKID/20240506/us-east-1/s3/aws5_request,SignedHeaders=host,Signature=" + sig, codeHeaderMalformed},
		{"bad date", "AWS4-HMAC-SHA256 Credential=AKID/20241306/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=" + sig, codeHeaderMalformed},
		{"empty region", "AWS4-HMAC-SHA256 Credential=AKID/20240506//s3/aws4_request,SignedHeaders=host,Signature=" + sig, codeHeaderMalformed},
		{"empty key", "AWS4-HMAC-SHA256 Credential=/20240506/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=" + sig, codeHeaderMalformed},
		{"host not signed", "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=x-amz-date,Signature=" + sig, codeHeaderMalformed},
		{"upper-case header", "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=Host,Signature=" + sig, codeHeaderMalformed},
		{"empty header name", "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=host;;x-amz-date,Signature=" + sig, codeHeaderMalformed},
		{"empty signature", "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=host,Signature=", codeHeaderMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseAuthorization(tt.header)
			if err == nil || err.Code != tt.code {
				t.Fatalf("err = %v, want %s", err, tt.code)
			}
		})
	}
}

func TestURIEncode(t *testing.T) {
	for _, tc := range []struct {
		in, path, query string
	}{
		{"", "", ""},
		{"AZaz09-_.~", "AZaz09-_.~", "AZaz09-_.~"},
		{"/a b/", "/a%20b/", "%2Fa%20b%2F"},
		{"a+b=c&d", "a%2Bb%3Dc%26d", "a%2Bb%3Dc%26d"},
		{"$!*'()", "%24%21%2A%27%28%29", "%24%21%2A%27%28%29"},
		{"ü", "%C3%BC", "%C3%BC"},
		{"%", "%25", "%25"},
		{"\x00\xff", "%00%FF", "%00%FF"},
	} {
		if got := uriEncode(tc.in, true); got != tc.path {
			t.Errorf("uriEncode(%q, true) = %q, want %q", tc.in, got, tc.path)
		}
		if got := uriEncode(tc.in, false); got != tc.query {
			t.Errorf("uriEncode(%q, false) = %q, want %q", tc.in, got, tc.query)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	for _, tc := range []struct {
		raw       string
		presigned bool
		want      string
	}{
		{"", false, ""},
		{"acl", false, "acl="},
		{"b=2&a=1&a=0", false, "a=0&a=1&b=2"},
		{"prefix=a+b&x=%2f", false, "prefix=a%20b&x=%2F"},
		{"prefix=a%2Bb", false, "prefix=a%2Bb"},
		{"k=%zz", false, "k=%25zz"},
		{"&&a=1&", false, "a=1"},
		{"a-b=1&a=2&a_b=3&A=4", false, "A=4&a=2&a-b=1&a_b=3"},
		{"X-Amz-Signature=abc&X-Amz-Date=1", true, "X-Amz-Date=1"},
		{"X-Amz-Signature=abc&X-Amz-Date=1", false, "X-Amz-Date=1&X-Amz-Signature=abc"},
	} {
		if got := canonicalQuery(tc.raw, tc.presigned); got != tc.want {
			t.Errorf("canonicalQuery(%q, %v) = %q, want %q", tc.raw, tc.presigned, got, tc.want)
		}
	}
}

func TestCanonicalURIs(t *testing.T) {
	for _, tc := range []struct {
		target string
		want   []string
	}{
		{"/", []string{"/"}},
		{"/b/k", []string{"/b/k"}},
		{"/b/a%20b", []string{"/b/a%20b"}},
		{"/b/a+b", []string{"/b/a%2Bb", "/b/a+b"}},
		{"/b/a%2Bb", []string{"/b/a%2Bb"}},
		{"/b/a%2Fb", []string{"/b/a/b", "/b/a%2Fb"}},
	} {
		u, err := url.ParseRequestURI(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if got := canonicalURIs(u); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("canonicalURIs(%q) = %q, want %q", tc.target, got, tc.want)
		}
	}
}

func TestFoldSpaces(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		"a":               "a",
		"  a  ":           "a",
		"a  b   c":        "a b c",
		"\ta  b\t":        "a b",
		"a \t b":          "a \t b",
		"one two  three ": "one two three",
	} {
		if got := foldSpaces(in); got != want {
			t.Errorf("foldSpaces(%q) = %q, want %q", in, got, want)
		}
	}
}
