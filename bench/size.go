package bench

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// Size units accepted by ParseSize. Binary units (KiB, K) are powers of
// 1024, decimal ones (KB) powers of 1000, as storage people read them.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first, so that "KiB" is not read as "B".
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// ParseSize parses a byte count such as "4096", "4KiB", "16MiB", "1GiB" or
// "1.5MB". Units are case-insensitive; a bare number is bytes.
func ParseSize(s string) (int64, error) {
	const op = "bench.ParseSize"
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	if t == "" {
		return 0, kerr.E(op, kerr.Invalid, fmt.Errorf("size %q: no number", s))
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n < 0 || n > maxSize/mult {
			return 0, kerr.E(op, kerr.Invalid, fmt.Errorf("size %q out of range", s))
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, kerr.E(op, kerr.Invalid, fmt.Errorf("size %q: not a number", s))
	}
	v := f * float64(mult)
	if f < 0 || v > float64(maxSize) || v != float64(int64(v)) {
		return 0, kerr.E(op, kerr.Invalid, fmt.Errorf("size %q: not a whole number of bytes in range", s))
	}
	return int64(v), nil
}

// maxSize is the largest object size the generator accepts: 5 TiB, the
// largest S3 object.
const maxSize = 5 << 40

// FormatSize renders n in the largest binary unit that divides it exactly,
// so that FormatSize(ParseSize(s)) reads like what a person types.
func FormatSize(n int64) string {
	for _, u := range []struct {
		name string
		mult int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// SizeDist is the distribution object sizes are drawn from: uniform over
// [Min, Max], a fixed size when Min == Max.
type SizeDist struct {
	Min, Max int64
}

// ParseSizeDist parses "16MiB" (fixed) or "4KiB-1MiB" (uniform range,
// both ends included).
func ParseSizeDist(s string) (SizeDist, error) {
	const op = "bench.ParseSizeDist"
	from, to, isRange := strings.Cut(s, "-")
	// ParseSize's error already names the bad part.
	lo, err := ParseSize(from)
	if err != nil {
		return SizeDist{}, err
	}
	if !isRange {
		return SizeDist{Min: lo, Max: lo}, nil
	}
	hi, err := ParseSize(to)
	if err != nil {
		return SizeDist{}, err
	}
	if hi < lo {
		return SizeDist{}, kerr.E(op, kerr.Invalid, fmt.Errorf("size range %q: end below start", s))
	}
	return SizeDist{Min: lo, Max: hi}, nil
}

// Fixed reports whether every object has the same size.
func (d SizeDist) Fixed() bool { return d.Min == d.Max }

// Pick draws a size with r.
func (d SizeDist) Pick(r *rand.Rand) int64 {
	if d.Fixed() {
		return d.Min
	}
	return d.Min + r.Int64N(d.Max-d.Min+1)
}

// Mean is the expected object size.
func (d SizeDist) Mean() int64 { return d.Min + (d.Max-d.Min)/2 }

func (d SizeDist) String() string {
	if d.Fixed() {
		return FormatSize(d.Min)
	}
	return FormatSize(d.Min) + "-" + FormatSize(d.Max)
}
