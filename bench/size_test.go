package bench

import (
	"math/rand/v2"
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"4096", 4096},
		{"100B", 100},
		{"4KiB", 4 << 10},
		{"4kib", 4 << 10},
		{"64K", 64 << 10},
		{"16MiB", 16 << 20},
		{"16M", 16 << 20},
		{"1GiB", 1 << 30},
		{"2TiB", 2 << 40},
		{"1KB", 1000},
		{"5MB", 5e6},
		{"1GB", 1e9},
		{"1.5MiB", 3 << 19},
		{"0.5KiB", 512},
		{" 8 MiB ", 8 << 20},
		{"5TiB", 5 << 40},
	} {
		got, err := ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "-4KiB", "x", "4XiB", "1.3B", "0.1KiB", "6TiB", "1e400", "4 KiB MiB"} {
		if got, err := ParseSize(in); !kerr.Is(kerr.Invalid, err) {
			t.Errorf("ParseSize(%q) = %d, %v; want an Invalid error", in, got, err)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, c := range []struct {
		in   int64
		want string
	}{{0, "0B"}, {1000, "1000B"}, {4096, "4KiB"}, {1 << 20, "1MiB"}, {3 << 19, "1536KiB"}, {16 << 20, "16MiB"}, {1 << 30, "1GiB"}, {1 << 40, "1TiB"}} {
		if got := FormatSize(c.in); got != c.want {
			t.Errorf("FormatSize(%d) = %q, want %q", c.in, got, c.want)
		}
		if back, err := ParseSize(FormatSize(c.in)); err != nil || back != c.in {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", c.in, back, err)
		}
	}
}

func TestParseSizeDist(t *testing.T) {
	for _, c := range []struct {
		in     string
		want   SizeDist
		str    string
		fixed  bool
		meanIs int64
	}{
		{"16MiB", SizeDist{16 << 20, 16 << 20}, "16MiB", true, 16 << 20},
		{"4KiB-1MiB", SizeDist{4 << 10, 1 << 20}, "4KiB-1MiB", false, 4<<10 + (1<<20-4<<10)/2},
		{"1KiB-1KiB", SizeDist{1 << 10, 1 << 10}, "1KiB", true, 1 << 10},
		{"0-100", SizeDist{0, 100}, "0B-100B", false, 50},
	} {
		got, err := ParseSizeDist(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSizeDist(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
			continue
		}
		if got.String() != c.str || got.Fixed() != c.fixed || got.Mean() != c.meanIs {
			t.Errorf("%q: String %q Fixed %v Mean %d; want %q %v %d", c.in, got.String(), got.Fixed(), got.Mean(), c.str, c.fixed, c.meanIs)
		}
	}
	for _, in := range []string{"", "1MiB-4KiB", "4KiB-", "-4KiB", "4KiB-x", "1-2-3"} {
		if got, err := ParseSizeDist(in); !kerr.Is(kerr.Invalid, err) {
			t.Errorf("ParseSizeDist(%q) = %+v, %v; want an Invalid error", in, got, err)
		}
	}
}

func TestSizeDistPick(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	fixed := SizeDist{Min: 4096, Max: 4096}
	d := SizeDist{Min: 10, Max: 13}
	seen := map[int64]int{}
	for range 4000 {
		if got := fixed.Pick(r); got != 4096 {
			t.Fatalf("fixed Pick = %d", got)
		}
		seen[d.Pick(r)]++
	}
	if len(seen) != 4 {
		t.Fatalf("Pick over 10..13 gave %v, want each of the 4 values", seen)
	}
	for v, n := range seen {
		if v < 10 || v > 13 || n < 800 || n > 1200 {
			t.Errorf("value %d drawn %d times of 4000, want 10..13 about 1000 times each", v, n)
		}
	}
}
