package bench

import (
	"math/rand/v2"
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

func TestParseMix(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Mix
		str  string
	}{
		{"put=30,get=70", Mix{OpPut: 30, OpGet: 70}, "put=30,get=70"},
		{"get=70, put=30", Mix{OpPut: 30, OpGet: 70}, "put=30,get=70"},
		{"put=1,get=3,delete=1,list=1", Mix{1, 3, 1, 1}, "put=1,get=3,delete=1,list=1"},
		{"get=1", Mix{OpGet: 1}, "get=1"},
		{"put=0,get=5", Mix{OpGet: 5}, "get=5"},
	} {
		got, err := ParseMix(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseMix(%q) = %v, %v; want %v", c.in, got, err, c.want)
			continue
		}
		if got.String() != c.str {
			t.Errorf("ParseMix(%q).String() = %q, want %q", c.in, got.String(), c.str)
		}
	}
	for _, in := range []string{"", "put", "put=", "put=x", "put=-1", "put=0", "put=0,get=0", "head=1", "put=1,put=2", "put=1,,get=1", "put=2000000"} {
		if got, err := ParseMix(in); !kerr.Is(kerr.Invalid, err) {
			t.Errorf("ParseMix(%q) = %v, %v; want an Invalid error", in, got, err)
		}
	}
}

func TestMixPick(t *testing.T) {
	m := Mix{OpPut: 1, OpGet: 3}
	r := rand.New(rand.NewPCG(7, 7))
	var n [numOps]int
	for range 8000 {
		n[m.Pick(r)]++
	}
	if n[OpDelete] != 0 || n[OpList] != 0 || n[OpPut] < 1800 || n[OpPut] > 2200 || n[OpGet] < 5800 || n[OpGet] > 6200 {
		t.Errorf("picks %v, want about 2000 put and 6000 get", n)
	}
}
