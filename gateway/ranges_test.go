package gateway

import (
	"testing"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		h       string
		size    int64
		off, n  int64
		partial bool
		bad     bool // errRangeNotSatisfiable
	}{
		{"", 10, 0, 10, false, false},
		{"bytes=0-0", 10, 0, 1, true, false},
		{"bytes=2-5", 10, 2, 4, true, false},
		{"bytes=2-", 10, 2, 8, true, false},
		{"bytes=9-", 10, 9, 1, true, false},
		{"bytes=5-100", 10, 5, 5, true, false},
		{"bytes=-3", 10, 7, 3, true, false},
		{"bytes=-10", 10, 0, 10, true, false},
		{"bytes=-11", 10, 0, 10, true, false},
		{"bytes= 2-5", 10, 2, 4, true, false},
		{"bytes=10-", 10, 0, 0, false, true},
		{"bytes=10-20", 10, 0, 0, false, true},
		{"bytes=-0", 10, 0, 0, false, true},
		{"bytes=0-", 0, 0, 0, false, true},
		{"bytes=-5", 0, 0, 0, false, true},
		// Ignored: the whole object is served.
		{"bytes=0-1,3-4", 10, 0, 10, false, false},
		{"bytes=5-2", 10, 0, 10, false, false},
		{"bytes=a-b", 10, 0, 10, false, false},
		{"bytes=-", 10, 0, 10, false, false},
		{"bytes=1", 10, 0, 10, false, false},
		{"bytes=+1-2", 10, 0, 10, false, false},
		{"bytes=1--2", 10, 0, 10, false, false},
		{"bytes=--2", 10, 0, 10, false, false},
		{"bytes=99999999999999999999-", 10, 0, 10, false, false},
		{"items=0-1", 10, 0, 10, false, false},
		{"Bytes=0-1", 10, 0, 10, false, false},
		{"0-1", 10, 0, 10, false, false},
	}
	for _, tt := range tests {
		off, n, partial, err := parseRange(tt.h, tt.size)
		if tt.bad {
			if err != errRangeNotSatisfiable {
				t.Errorf("parseRange(%q, %d) err = %v, want InvalidRange", tt.h, tt.size, err)
			}
			continue
		}
		if err != nil || off != tt.off || n != tt.n || partial != tt.partial {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v, %v; want %d, %d, %v",
				tt.h, tt.size, off, n, partial, err, tt.off, tt.n, tt.partial)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=3-", "bytes=1-0", "bytes=0-1,2-3", "bytes= 1 - 2 ", "x"} {
		f.Add(s, int64(10))
	}
	f.Add("bytes=0-", int64(0))
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		off, n, partial, err := parseRange(h, size)
		if err != nil {
			if err != errRangeNotSatisfiable || partial {
				t.Fatalf("parseRange(%q, %d): err %v partial %v", h, size, err, partial)
			}
			return
		}
		if !partial {
			if off != 0 || n != size {
				t.Fatalf("parseRange(%q, %d) = %d, %d for a full body", h, size, off, n)
			}
			return
		}
		if off < 0 || n <= 0 || off+n > size || off+n < off {
			t.Fatalf("parseRange(%q, %d) = %d, %d out of bounds", h, size, off, n)
		}
	})
}
