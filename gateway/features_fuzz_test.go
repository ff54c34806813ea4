package gateway

import (
	"encoding/xml"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseTagging(f *testing.F) {
	f.Add([]byte(`<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>`))
	f.Add([]byte(`<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>k k</Key><Value></Value></Tag><Tag><Key>k k</Key><Value>x</Value></Tag></TagSet></Tagging>`))
	f.Add([]byte(`<Tagging><TagSet/></Tagging>`))
	f.Add([]byte(`<Tagging></Tagging>`))
	f.Add([]byte(`<Tagging><TagSet><Tag><Key>aws:x</Key><Value>&lt;</Value></Tag></TagSet></Tagging>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		tags, err := parseTagging(doc, maxObjectTags)
		if err != nil {
			if code, _, _ := s3Status(err); code != "MalformedXML" && code != "InvalidTag" && code != "BadRequest" {
				t.Fatalf("error %v", err)
			}
			return
		}
		checkAcceptedTags(t, tags)
	})
}

// checkAcceptedTags asserts S3's rules on an accepted set, and that its
// stored form decodes back to it.
func checkAcceptedTags(t *testing.T, tags []tag) {
	t.Helper()
	if len(tags) > maxObjectTags {
		t.Fatalf("%d tags accepted", len(tags))
	}
	seen := map[string]bool{}
	for _, tg := range tags {
		if tg.Key == "" || seen[tg.Key] || utf8.RuneCountInString(tg.Key) > maxTagKeyLen || utf8.RuneCountInString(tg.Value) > maxTagValueLen ||
			!validTagText(tg.Key) || !validTagText(tg.Value) {
			t.Fatalf("accepted %q", tags)
		}
		seen[tg.Key] = true
	}
	back, err := decodeTags(encodeTags(tags))
	if err != nil || !slices.Equal(back, tags) || tagCount(encodeTags(tags)) != len(tags) {
		t.Fatalf("%q stored as %q decodes to %q, %v", tags, encodeTags(tags), back, err)
	}
}

func FuzzHeaderTags(f *testing.F) {
	f.Add("a=b&c=d")
	f.Add("a%20b=c+d&e=")
	f.Add("a=1&a=2")
	f.Add("=&&=")
	f.Add("%zz=1")
	f.Fuzz(func(t *testing.T, v string) {
		h := http.Header{}
		h.Set("X-Amz-Tagging", v)
		stored, err := headerTags(h)
		if err != nil {
			if code, _, _ := s3Status(err); code != "InvalidArgument" && code != "InvalidTag" && code != "BadRequest" {
				t.Fatalf("error %v", err)
			}
			return
		}
		tags, err := decodeTags(stored)
		if err != nil {
			t.Fatalf("stored %q does not decode: %v", stored, err)
		}
		checkAcceptedTags(t, tags)
	})
}

func FuzzParseCORS(f *testing.F) {
	f.Add([]byte(corsTestRules))
	f.Add([]byte(`<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>-1</MaxAgeSeconds></CORSRule></CORSConfiguration>`))
	f.Add([]byte(`<CORSConfiguration><CORSRule><AllowedOrigin>**</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>`))
	f.Add([]byte(`<CORSConfiguration/>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		cfg, err := parseCORS(doc)
		if err != nil {
			if code, _, _ := s3Status(err); code != "MalformedXML" && code != "InvalidRequest" && code != "InvalidArgument" {
				t.Fatalf("error %v", err)
			}
			return
		}
		if len(cfg.Rules) == 0 || len(cfg.Rules) > maxCORSRules {
			t.Fatalf("%d rules accepted", len(cfg.Rules))
		}
		for _, r := range cfg.Rules {
			if len(r.AllowedOrigins) == 0 || len(r.AllowedMethods) == 0 {
				t.Fatalf("accepted %+v", r)
			}
			for _, m := range r.AllowedMethods {
				if !slices.Contains(corsMethods, m) {
					t.Fatalf("accepted method %q", m)
				}
			}
			for _, h := range r.ExposeHeaders {
				if strings.Contains(h, "*") {
					t.Fatalf("accepted exposed header %q", h)
				}
			}
			for _, p := range append(r.AllowedOrigins, r.AllowedHeaders...) {
				if strings.Count(p, "*") > 1 {
					t.Fatalf("accepted pattern %q", p)
				}
			}
		}
		// The stored form reads back as the same configuration.
		b, err := xml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var back corsConfig
		if err := xml.Unmarshal(b, &back); err != nil || len(back.Rules) != len(cfg.Rules) {
			t.Fatalf("stored %s reads back as %+v, %v", b, back, err)
		}
	})
}
