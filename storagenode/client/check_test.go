package client

import (
	"math/rand/v2"
	"strconv"
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
		{v1 + ".1", true},
		{v1 + ".2", true},
		{v1 + ".9", true},
		{RecodeVersion(v1), true},
		{RecodeVersion(RecodeVersion(v1)), true},
		{v1 + ".0", false},
		{v1 + ".10", false},
		{v1 + ".11", false},
		{v1 + ".01", false},
		{v1 + ".A", false},
		{v1 + ".:", false},
		{v1 + ".-1", false},
		{v1 + ".", false},
		{v1 + ".1.1", false},
		{v1 + ".1.2", false},
		{v1 + "1", false},
		{v1 + "-1", false},
		{v1 + " 1", false},
		{strings.ToLower(v1) + ".1", false},
		{v1[:25] + ".1", false},
		{v1[:25] + ".12", false},
		{"8" + v1[1:] + ".1", false},
		{".1", false},
		{".9", false},
		{"", false},
	} {
		if err := CheckVersion(tc.v); (err == nil) != tc.ok {
			t.Errorf("CheckVersion(%q) = %v, want ok=%v", tc.v, err, tc.ok)
		}
	}
}

func TestRecodeVersionNames(t *testing.T) {
	v := v1
	for g := 1; g <= MaxRecodeGeneration; g++ {
		r := RecodeVersion(v)
		if want := v1 + "." + strconv.Itoa(g); r != want {
			t.Fatalf("RecodeVersion(%s) = %s, want %s", v, r, want)
		}
		if BaseVersion(r) != v1 || !IsRecode(r) || RecodeGeneration(r) != g {
			t.Fatalf("%s: base %s, re-code %v, generation %d; want %s, true, %d", r, BaseVersion(r), IsRecode(r), RecodeGeneration(r), v1, g)
		}
		v = r
	}
	if BaseVersion(v1) != v1 || IsRecode(v1) || RecodeGeneration(v1) != 0 {
		t.Fatalf("%s: base %s, re-code %v, generation %d", v1, BaseVersion(v1), IsRecode(v1), RecodeGeneration(v1))
	}
	// Names that are no re-code's are their own base.
	for _, v := range []string{v1 + ".0", v1 + ".10", v1 + ".1.1", v1 + "1", ".1", ""} {
		if BaseVersion(v) != v || IsRecode(v) || RecodeGeneration(v) != 0 {
			t.Errorf("%q: base %q, re-code %v, generation %d; want itself, false, 0", v, BaseVersion(v), IsRecode(v), RecodeGeneration(v))
		}
	}
	// The last generation has no next one.
	defer func() {
		if recover() == nil {
			t.Errorf("RecodeVersion(%s) did not panic", v)
		}
	}()
	_ = RecodeVersion(v)
}

// TestRecodeVersionOrder: every generation of V sorts above V and the
// generations before it, and below everything above V, whatever the
// neighbouring versions: a re-code replaces exactly the generation before
// it and never a newer version.
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
	max := ulid.ULID{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	others := []string{
		plus(v, 1), plus(v, 255), plus(v, 256), minus(v),
		ulid.ULID{}.String(), max.String(), ulid.Make().String(),
		"01JD00000000000000000000AB", "01JD00000000000000000000A9", "01JD0000000000000000000100",
	}
	checkOrder(t, v.String(), others)

	// Random neighbours, near (a low-byte step) and far.
	rng := rand.New(rand.NewPCG(1, 2))
	random := func() ulid.ULID {
		var id ulid.ULID
		for i := range id {
			id[i] = byte(rng.Uint32())
		}
		return id
	}
	for range 200 {
		v := random()
		checkOrder(t, v.String(), []string{plus(v, 1+rng.IntN(300)), minus(v), random().String()})
	}

	// '.' sorts below every character of the ULID alphabet, and the
	// generations' digits sort in their numeric order.
	for _, ch := range "0123456789ABCDEFGHJKMNPQRSTVWXYZ" {
		if '.' >= ch {
			t.Errorf("'.' does not sort below %q", ch)
		}
	}
}

// checkOrder checks V < V.1 < ... < V.9 and that each of others keeps its
// place against every generation of V, its own generations too.
func checkOrder(t *testing.T, V string, others []string) {
	t.Helper()
	gens := []string{V}
	for g := 1; g <= MaxRecodeGeneration; g++ {
		gens = append(gens, RecodeVersion(gens[g-1]))
	}
	for g := 1; g < len(gens); g++ {
		if !(gens[g] > gens[g-1]) {
			t.Errorf("generation %s not above %s", gens[g], gens[g-1])
		}
	}
	for _, w := range others {
		if w == V {
			continue
		}
		wgens := []string{w}
		for g := 1; g <= MaxRecodeGeneration; g++ {
			wgens = append(wgens, RecodeVersion(wgens[g-1]))
		}
		for _, r := range gens {
			for _, rw := range wgens {
				if (w > V) != (rw > r) {
					t.Fatalf("%s vs %s: %s and %s order the other way", w, V, rw, r)
				}
			}
		}
	}
}

// FuzzCheckVersion: a name passes CheckVersion exactly when it is a
// canonical ULID or one followed by a generation 1..9, and every such
// name's next generation passes too, above it and on the same base.
func FuzzCheckVersion(f *testing.F) {
	for _, s := range []string{v1, v1 + ".1", v1 + ".9", v1 + ".0", v1 + ".10", v1 + ".1.1", v1 + "x", ".1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		err := CheckVersion(v)
		base := v
		if i := strings.IndexByte(v, '.'); i >= 0 {
			base = v[:i]
		}
		id, perr := ulid.ParseStrict(base)
		canonical := perr == nil && id.String() == base
		suffix := v[len(base):]
		wantOK := canonical && (suffix == "" || len(suffix) == 2 && suffix[1] >= '1' && suffix[1] <= '9')
		if (err == nil) != wantOK {
			t.Fatalf("CheckVersion(%q) = %v, want ok=%v", v, err, wantOK)
		}
		if err != nil {
			return
		}
		if BaseVersion(v) != base || IsRecode(v) != (suffix != "") {
			t.Fatalf("%q: base %q, re-code %v", v, BaseVersion(v), IsRecode(v))
		}
		if RecodeGeneration(v) == MaxRecodeGeneration {
			return
		}
		r := RecodeVersion(v)
		if CheckVersion(r) != nil || r <= v || BaseVersion(r) != base || RecodeGeneration(r) != RecodeGeneration(v)+1 {
			t.Fatalf("next generation of %q is %q", v, r)
		}
	})
}
