package rollforward

import (
	"slices"
	"testing"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

func committed(v string, shard int) client.KeyState {
	return client.KeyState{Committed: &client.Record{ObjectMeta: client.ObjectMeta{Version: v}, Shard: shard}}
}

func staged(v string, shard int) client.KeyState {
	return client.KeyState{Staged: []client.StagedRef{{Version: v, Shard: shard}}}
}

func TestPlan(t *testing.T) {
	const old, v, newer = "01AAAAAAAAAAAAAAAAAAAAAAAA", "01BBBBBBBBBBBBBBBBBBBBBBBB", "01CCCCCCCCCCCCCCCCCCCCCCCC"
	meta := client.ObjectMeta{Version: v, Data: 4}
	all := func(n int) []bool {
		b := make([]bool, n)
		for i := range b {
			b[i] = true
		}
		return b
	}
	tests := []struct {
		name     string
		states   []client.KeyState
		answered []bool
		want     []int
	}{
		{"committed on 1, staged on 5: commit the 5",
			[]client.KeyState{committed(v, 0), staged(v, 1), staged(v, 2), staged(v, 3), staged(v, 4), staged(v, 5)},
			all(6), []int{-1, 1, 2, 3, 4, 5}},
		{"committed on 1, staged on 2: would not be readable",
			[]client.KeyState{committed(v, 0), staged(v, 1), staged(v, 2), committed(old, 3), committed(old, 4), committed(old, 5)},
			all(6), nil},
		{"already readable: nothing to add",
			[]client.KeyState{committed(v, 0), committed(v, 1), committed(v, 2), committed(v, 3), staged(old, 4), {}},
			all(6), nil},
		{"a node with a newer version is left alone",
			[]client.KeyState{committed(v, 0), committed(newer, 1), staged(v, 2), staged(v, 3), staged(v, 4), {}},
			all(6), []int{-1, -1, 2, 3, 4, -1}},
		{"unanswered nodes are not counted or committed",
			[]client.KeyState{committed(v, 0), staged(v, 1), staged(v, 2), staged(v, 3), staged(v, 4)},
			[]bool{true, true, true, false, false}, nil},
		{"a shard staged twice is committed once",
			[]client.KeyState{committed(v, 0), staged(v, 1), staged(v, 1), staged(v, 2), staged(v, 3)},
			all(5), []int{-1, 1, -1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Plan(tt.states, tt.answered, meta); !slices.Equal(got, tt.want) {
				t.Fatalf("Plan = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPlanFindsStageVersion: a version committed under a newer version than
// its shards were staged under is rolled forward from the staged shards
// its record names.
func TestPlanFindsStageVersion(t *testing.T) {
	const stage, v = "01AAAAAAAAAAAAAAAAAAAAAAAA", "01BBBBBBBBBBBBBBBBBBBBBBBB"
	meta := client.ObjectMeta{Version: v, Staged: stage, Data: 4}
	states := []client.KeyState{committed(v, 0), staged(stage, 1), staged(stage, 2), staged(stage, 3), {}}
	if got, want := Plan(states, []bool{true, true, true, true, true}, meta), []int{-1, 1, 2, 3, -1}; !slices.Equal(got, want) {
		t.Fatalf("Plan = %v, want %v", got, want)
	}
}
