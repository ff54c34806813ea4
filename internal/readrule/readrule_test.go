package readrule

import (
	"fmt"
	"slices"
	"testing"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// The tables below are for a 4+2 code with write quorum 5, six nodes in
// shard order unless a row says otherwise.
const (
	v1 = "01AAAAAAAAAAAAAAAAAAAAAAAA"
	v2 = "01BBBBBBBBBBBBBBBBBBBBBBBB"
	v3 = "01CCCCCCCCCCCCCCCCCCCCCCCC"
	wq = 5
)

func meta(v string) client.ObjectMeta {
	return client.ObjectMeta{Version: v, Data: 4, Parity: 2}
}

// c: the node has shard i of version v committed.
func c(v string, i int) Answer {
	return Answer{OK: true, State: client.KeyState{Committed: &client.Record{ObjectMeta: meta(v), Shard: i}}}
}

// cs: the node has shard i of version v committed and shard j of version s staged.
func cs(v string, i int, s string, j int) Answer {
	a := c(v, i)
	a.State.Staged = []client.StagedRef{{Version: s, Shard: j}}
	return a
}

// cp: the node has shard i of version v committed and still holds shard j
// of the version p it superseded (KeyState.Previous).
func cp(v string, i int, p string, j int) Answer {
	a := c(v, i)
	a.State.Previous = &client.Record{ObjectMeta: meta(p), Shard: j}
	return a
}

// marker: the node has a delete marker committed under version v.
func marker(v string) Answer {
	return Answer{OK: true, State: client.KeyState{Committed: &client.Record{ObjectMeta: client.ObjectMeta{Version: v, Deleted: true}, Shard: -1}}}
}

// manifest: the node has a multipart manifest committed under version v.
func manifest(v string) Answer {
	m := client.ObjectMeta{Version: v, Parts: []client.PartRef{{Number: 1, Key: "part", Version: v1}}}
	return Answer{OK: true, State: client.KeyState{Committed: &client.Record{ObjectMeta: m, Shard: -1}}}
}

// raisedMeta is version v written with two of six nodes down: 2+4,
// acknowledged by 4 commits.
func raisedMeta(v string) client.ObjectMeta {
	return client.ObjectMeta{Version: v, Data: 2, Parity: 4, Quorum: 4}
}

// raised: the node has shard i of the raised version v committed.
func raised(v string, i int) Answer {
	return Answer{OK: true, State: client.KeyState{Committed: &client.Record{ObjectMeta: raisedMeta(v), Shard: i}}}
}

// raisedStaged: the node has shard i of version v committed and shard j of
// the raised version s staged.
func raisedStaged(v string, i int, s string, j int) Answer {
	return cs(v, i, s, j)
}

// raisedMarker: a delete marker written with two of six nodes down.
func raisedMarker(v string) Answer {
	a := marker(v)
	a.State.Committed.Quorum = 4
	return a
}

func empty() Answer { return Answer{OK: true} }

// down: the node did not answer (whatever it holds).
func down() Answer { return Answer{} }

// on lists the answers of nodes 0.. in order.
func on(as ...Answer) []Answer {
	for i := range as {
		as[i].Node = fmt.Sprintf("n%d", i)
	}
	return as
}

// want is what a row expects of the verdict: its kind, version, and, for
// Serve, the answer index per shard; for RollForward, the answers to commit.
type want struct {
	kind    Kind
	version string
	holders []int
	commit  []int
}

func check(t *testing.T, in Input, w want) {
	t.Helper()
	v := Decide(in)
	if v.Kind != w.kind || v.Meta.Version != w.version {
		t.Fatalf("Decide = %v %q (%s), want %v %q", v.Kind, v.Meta.Version, v.Reason(), w.kind, w.version)
	}
	if w.holders != nil && !slices.Equal(v.Holders, w.holders) {
		t.Fatalf("holders = %v, want %v", v.Holders, w.holders)
	}
	var got []int
	for _, c := range v.Commits {
		got = append(got, c.Answer)
	}
	if !slices.Equal(got, w.commit) {
		t.Fatalf("commits on answers %v, want %v", got, w.commit)
	}
}

// TestDecide is the read rule, one row per state of the protocol.
func TestDecide(t *testing.T) {
	tests := []struct {
		name string
		in   []Answer
		want want
	}{
		{"v1 everywhere: serve v1",
			on(c(v1, 0), c(v1, 1), c(v1, 2), c(v1, 3), c(v1, 4), c(v1, 5)),
			want{kind: Serve, version: v1, holders: []int{0, 1, 2, 3, 4, 5}}},
		{"nothing anywhere: not found",
			on(empty(), empty(), empty(), empty(), empty(), empty()),
			want{kind: NotFound}},
		{"v1 with two nodes down: serve v1 from the other four",
			on(c(v1, 0), down(), c(v1, 2), c(v1, 3), down(), c(v1, 5)),
			want{kind: Serve, version: v1, holders: []int{0, -1, 2, 3, -1, 5}}},
		{"five nodes down: an acknowledged version could be on them alone: unavailable",
			on(c(v1, 0), down(), down(), down(), down(), down()),
			want{kind: Unavailable}},
		{"v2 committed on 3 of 6, staged on 3: roll forward v2",
			on(c(v2, 0), c(v2, 1), c(v2, 2), cs(v1, 3, v2, 3), cs(v1, 4, v2, 4), cs(v1, 5, v2, 5)),
			want{kind: RollForward, version: v2, commit: []int{3, 4, 5}}},
		{"v2 committed on 1, staged on 2, v1 on the rest: committing would not make v2 readable: serve v1",
			on(c(v2, 0), cs(v1, 1, v2, 1), cs(v1, 2, v2, 2), c(v1, 3), c(v1, 4), c(v1, 5)),
			want{kind: Serve, version: v1, holders: []int{-1, 1, 2, 3, 4, 5}}},
		{"v2 committed on 1 (below write quorum), unreachable 0: never acknowledged, serve v1",
			on(c(v2, 0), c(v1, 1), c(v1, 2), c(v1, 3), c(v1, 4), c(v1, 5)),
			want{kind: Serve, version: v1, holders: []int{-1, 1, 2, 3, 4, 5}}},
		{"v2 committed on 1, one node down: still never acknowledged, serve v1",
			on(c(v2, 0), down(), c(v1, 2), c(v1, 3), c(v1, 4), c(v1, 5)),
			want{kind: Serve, version: v1, holders: []int{-1, -1, 2, 3, 4, 5}}},
		{"v2 committed on 3, 2 unreachable: could have been acked: unavailable",
			on(c(v2, 0), c(v2, 1), c(v2, 2), down(), down(), c(v1, 5)),
			want{kind: Unavailable, version: v2}},
		// An underwritten v2 (staged on 5, node 5's stage failed) whose
		// writer died after committing on 0-2; nodes 3 and 4, which held
		// it staged, are then lost and replaced by empty ones.
		{"underwritten v2 on 3, its staged shards lost, v1 superseded on 0-2: serve v1 from previous and committed shards",
			on(cp(v2, 0, v1, 0), cp(v2, 1, v1, 1), cp(v2, 2, v1, 2), empty(), empty(), c(v1, 5)),
			want{kind: Serve, version: v1, holders: []int{0, 1, 2, -1, -1, 5}}},
		{"the same with v1's superseded shards gone: neither version readable: not found",
			on(c(v2, 0), c(v2, 1), c(v2, 2), empty(), empty(), c(v1, 5)),
			want{kind: NotFound}},
		{"the same with 3 and 4 unreachable: they may have committed v2: unavailable, previous changes nothing",
			on(cp(v2, 0, v1, 0), cp(v2, 1, v1, 1), cp(v2, 2, v1, 2), down(), down(), c(v1, 5)),
			want{kind: Unavailable, version: v2}},
		{"underwritten v2 on 3, staged on 2 more: roll forward v2, previous changes nothing",
			on(cp(v2, 0, v1, 0), cp(v2, 1, v1, 1), cp(v2, 2, v1, 2), cs(v1, 3, v2, 3), cs(v1, 4, v2, 4), c(v1, 5)),
			want{kind: RollForward, version: v2, commit: []int{3, 4}}},
		{"v2 readable on 5, v1 superseded on them: serve v2, previous changes nothing",
			on(cp(v2, 0, v1, 0), cp(v2, 1, v1, 1), cp(v2, 2, v1, 2), cp(v2, 3, v1, 3), cp(v2, 4, v1, 4), c(v1, 5)),
			want{kind: Serve, version: v2, holders: []int{0, 1, 2, 3, 4, -1}}},
		{"v2 committed on 3, v1 on 3 answered before v2's stage reached them: in flux, ask again",
			on(c(v2, 0), c(v2, 1), c(v2, 2), c(v1, 3), c(v1, 4), c(v1, 5)),
			want{kind: InFlux, version: v1}},
		{"the same nodes asked again see v2 staged: roll forward v2",
			on(c(v2, 0), c(v2, 1), c(v2, 2), cs(v1, 3, v2, 3), c(v2, 4), c(v1, 5)),
			want{kind: RollForward, version: v2, commit: []int{3}}},
		{"v2 staged on 2 and committed nowhere: serve v1",
			on(cs(v1, 0, v2, 0), cs(v1, 1, v2, 1), c(v1, 2), c(v1, 3), c(v1, 4), c(v1, 5)),
			want{kind: Serve, version: v1, holders: []int{0, 1, 2, 3, 4, 5}}},
		{"v2 committed on 4 with v1 gone: serve v2, nothing to roll forward",
			on(c(v2, 0), c(v2, 1), c(v2, 2), c(v2, 3), empty(), c(v1, 5)),
			want{kind: Serve, version: v2, holders: []int{0, 1, 2, 3, -1, -1}}},
		{"a shard held twice counts once: three shards, may have been acked: unavailable",
			on(c(v1, 0), c(v1, 0), c(v1, 1), c(v1, 2), empty(), down()),
			want{kind: Unavailable, version: v1}},
		{"v3 committed on 1 with its stages swept, v2 readable: serve v2",
			on(c(v3, 0), c(v2, 1), c(v2, 2), c(v2, 3), c(v2, 4), c(v2, 5)),
			want{kind: Serve, version: v2}},

		{"marker committed on a quorum: deleted",
			on(marker(v2), marker(v2), marker(v2), marker(v2), marker(v2), c(v1, 5)),
			want{kind: Deleted, version: v2}},
		{"marker on 3 with 2 down: could have been acked: deleted",
			on(marker(v2), marker(v2), marker(v2), down(), down(), c(v1, 5)),
			want{kind: Deleted, version: v2}},
		{"marker committed on 1 data node only (below quorum) and v1 on the rest: serve v1",
			on(marker(v2), c(v1, 1), c(v1, 2), c(v1, 3), c(v1, 4), c(v1, 5)),
			want{kind: Serve, version: v1, holders: []int{-1, 1, 2, 3, 4, 5}}},
		{"marker on 1 parity node only and v1 on the rest: serve v1",
			on(c(v1, 0), c(v1, 1), c(v1, 2), c(v1, 3), marker(v2), c(v1, 5)),
			want{kind: Serve, version: v1, holders: []int{0, 1, 2, 3, -1, 5}}},
		{"marker on 3, v1 on 3: v1 unreadable, the delete is finished: roll the marker forward",
			on(marker(v2), marker(v2), marker(v2), c(v1, 3), c(v1, 4), c(v1, 5)),
			want{kind: RollForward, version: v2, commit: []int{3, 4, 5}}},
		{"marker on 3, v1 on 2, one node down: v1 unreadable whatever that node holds: roll the marker forward",
			on(marker(v2), marker(v2), marker(v2), c(v1, 3), c(v1, 4), down()),
			want{kind: RollForward, version: v2, commit: []int{3, 4}}},
		{"marker on 2, v1 on 2, two nodes down: v1 may be readable on them: unavailable",
			on(marker(v2), marker(v2), c(v1, 2), c(v1, 3), down(), down()),
			want{kind: Unavailable, version: v1}},
		{"marker on 1 and nothing older: roll the marker forward",
			on(marker(v2), empty(), empty(), empty(), empty(), empty()),
			want{kind: RollForward, version: v2, commit: []int{1, 2, 3, 4, 5}}},
		{"v3 over an acknowledged marker: serve v3",
			on(c(v3, 0), c(v3, 1), c(v3, 2), c(v3, 3), c(v3, 4), marker(v2)),
			want{kind: Serve, version: v3}},
		{"v3 committed on 1 over an acknowledged marker: deleted",
			on(c(v3, 0), marker(v2), marker(v2), marker(v2), marker(v2), marker(v2)),
			want{kind: Deleted, version: v2}},

		{"manifest on a quorum: serve it",
			on(manifest(v2), manifest(v2), manifest(v2), manifest(v2), manifest(v2), c(v1, 5)),
			want{kind: Serve, version: v2}},
		{"manifest on 3 of a new key: its completion is finished: roll forward",
			on(manifest(v2), manifest(v2), manifest(v2), empty(), empty(), empty()),
			want{kind: RollForward, version: v2, commit: []int{3, 4, 5}}},
		{"manifest on 1 over a readable v1: serve v1",
			on(c(v1, 0), c(v1, 1), c(v1, 2), c(v1, 3), c(v1, 4), manifest(v2)),
			want{kind: Serve, version: v1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, Input{Answers: tt.in, WriteQuorum: wq}, tt.want)
		})
	}
}

// TestDecideAfterRollForward: once the commits are sent, the caller asks
// again without rolling forward and gets what the answers now hold.
func TestDecideAfterRollForward(t *testing.T) {
	tests := []struct {
		name string
		in   []Answer
		want want
	}{
		{"v2 staged where it could be committed, not rolled forward: v1 unreadable, in flux",
			on(c(v2, 0), c(v2, 1), c(v2, 2), cs(v1, 3, v2, 3), cs(v1, 4, v2, 4), cs(v1, 5, v2, 5)),
			want{kind: InFlux, version: v1}},
		{"marker on 3, v1 on 3, commits failed: the marker wins anyway",
			on(marker(v2), marker(v2), marker(v2), c(v1, 3), c(v1, 4), c(v1, 5)),
			want{kind: Deleted, version: v2}},
		{"marker on 1, v1 readable: serve v1",
			on(marker(v2), c(v1, 1), c(v1, 2), c(v1, 3), c(v1, 4), c(v1, 5)),
			want{kind: Serve, version: v1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, Input{Answers: tt.in, WriteQuorum: wq, NoRollForward: true}, tt.want)
		})
	}
}

// TestDecidePartial: a read that asked only the four data shards' nodes
// (the other two count as silent) answers only what every path would.
func TestDecidePartial(t *testing.T) {
	tests := []struct {
		name string
		in   []Answer
		want want
	}{
		{"all four hold v1: serve v1",
			on(c(v1, 0), c(v1, 1), c(v1, 2), c(v1, 3)),
			want{kind: Serve, version: v1, holders: []int{0, 1, 2, 3, -1, -1}}},
		{"all four hold the marker: deleted",
			on(marker(v2), marker(v2), marker(v2), marker(v2)),
			want{kind: Deleted, version: v2}},
		{"marker committed on 1 data node only (below quorum): ask every node",
			on(marker(v2), c(v1, 1), c(v1, 2), c(v1, 3)),
			want{kind: AskAll}},
		{"a stage of v2: ask every node",
			on(c(v1, 0), cs(v1, 1, v2, 1), c(v1, 2), c(v1, 3)),
			want{kind: AskAll}},
		{"versions differ: ask every node",
			on(c(v2, 0), c(v2, 1), c(v2, 2), c(v1, 3)),
			want{kind: AskAll}},
		{"a manifest: ask every node",
			on(manifest(v2), manifest(v2), manifest(v2), manifest(v2)),
			want{kind: AskAll}},
		{"one did not answer: ask every node",
			on(c(v1, 0), c(v1, 1), c(v1, 2), down()),
			want{kind: AskAll}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, Input{Answers: tt.in, WriteQuorum: wq, Silent: 2, Partial: true}, tt.want)
		})
	}
}

// TestPathsAgree: whatever the six nodes hold, a read that settles on the
// data shards' nodes alone answers what a read of all six does.
func TestPathsAgree(t *testing.T) {
	for _, set := range stateSets {
		t.Run(set.name, func(t *testing.T) { pathsAgree(t, set) })
	}
}

// stateSet is what each node may hold in the exhaustive tests: v1 4+2,
// then v2 and the marker v3, plain or written with raised parity (2+4,
// quorum 4: two of six nodes were down), and the smallest quorum readers
// assume for versions they do not see.
type stateSet struct {
	name      string
	states    []func(i int) Answer
	minQuorum int
	quorum    map[string]int // by version; wq if absent
}

var stateSets = []stateSet{
	{name: "plain", states: []func(i int) Answer{
		func(i int) Answer { return c(v1, i) },
		func(i int) Answer { return c(v2, i) },
		func(int) Answer { return marker(v3) },
		func(i int) Answer { return cs(v1, i, v2, i) },
		func(int) Answer { return empty() },
	}},
	{name: "raised", minQuorum: 4, quorum: map[string]int{v2: 4, v3: 4}, states: []func(i int) Answer{
		func(i int) Answer { return c(v1, i) },
		func(i int) Answer { return raised(v2, i) },
		func(int) Answer { return raisedMarker(v3) },
		func(i int) Answer { return raisedStaged(v1, i, v2, i) },
		func(int) Answer { return empty() },
	}},
}

func (set stateSet) input(as []Answer, silent int) Input {
	return Input{Answers: as, WriteQuorum: wq, MinQuorum: set.minQuorum, Silent: silent}
}

func pathsAgree(t *testing.T, set stateSet) {
	states := set.states
	idx := make([]int, 6)
	for {
		all := make([]Answer, 6)
		for i, k := range idx {
			all[i] = states[k](i)
		}
		full := settle(set.input(all, 0))
		in := set.input(all[:4], 2)
		in.Partial = true
		part := Decide(in)
		if part.Kind != AskAll && (part.Kind != full.Kind || part.Meta.Version != full.Meta.Version) {
			t.Fatalf("nodes %v: the data nodes alone decide %v %s, all six %v %s", idx, part.Kind, part.Meta.Version, full.Kind, full.Meta.Version)
		}
		i := 0
		for ; i < len(idx); i++ {
			if idx[i]++; idx[i] < len(states) {
				break
			}
			idx[i] = 0
		}
		if i == len(idx) {
			return
		}
	}
}

// TestSettledHoldsWithEveryAnswer: whatever the six nodes hold, a verdict
// reached on the first k answers that Settled calls final is the one all
// six give, unless the version all six give was never acknowledged (fewer
// than the write quorum committed it) or the first k show it staged: a
// write in progress, which a reader may see either side of.
func TestSettledHoldsWithEveryAnswer(t *testing.T) {
	for _, set := range stateSets {
		t.Run(set.name, func(t *testing.T) { settledHolds(t, set) })
	}
}

func settledHolds(t *testing.T, set stateSet) {
	states := set.states
	idx := make([]int, 6)
	for {
		all := make([]Answer, 6)
		for i, k := range idx {
			all[i] = states[k](i)
		}
		full := settle(set.input(all, 0))
		for k := 1; k < 6; k++ {
			early := Decide(set.input(all[:k], 6-k))
			if !early.Settled(6 - k) {
				continue
			}
			early = settle(set.input(all[:k], 6-k))
			if early.Kind == full.Kind && early.Meta.Version == full.Meta.Version {
				continue
			}
			q := wq
			if vq, ok := set.quorum[full.Meta.Version]; ok {
				q = vq
			}
			if stagedIn(all[:k], full.Meta.Version) || !acked(all, full.Meta.Version, q) {
				continue
			}
			t.Fatalf("nodes %v: the first %d settle on %v %s, all six decide %v %s", idx, k, early.Kind, early.Meta.Version, full.Kind, full.Meta.Version)
		}
		i := 0
		for ; i < len(idx); i++ {
			if idx[i]++; idx[i] < len(states) {
				break
			}
			idx[i] = 0
		}
		if i == len(idx) {
			return
		}
	}
}

// acked reports whether q of as committed v or something newer.
func acked(as []Answer, v string, q int) bool {
	n := 0
	for _, a := range as {
		if c := a.State.Committed; a.OK && c != nil && c.Version >= v {
			n++
		}
	}
	return v != "" && n >= q
}

func stagedIn(as []Answer, v string) bool {
	for _, a := range as {
		for _, s := range a.State.Staged {
			if s.Version == v {
				return true
			}
		}
	}
	return false
}

// settle decides as a reader does: send the commits of a roll-forward
// (here they all succeed) and decide again.
func settle(in Input) Verdict {
	v := Decide(in)
	if v.Kind != RollForward {
		return v
	}
	as := slices.Clone(in.Answers)
	for _, cm := range v.Commits {
		as[cm.Answer].State = client.KeyState{Committed: &client.Record{ObjectMeta: v.Meta, Shard: cm.Shard}}
	}
	return Decide(Input{Answers: as, WriteQuorum: in.WriteQuorum, MinQuorum: in.MinQuorum, Silent: in.Silent, NoRollForward: true})
}

func TestNamed(t *testing.T) {
	a := c(v1, 0)
	a.State.Committed.Nodes = []string{"n0", "x", "", "n1", "y"}
	b := c(v1, 1)
	b.State.Committed.Nodes = []string{"y", "z"}
	gone := down()
	gone.State = b.State
	gone.State.Committed = &client.Record{ObjectMeta: client.ObjectMeta{Version: v1, Nodes: []string{"w"}}}
	if got := Named([]Answer{a, b, gone}, []string{"n0", "n1"}); !slices.Equal(got, []string{"x", "y", "z"}) {
		t.Fatalf("Named = %v", got)
	}
}

func TestWriting(t *testing.T) {
	silent := cs(v1, 0, v2, 0)
	silent.OK = false
	tests := []struct {
		name string
		in   []Answer
		want bool
	}{
		{"all agree", on(c(v2, 0), c(v2, 1), c(v2, 2)), false},
		{"no answers", nil, false},
		{"nothing anywhere", on(empty(), empty()), false},
		{"a stage", on(c(v2, 0), cs(v1, 1, v2, 1)), true},
		{"versions differ", on(c(v1, 0), c(v2, 1)), true},
		{"a failed answer does not count", on(c(v2, 0), silent), false},
		{"a node without the key", on(c(v2, 0), empty()), false},
	}
	for _, tt := range tests {
		if got := Writing(tt.in); got != tt.want {
			t.Errorf("%s: Writing = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestRollForwardFindsStageVersion: a version committed under a newer name
// than its shards were staged under is rolled forward from the staged
// shards its record names.
func TestRollForwardFindsStageVersion(t *testing.T) {
	m := meta(v2)
	m.Staged = v1
	committed := Answer{OK: true, State: client.KeyState{Committed: &client.Record{ObjectMeta: m, Shard: 0}}}
	staged := func(j int) Answer {
		return Answer{OK: true, State: client.KeyState{Staged: []client.StagedRef{{Version: v1, Shard: j}}}}
	}
	got := rollForward(on(committed, staged(1), staged(2), staged(3), empty(), empty()), m)
	want := []Commit{{Answer: 1, Shard: 1}, {Answer: 2, Shard: 2}, {Answer: 3, Shard: 3}}
	if !slices.Equal(got, want) {
		t.Fatalf("rollForward = %v, want %v", got, want)
	}
}

// TestDecideRaised: versions written with raised parity while two of the
// six nodes were down (2+4, write quorum 4, shards on four nodes), judged
// by their own quorum, and versions no answer shows by the smallest one.
func TestDecideRaised(t *testing.T) {
	r := raised
	tests := []struct {
		name string
		in   []Answer
		want want
	}{
		{"raised v2 on the four up nodes, the two others back with v1: serve v2",
			on(c(v1, 0), r(v2, 1), r(v2, 2), c(v1, 3), r(v2, 4), r(v2, 5)),
			want{kind: Serve, version: v2, holders: []int{-1, 1, 2, -1, 4, 5}}},
		{"raised v2 on four, two of them down: serve v2 from the other two",
			on(c(v1, 0), r(v2, 1), down(), c(v1, 3), down(), r(v2, 5)),
			want{kind: Serve, version: v2, holders: []int{-1, 1, -1, -1, -1, 5}}},
		{"raised v2 committed on 2 of 6 (unacknowledged), v1 on 4: v2 must not hide v1",
			on(c(v1, 0), c(v1, 1), c(v1, 2), c(v1, 3), r(v2, 4), r(v2, 5)),
			want{kind: Serve, version: v1, holders: []int{0, 1, 2, 3, -1, -1}}},
		{"raised v2 committed on 3 (quorum 4), v1 on 3: v2 skipped, v1 could have been acknowledged and is short of d: in flux",
			on(c(v1, 0), r(v2, 1), r(v2, 2), c(v1, 3), r(v2, 4), c(v1, 5)),
			want{kind: InFlux, version: v1}},
		{"raised v2 on 1, raised v1 on 2, three down: v2 may be acknowledged on the three: unavailable, not v1",
			on(raised(v1, 0), r(v2, 1), down(), raised(v1, 3), down(), down()),
			want{kind: Unavailable, version: v2}},
		{"raised v2 on 1 node, one node down: 1+1 < 4, serve v1",
			on(c(v1, 0), r(v2, 1), c(v1, 2), c(v1, 3), down(), c(v1, 5)),
			want{kind: Serve, version: v1, holders: []int{0, -1, 2, 3, -1, 5}}},
		{"raised v2 on 1, three nodes down: 1+3 reaches its quorum 4: unavailable, not v1",
			on(c(v1, 0), r(v2, 1), down(), c(v1, 3), down(), down()),
			want{kind: Unavailable, version: v2}},
		{"raised v1 readable from two nodes, four silent: a raised version could be on the four alone",
			on(raised(v1, 0), raised(v1, 1), down(), down(), down(), down()),
			want{kind: Unavailable}},
		{"raised v2 committed on 2, staged on 2: rolling forward reaches quorum 4",
			on(r(v2, 0), r(v2, 1), raisedStaged(v1, 2, v2, 2), raisedStaged(v1, 3, v2, 3), c(v1, 4), c(v1, 5)),
			want{kind: RollForward, version: v2, commit: []int{2, 3}}},
		{"raised v2 committed on 1, staged on 1: a roll forward would stay short of quorum: serve v1",
			on(r(v2, 0), raisedStaged(v1, 1, v2, 1), c(v1, 2), c(v1, 3), c(v1, 4), c(v1, 5)),
			want{kind: Serve, version: v1, holders: []int{-1, 1, 2, 3, 4, 5}}},
		{"raised marker on its four nodes, v1 on the two that were down: deleted",
			on(c(v1, 0), raisedMarker(v3), raisedMarker(v3), c(v1, 3), raisedMarker(v3), raisedMarker(v3)),
			want{kind: Deleted, version: v3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, Input{Answers: tt.in, WriteQuorum: wq, MinQuorum: 4}, tt.want)
		})
	}
	// The same answers judged with the map's quorum alone: the
	// per-version quorum is what makes the rows above come out right.
	t.Run("without per-version quorums", func(t *testing.T) {
		as := on(raised(v1, 0), r(v2, 1), down(), raised(v1, 3), down(), down())
		for _, a := range as {
			if a.State.Committed != nil {
				a.State.Committed.Quorum = 0
			}
		}
		v := Decide(Input{Answers: as, WriteQuorum: wq})
		if v.Kind != Serve || v.Meta.Version != v1 {
			t.Fatalf("the map's quorum alone decides %v %s: the row proves nothing", v.Kind, v.Meta.Version)
		}
	})
}
