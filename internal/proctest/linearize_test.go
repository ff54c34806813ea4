package proctest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// op is a hand-written operation on key "k": times in milliseconds,
// ret < 0 for a failed one.
func op(client int, kind Kind, value int, call, ret int, note string) Op {
	o := Op{Client: client, Key: "k", Kind: kind, Value: value, Outcome: OK, Note: note,
		Call: time.Duration(call) * time.Millisecond, Return: time.Duration(ret) * time.Millisecond}
	if ret < 0 {
		o.Outcome, o.Return = Failed, o.Call+time.Millisecond
	}
	return o
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ops     []Op
		want    porcupine.CheckResult
		dropped int
		explain []string // in Explain's text when not linearizable
	}{
		{
			name: "linearizable",
			ops: []Op{
				op(0, Get, Absent, 0, 5, ""),
				op(0, Put, 1, 10, 20, ""),
				op(1, Get, 1, 22, 24, ""),
				// Concurrent with put 2: either value.
				op(0, Put, 2, 30, 40, ""),
				op(1, Get, 1, 31, 33, ""),
				op(2, Get, 2, 35, 38, ""),
				op(1, Get, 2, 41, 42, ""),
				op(2, Delete, Absent, 50, 55, ""),
				op(0, Get, Absent, 56, 57, ""),
			},
			want: porcupine.Ok,
		},
		{
			name: "stale read after an acknowledged write",
			ops: []Op{
				op(0, Put, 1, 0, 10, "gw0"),
				op(0, Put, 2, 20, 30, "gw0"),
				op(1, Get, 1, 40, 45, "gw1"),
			},
			want:    porcupine.Illegal,
			explain: []string{"key k: 2 of its 3 operations linearize", "the register then holds v2", "c1 get → v1"},
		},
		{
			// The write of the value read shows too.
			name: "a lost delete",
			ops: []Op{
				op(0, Put, 1, 0, 10, "gw+10s"),
				op(2, Get, 1, 11, 12, "gw0"),
				op(3, Get, 1, 13, 14, "gw+10s"),
				op(1, Delete, Absent, 20, 30, "gw0"),
				op(3, Put, 2, 21, -1, "gw0"),
				op(2, Get, 1, 40, 45, "gw-10s"),
			},
			want:    porcupine.Illegal,
			dropped: 1,
			explain: []string{"the register then holds absent", "where the values they read were written:\n    c0 put v1"},
		},
		{
			// The second write, through a gateway whose clock is 10s
			// behind, is acknowledged but named older than the first:
			// every later read keeps seeing the first.
			name: "lost write under clock skew",
			ops: []Op{
				op(0, Put, 1, 0, 10, "gw+10s"),
				op(1, Put, 2, 20, 30, "gw-10s"),
				op(2, Get, 1, 35, 40, "gw0"),
				op(0, Get, 1, 50, 55, "gw+10s"),
				op(1, Get, 1, 60, 65, "gw-10s"),
			},
			want:    porcupine.Illegal,
			explain: []string{"c1 put v2", "c2 get → v1"},
		},
		{
			name: "a deleted value comes back",
			ops: []Op{
				op(0, Put, 1, 0, 10, ""),
				op(0, Delete, Absent, 20, 30, ""),
				op(1, Get, Absent, 31, 32, ""),
				op(1, Get, 1, 40, 45, ""),
			},
			want: porcupine.Illegal,
		},
		{
			// It may take effect late, after reads that missed it.
			name: "a failed write that appears later",
			ops: []Op{
				op(0, Put, 1, 0, 10, ""),
				op(0, Put, 2, 20, -1, ""),
				op(1, Get, 1, 40, 45, ""),
				op(1, Get, 2, 50, 55, ""),
				op(2, Get, 2, 60, 65, ""),
			},
			want: porcupine.Ok,
		},
		{
			name: "a failed write that appears, then vanishes",
			ops: []Op{
				op(0, Put, 1, 0, 10, ""),
				op(0, Put, 2, 20, -1, ""),
				op(1, Get, 2, 50, 55, ""),
				op(2, Get, 1, 60, 65, ""),
			},
			want: porcupine.Illegal,
		},
		{
			// Neither may be read before it was sent.
			name: "a read of a failed write before its call",
			ops: []Op{
				op(1, Get, 2, 0, 5, ""),
				op(0, Put, 2, 20, -1, ""),
			},
			want: porcupine.Illegal,
		},
		{
			name: "failed reads and unobserved failed writes are left out",
			ops: []Op{
				op(0, Put, 1, 0, 10, ""),
				op(0, Put, 2, 20, -1, ""),
				op(0, Delete, Absent, 30, -1, ""), // no read of Absent after it
				op(1, Get, 0, 40, -1, ""),
				op(1, Get, 1, 50, 55, ""),
			},
			want:    porcupine.Ok,
			dropped: 3,
		},
		{
			name: "a failed delete observed",
			ops: []Op{
				op(0, Put, 1, 0, 10, ""),
				op(0, Delete, Absent, 30, -1, ""),
				op(1, Get, Absent, 50, 55, ""),
			},
			want: porcupine.Ok,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &History{ops: tc.ops}
			v := h.Check(10 * time.Second)
			if v.Result != tc.want || v.Dropped != tc.dropped || v.Ops+v.Dropped != len(tc.ops) {
				t.Fatalf("Check: %s; want %s with %d left out", v.Summary(), tc.want, tc.dropped)
			}
			if v.OK() != (tc.want == porcupine.Ok) {
				t.Errorf("OK() = %v for %s", v.OK(), v.Result)
			}
			if tc.want != porcupine.Illegal {
				return
			}
			if len(v.Bad) != 1 || v.Bad[0] != "k" {
				t.Errorf("Bad = %q, want [k]", v.Bad)
			}
			ex := v.Explain(3)
			for _, want := range tc.explain {
				if !strings.Contains(ex, want) {
					t.Errorf("Explain lacks %q:\n%s", want, ex)
				}
			}
			path := filepath.Join(t.TempDir(), "history.html")
			if err := v.Visualize(path); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), "<html") {
				t.Errorf("visualization: %v, %d bytes", err, len(b))
			}
		})
	}
}

// TestCheckKeys: keys are checked apart, and only the bad one is named.
func TestCheckKeys(t *testing.T) {
	h := NewHistory()
	sum := func(b byte) [32]byte { return [32]byte{b} }
	for _, key := range []string{"a", "b", "c"} {
		p := h.Put(0, key, sum(1), "")
		p.Ack()
		p = h.Put(0, key, sum(2), "")
		p.Ack()
		g := h.Get(1, key, "")
		want := sum(2)
		if key == "b" {
			want = sum(1)
		}
		if err := g.Read(want); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Get(1, "c", "").Read(sum(3)); err == nil || !strings.Contains(err.Error(), "no PUT of the key") {
		t.Errorf("read of bytes no PUT sent: %v", err)
	}
	h.Delete(0, "a", "").Fail()
	h.Get(1, "a", "").Absent() // may be the failed delete's doing
	v := h.Check(10 * time.Second)
	if v.Result != porcupine.Illegal || len(v.Bad) != 1 || v.Bad[0] != "b" || v.Keys != 3 {
		t.Fatalf("%s; want key b alone not linearizable", v.Summary())
	}
}

func TestVerdictUndecided(t *testing.T) {
	v := Verdict{Result: porcupine.Unknown}
	if v.OK() || !strings.Contains(v.Summary(), "counts as a failure") {
		t.Errorf("an undecided check: OK %v, %q", v.OK(), v.Summary())
	}
}
