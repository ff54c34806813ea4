package gateway

import (
	"net/http"
	"testing"
	"time"
)

func TestCheckConditions(t *testing.T) {
	const etag = "9e107d9d372bb6826bd81d3542a419d6"
	mod := time.Date(2024, 5, 6, 7, 8, 9, 500e6, time.UTC) // sub-second part is ignored
	at := mod.Truncate(time.Second).Format(http.TimeFormat)
	before := mod.Add(-time.Hour).Format(http.TimeFormat)
	after := mod.Add(time.Hour).Format(http.TimeFormat)
	tests := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"none", nil, 0},
		{"if-match quoted", map[string]string{"If-Match": `"` + etag + `"`}, 0},
		{"if-match bare", map[string]string{"If-Match": etag}, 0},
		{"if-match list", map[string]string{"If-Match": `"x", "` + etag + `"`}, 0},
		{"if-match star", map[string]string{"If-Match": "*"}, 0},
		{"if-match weak", map[string]string{"If-Match": `W/"` + etag + `"`}, 0},
		{"if-match other", map[string]string{"If-Match": `"x"`}, 412},
		{"if-none-match same", map[string]string{"If-None-Match": `"` + etag + `"`}, 304},
		{"if-none-match star", map[string]string{"If-None-Match": "*"}, 304},
		{"if-none-match other", map[string]string{"If-None-Match": `"x"`}, 0},
		{"if-modified-since before", map[string]string{"If-Modified-Since": before}, 0},
		{"if-modified-since at", map[string]string{"If-Modified-Since": at}, 304},
		{"if-modified-since after", map[string]string{"If-Modified-Since": after}, 304},
		{"if-unmodified-since before", map[string]string{"If-Unmodified-Since": before}, 412},
		{"if-unmodified-since at", map[string]string{"If-Unmodified-Since": at}, 0},
		{"if-unmodified-since after", map[string]string{"If-Unmodified-Since": after}, 0},
		{"bad date ignored", map[string]string{"If-Unmodified-Since": "yesterday", "If-Modified-Since": "never"}, 0},
		// If-Match wins over If-Unmodified-Since, If-None-Match over
		// If-Modified-Since (S3 documents both pairs).
		{"match beats unmodified", map[string]string{"If-Match": etag, "If-Unmodified-Since": before}, 0},
		{"none-match beats modified", map[string]string{"If-None-Match": `"x"`, "If-Modified-Since": after}, 0},
		{"none-match true and modified", map[string]string{"If-None-Match": etag, "If-Modified-Since": before}, 304},
		{"412 before 304", map[string]string{"If-Match": `"x"`, "If-None-Match": etag}, 412},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.hdr {
			h.Set(k, v)
		}
		if got := checkConditions(h, etag, mod); got != tt.want {
			t.Errorf("%s: checkConditions = %d, want %d", tt.name, got, tt.want)
		}
	}
}
