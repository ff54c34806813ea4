package proctest

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Verdict is the outcome of checking a History.
type Verdict struct {
	// Result is porcupine's: Ok, Illegal, or Unknown when the check did
	// not finish within its time limit (which counts as a failure: a
	// history nobody could decide proves nothing).
	Result porcupine.CheckResult
	Ops    int // operations checked
	// Dropped counts what was left out because it cannot change the
	// answer: failed reads, and failed writes that no read observed.
	Dropped int
	Keys    int
	Took    time.Duration
	// Bad lists the keys whose operations are not linearizable, sorted.
	Bad []string

	parts [][]porcupine.Operation // per key, in key order
	keys  []string                // of parts
	info  porcupine.LinearizationInfo
}

// OK reports whether the history was found linearizable.
func (v Verdict) OK() bool { return v.Result == porcupine.Ok }

// regInput is the call of one operation, as the register model takes it.
type regInput struct {
	key   string
	kind  Kind
	value int // for Put
}

// registerModel is one register per key: a Put sets it to its value, a
// Delete to Absent, and a Get must read what it holds. States and Get
// outputs are values (ints); every key starts Absent.
var registerModel = porcupine.Model{
	Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
		// Check passes ops grouped by key, in key order.
		var out [][]porcupine.Operation
		for i := 0; i < len(ops); {
			j := i + 1
			for j < len(ops) && ops[j].Input.(regInput).key == ops[i].Input.(regInput).key {
				j++
			}
			out = append(out, ops[i:j])
			i = j
		}
		return out
	},
	Init: func() any { return Absent },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		switch in.kind {
		case Put:
			return true, in.value
		case Delete:
			return true, Absent
		}
		return output.(int) == state.(int), state
	},
	Hash: func(state any) uint64 { return uint64(state.(int)) },
	// The view shows keys as numbered partitions: name them.
	DescribeOperation: func(input, output any) string {
		return input.(regInput).key + ": " + describeOp(input, output)
	},
	DescribeState:             func(state any) string { return valueName(state.(int)) },
	DescribeOperationMetadata: func(info any) string { return info.(opMeta).String() },
}

// opMeta is what the reports show of an operation besides its call and
// answer.
type opMeta struct {
	note    string
	unknown bool // a failed write, checked as returning at the end
}

func (m opMeta) String() string {
	if m.unknown {
		return m.note + " (failed: may take effect at any later time)"
	}
	return m.note
}

func describeOp(input, output any) string {
	in := input.(regInput)
	switch in.kind {
	case Put:
		return fmt.Sprintf("put %s", valueName(in.value))
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("get → %s", valueName(output.(int)))
}

func valueName(v int) string {
	if v == Absent {
		return "absent"
	}
	return fmt.Sprintf("v%d", v)
}

// Check decides whether the operations recorded so far are linearizable
// against one register per key (registerModel), within timeout. Only
// operations that have ended should be in the History; one still Pending
// is taken as Failed.
//
// A failed write may take effect at any time after its call, so it is
// checked as an operation that returns after everything else. A failed
// write that no read observed is left out: placed last, it would change
// nothing, so the answer is the same with or without it, and every such
// write would double the orders the checker might try. Failed reads are
// left out too.
func (h *History) Check(timeout time.Duration) Verdict {
	ops := h.Ops()
	var end time.Duration
	seen := map[string]map[int]bool{}        // key -> values reads returned
	lastAbsent := map[string]time.Duration{} // key -> latest return of a read of Absent
	for i := range ops {
		op := &ops[i]
		if op.Outcome == Pending {
			op.Outcome = Failed
		}
		end = max(end, op.Call, op.Return)
		if op.Kind == Get && op.Outcome == OK {
			if seen[op.Key] == nil {
				seen[op.Key] = map[int]bool{}
			}
			seen[op.Key][op.Value] = true
			if op.Value == Absent {
				lastAbsent[op.Key] = max(lastAbsent[op.Key], op.Return)
			}
		}
	}
	var v Verdict
	byKey := map[string][]porcupine.Operation{}
	for _, op := range ops {
		po := porcupine.Operation{
			ClientId: op.Client,
			Input:    regInput{key: op.Key, kind: op.Kind, value: op.Value},
			Call:     int64(op.Call),
			Return:   int64(op.Return),
			Metadata: opMeta{note: op.Note},
		}
		switch {
		case op.Outcome == OK && op.Kind == Get:
			po.Output = op.Value
		case op.Outcome == OK:
		case op.Kind == Get:
			v.Dropped++
			continue
		case op.Kind == Put && !seen[op.Key][op.Value],
			op.Kind == Delete && !(seen[op.Key][Absent] && lastAbsent[op.Key] >= op.Call):
			// A read that could have observed a failed delete
			// returns at or after its call.
			v.Dropped++
			continue
		default:
			po.Return = int64(end) + 1
			po.Metadata = opMeta{note: op.Note, unknown: true}
		}
		byKey[op.Key] = append(byKey[op.Key], po)
	}
	var flat []porcupine.Operation
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		v.keys = append(v.keys, k)
		v.parts = append(v.parts, byKey[k])
		flat = append(flat, byKey[k]...)
		v.Ops += len(byKey[k])
	}
	v.Keys = len(v.keys)
	start := time.Now()
	v.Result, v.info = porcupine.CheckOperationsVerbose(registerModel, flat, timeout)
	v.Took = time.Since(start)
	if v.Result == porcupine.Illegal {
		for i, lins := range v.info.PartialLinearizations() {
			if longest(lins) < len(v.parts[i]) {
				v.Bad = append(v.Bad, v.keys[i])
			}
		}
	}
	return v
}

func longest(lins [][]int) int {
	n := 0
	for _, l := range lins {
		n = max(n, len(l))
	}
	return n
}

// Summary is one line: the verdict, the operations checked and the time
// the check took.
func (v Verdict) Summary() string {
	s := fmt.Sprintf("linearizability: %s; %d operations on %d keys checked (%d left out) in %v",
		v.Result, v.Ops, v.Keys, v.Dropped, v.Took.Round(time.Millisecond))
	switch v.Result {
	case porcupine.Illegal:
		s += fmt.Sprintf("; not linearizable: %d keys (%s)", len(v.Bad), strings.Join(v.Bad[:min(len(v.Bad), 10)], ", "))
	case porcupine.Unknown:
		s += "; undecided within the time limit, which counts as a failure"
	}
	return s
}

// Explain describes, for up to maxKeys of the keys found not
// linearizable, the shortest stretch of history that shows it: the end
// of the longest order of the key's operations the checker could make
// legal, the value the register then holds, the operations that could
// come next, none of which leads to a legal order of the rest, and the
// writes of the values those read.
func (v Verdict) Explain(maxKeys int) string {
	var b strings.Builder
	partials := v.info.PartialLinearizations()
	for _, key := range v.Bad[:min(len(v.Bad), maxKeys)] {
		i, _ := slices.BinarySearch(v.keys, key)
		ops := v.parts[i]
		var best []int
		for _, l := range partials[i] {
			if len(l) > len(best) {
				best = l
			}
		}
		state := registerModel.Init()
		for _, id := range best {
			_, state = registerModel.Step(state, ops[id].Input, ops[id].Output)
		}
		fmt.Fprintf(&b, "key %s: %d of its %d operations linearize; the last of them:\n", key, len(best), len(ops))
		for _, id := range best[max(len(best)-3, 0):] {
			fmt.Fprintf(&b, "    %s\n", v.describe(ops[id]))
		}
		fmt.Fprintf(&b, "  the register then holds %s, and no order of the rest works; what could come next:\n", valueName(state.(int)))
		done := map[int]bool{}
		for _, id := range best {
			done[id] = true
		}
		var rest []int
		firstReturn := int64(-1)
		for id := range ops {
			if !done[id] {
				rest = append(rest, id)
				if firstReturn < 0 || ops[id].Return < firstReturn {
					firstReturn = ops[id].Return
				}
			}
		}
		var next []porcupine.Operation
		for _, id := range rest {
			if ops[id].Call <= firstReturn {
				next = append(next, ops[id])
			}
		}
		slices.SortFunc(next, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		for _, op := range next[:min(len(next), 8)] {
			fmt.Fprintf(&b, "    %s\n", v.describe(op))
		}
		if len(next) > 8 {
			fmt.Fprintf(&b, "    ... and %d more\n", len(next)-8)
		}
		// The writes of the values those reads saw, unless shown above.
		shown := map[int]bool{}
		for _, id := range best[max(len(best)-3, 0):] {
			shown[id] = true
		}
		var writes []string
		for _, op := range next[:min(len(next), 8)] {
			in := op.Input.(regInput)
			if in.kind != Get || op.Output.(int) == Absent {
				continue
			}
			for id, w := range ops {
				if wi := w.Input.(regInput); wi.kind == Put && wi.value == op.Output.(int) && !shown[id] {
					shown[id] = true
					writes = append(writes, v.describe(w))
				}
			}
		}
		if len(writes) > 0 {
			fmt.Fprintf(&b, "  where the values they read were written:\n")
			for _, w := range writes {
				fmt.Fprintf(&b, "    %s\n", w)
			}
		}
	}
	return b.String()
}

// describe is one operation, its times in seconds since the History
// began: "c3 put v12 [1.200s, 1.350s] gw1".
func (v Verdict) describe(op porcupine.Operation) string {
	ret := fmt.Sprintf("%.3fs", time.Duration(op.Return).Seconds())
	if op.Metadata.(opMeta).unknown {
		ret = "?"
	}
	return fmt.Sprintf("c%d %-12s [%.3fs, %s] %s", op.ClientId,
		describeOp(op.Input, op.Output), time.Duration(op.Call).Seconds(), ret, op.Metadata)
}

// Visualize writes porcupine's HTML view of the keys found not
// linearizable (of every key if the check did not finish) to path.
func (v Verdict) Visualize(path string) error {
	info := v.info
	if len(v.Bad) > 0 {
		var ops []porcupine.Operation
		for _, key := range v.Bad {
			i, _ := slices.BinarySearch(v.keys, key)
			ops = append(ops, v.parts[i]...)
		}
		_, info = porcupine.CheckOperationsVerbose(registerModel, ops, time.Minute)
	}
	return porcupine.VisualizePath(registerModel, info, path)
}
