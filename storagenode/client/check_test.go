package client

import (
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
)

func TestCheckVersionRecode(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{v1, true},
		{v1 + RecodeSuffix, true},
		{RecodeVersion(v1), true},
		{v1 + ".2", false},
		{v1 + ".", false},
		{v1 + ".1.1", false},
		{v1 + "1", false},
		{strings.ToLower(v1) + RecodeSuffix, false},
		{v1[:25] + RecodeSuffix, false},
		{"8" + v1[1:] + RecodeSuffix, false},
		{RecodeSuffix, false},
		{"", false},
	} {
		if err := CheckVersion(tc.v); (err == nil) != tc.ok {
			t.Errorf("CheckVersion(%q) = %v, want ok=%v", tc.v, err, tc.ok)
		}
	}
}

func TestRecodeVersionNames(t *testing.T) {
	r := RecodeVersion(v1)
	if r != v1+".1" || BaseVersion(r) != v1 || BaseVersion(v1) != v1 || !IsRecode(r) || IsRecode(v1) {
		t.Fatalf("RecodeVersion(%s) = %s, base %s", v1, r, BaseVersion(r))
	}
	if RecodeVersion(r) != r {
		t.Fatalf("re-code of a re-code = %s, want %s", RecodeVersion(r), r)
	}
}

// TestRecodeVersionOrder: the re-code R of V sorts right above V and
// below everything above V, whatever the neighbouring versions: it
// replaces exactly V and never a newer version.
func TestRecodeVersionOrder(t *testing.T) {
	v := ulid.MustParseStrict("01JD00000000000000000000AA")
	plus := func(id ulid.ULID, step int) string {
		// Add step to the low byte with carry, as a clock bump would.
		b := id
		for i := len(b) - 1; i >= 0 && step != 0; i-- {
			sum := int(b[i]) + step
			b[i] = byte(sum)
			step = sum >> 8
		}
		return b.String()
	}
	minus := func(id ulid.ULID) string {
		b := id
		for i := len(b) - 1; i >= 0; i-- {
			b[i]--
			if b[i] != 0xff {
				break
			}
		}
		return b.String()
	}
	V := v.String()
	R := RecodeVersion(V)
	max := ulid.ULID{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	for _, w := range []string{
		plus(v, 1), plus(v, 255), plus(v, 256), minus(v),
		ulid.ULID{}.String(), max.String(), ulid.Make().String(),
		"01JD00000000000000000000AB", "01JD00000000000000000000A9", "01JD0000000000000000000100",
	} {
		if w == V {
			continue
		}
		if w > V && !(w > R) {
			t.Errorf("%s > %s but not above its re-code %s", w, V, R)
		}
		if w < V && !(w < R) {
			t.Errorf("%s < %s but not below its re-code %s", w, V, R)
		}
		// A re-code of another version keeps that version's place.
		if rw := RecodeVersion(w); (w > V) != (rw > R) || (w > V) != (rw > V) {
			t.Errorf("re-codes of %s and %s order unlike the versions", w, V)
		}
	}
	if !(R > V) {
		t.Errorf("re-code %s not above %s", R, V)
	}
	// '.' sorts below every character of the ULID alphabet.
	for _, ch := range "0123456789ABCDEFGHJKMNPQRSTVWXYZ" {
		if RecodeSuffix[0] >= byte(ch) {
			t.Errorf("suffix %q does not sort below %q", RecodeSuffix, ch)
		}
	}
}
