package bench

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// Op is one kind of S3 request the generator issues.
type Op uint8

// Ops. The order is the order of report rows.
const (
	OpPut Op = iota
	OpGet
	OpDelete
	OpList
	numOps
)

var opNames = [numOps]string{OpPut: "put", OpGet: "get", OpDelete: "delete", OpList: "list"}

func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	return "op" + strconv.Itoa(int(o))
}

// parseOp returns the Op named s.
func parseOp(s string) (Op, bool) {
	for o, name := range opNames {
		if name == s {
			return Op(o), true
		}
	}
	return 0, false
}

// Mix is the relative weight of each Op in a mixed workload. Weights are
// ratios, not percentages: put=1,get=3 and put=25,get=75 are the same mix.
type Mix [numOps]int

// ParseMix parses "put=30,get=70": comma-separated op=weight pairs with
// non-negative integer weights, at least one of them positive.
func ParseMix(s string) (Mix, error) {
	const op = "bench.ParseMix"
	var m Mix
	seen := [numOps]bool{}
	total := 0
	for part := range strings.SplitSeq(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Mix{}, kerr.E(op, kerr.Invalid, fmt.Errorf("mix %q: %q is not op=weight", s, part))
		}
		o, ok := parseOp(strings.TrimSpace(name))
		if !ok {
			return Mix{}, kerr.E(op, kerr.Invalid, fmt.Errorf("mix %q: unknown op %q (want put, get, delete or list)", s, name))
		}
		if seen[o] {
			return Mix{}, kerr.E(op, kerr.Invalid, fmt.Errorf("mix %q: %s given twice", s, o))
		}
		seen[o] = true
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 || n > 1e6 {
			return Mix{}, kerr.E(op, kerr.Invalid, fmt.Errorf("mix %q: weight %q of %s is not an integer in 0..1000000", s, w, o))
		}
		m[o] = n
		total += n
	}
	if total == 0 {
		return Mix{}, kerr.E(op, kerr.Invalid, fmt.Errorf("mix %q: all weights are zero", s))
	}
	return m, nil
}

// Pick draws an Op with probability proportional to its weight.
// REQUIRES: at least one positive weight.
func (m Mix) Pick(r *rand.Rand) Op {
	total := 0
	for _, w := range m {
		total += w
	}
	x := r.IntN(total)
	for o, w := range m {
		if x < w {
			return Op(o)
		}
		x -= w
	}
	panic("bench: Mix.Pick on an empty mix")
}

// String renders the mix in ParseMix's syntax, zero weights left out.
func (m Mix) String() string {
	var parts []string
	for o, w := range m {
		if w > 0 {
			parts = append(parts, Op(o).String()+"="+strconv.Itoa(w))
		}
	}
	return strings.Join(parts, ",")
}
