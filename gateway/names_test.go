package gateway

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidBucketName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"abc", true},
		{"my-bucket", true},
		{"my.bucket.2024", true},
		{"0abc", true},
		{"a1-b2.c3", true},
		{strings.Repeat("a", 63), true},
		{"192.168.5.4a", true},
		{"ab", false},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"MyBucket", false},
		{"my_bucket", false},
		{"-abc", false},
		{"abc-", false},
		{".abc", false},
		{"abc.", false},
		{"a..b", false},
		{"a-.b", false},
		{"a.-b", false},
		{"192.168.5.4", false},
		{"xn--abc", false},
		{"sthree-abc", false},
		{"amzn-s3-demo-bucket", false},
		{"abc-s3alias", false},
		{"abc--ol-s3", false},
		{"abc.mrap", false},
		{"abc--x-s3", false},
		{"abc--table-s3", false},
		{"a b", false},
		{"a/b", false},
		{"ábc", false},
	}
	for _, tt := range tests {
		if got := validBucketName(tt.name); got != tt.ok {
			t.Errorf("validBucketName(%q) = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

func TestCheckKey(t *testing.T) {
	tests := []struct {
		key  string
		code string // "" = valid
		msg  string
	}{
		{"a", "", ""},
		{"a//b", "", ""},
		{"../../etc/passwd", "", ""},
		{"..", "", ""},
		{"100%", "", ""},
		{"a+b c", "", ""},
		{"日本語/ключ/🙂", "", ""},
		{"tab\there", "InvalidArgument", "object key contains control characters"},
		{"nul\x00", "InvalidArgument", "object key contains control characters"},
		{"nl\n", "InvalidArgument", "object key contains control characters"},
		{"del\x7f", "InvalidArgument", "object key contains control characters"},
		{"bad\xff", "InvalidArgument", "object key is not valid UTF-8"},
		{"half\xe6\x97", "InvalidArgument", "object key is not valid UTF-8"},
		{strings.Repeat("k", 1024), "", ""},
		{strings.Repeat("k", 1025), "KeyTooLongError", ""},
		{strings.Repeat("é", 513), "KeyTooLongError", ""}, // 1026 bytes
	}
	for _, tt := range tests {
		err := checkKey(tt.key, 1024)
		if tt.code == "" {
			if err != nil {
				t.Errorf("checkKey(%q) = %v, want nil", tt.key, err)
			}
			continue
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.code != tt.code || ae.message != tt.msg {
			t.Errorf("checkKey(%q) = %v, want %s %q", tt.key, err, tt.code, tt.msg)
		}
	}
}

func TestSplitPath(t *testing.T) {
	tests := []struct{ path, bucket, key string }{
		{"/", "", ""},
		{"", "", ""},
		{"/b", "b", ""},
		{"/b/", "b", ""},
		{"/b/k", "b", "k"},
		{"/b//k", "b", "/k"},
		{"/b/a/../c/", "b", "a/../c/"},
		{"//k", "", "k"},
	}
	for _, tt := range tests {
		b, k := splitPath(tt.path)
		if b != tt.bucket || k != tt.key {
			t.Errorf("splitPath(%q) = %q, %q; want %q, %q", tt.path, b, k, tt.bucket, tt.key)
		}
	}
}

func FuzzValidateBucketName(f *testing.F) {
	for _, s := range []string{"abc", "a.b.c", "1.2.3.4", "a..b", "-ab", "xn--a", "Abc", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !validBucketName(name) {
			return
		}
		// Invariants of an accepted name: usable as a DNS name and as a
		// single path segment, and distinct from the gateway's own paths.
		if len(name) < 3 || len(name) > 63 || strings.ContainsAny(name, "/_ ") ||
			strings.Contains(name, "..") || name[0] == '-' || name[0] == '.' ||
			strings.ToLower(name) != name {
			t.Fatalf("accepted invalid name %q", name)
		}
	})
}

func FuzzCheckKey(f *testing.F) {
	for _, s := range []string{"a", "a//b", "..", "%2F", "\x00", "\xff", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := checkKey(key, 64)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				t.Fatalf("checkKey(%q) = %T, want *apiError", key, err)
			}
			return
		}
		if len(key) > 64 || !utf8.ValidString(key) {
			t.Fatalf("accepted %q", key)
		}
		for _, r := range key {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("accepted control character in %q", key)
			}
		}
	})
}
