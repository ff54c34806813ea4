package bench

import "testing"

func TestObjectKeyRoundTrip(t *testing.T) {
	for _, c := range []struct {
		prefix string
		n      uint64
		size   int64
		want   string
	}{
		{"bench/", 0, 4096, "bench/obj-0-4096"},
		{"bench/", 17, 16 << 20, "bench/obj-17-16777216"},
		{"", 1<<64 - 1, 0, "obj-18446744073709551615-0"},
		{"a/b-c/obj-1-2/", 3, 5, "a/b-c/obj-1-2/obj-3-5"},
	} {
		key := ObjectKey(c.prefix, c.n, c.size)
		if key != c.want {
			t.Errorf("ObjectKey(%q, %d, %d) = %q, want %q", c.prefix, c.n, c.size, key, c.want)
		}
		n, size, ok := ParseObjectKey(c.prefix, key)
		if !ok || n != c.n || size != c.size {
			t.Errorf("ParseObjectKey(%q, %q) = %d, %d, %v; want %d, %d", c.prefix, key, n, size, ok, c.n, c.size)
		}
	}
}

func TestParseObjectKeyRejects(t *testing.T) {
	for _, key := range []string{
		"bench/obj-1",                      // no size
		"bench/obj-1-",                     // empty size
		"bench/obj--5",                     // empty number
		"bench/obj-01-5",                   // not canonical
		"bench/obj-1-05",                   // not canonical
		"bench/obj-1-5-6",                  // trailing part
		"bench/obj-1-5x",                   // junk
		"bench/obj-+1-5",                   // sign
		"bench/sub/obj-1-5",                // deeper than the prefix
		"other/obj-1-5",                    // another prefix
		"bench/obj-1-99999999999999999999", // size overflows
		"bench/obj-18446744073709551616-1", // n overflows
		"bench/obj-1-5497558138881",        // above 5 TiB
	} {
		if n, size, ok := ParseObjectKey("bench/", key); ok {
			t.Errorf("ParseObjectKey(%q) = %d, %d, true; want false", key, n, size)
		}
	}
}
