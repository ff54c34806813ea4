package scrubber

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
)

func TestIncompleteKindOf(t *testing.T) {
	tests := []struct{ msg, want string }{
		{"photos/a.jpg version 01J: shard 2: its node n3 did not answer", "node n3 did not answer"},
		{"photos/b.jpg staged version 01J: node n4 did not answer", "node n4 did not answer"},
		{"photos/c.jpg: 2 nodes did not answer", "nodes did not answer"},
		{"photos/c.jpg: 4 shards verified, the nodes of 2 more did not answer", "nodes did not answer"},
		{"photos/c.jpg: 3 shards held, 1 nodes did not answer", "nodes did not answer"},
		{"node n2: listing hints: connection refused", "node n2: listing failed"},
		{"node n5: copying bucket photos: 503", "node n5: copying failed"},
		{"bucket photos: node n6 did not list it", "node n6 did not list a bucket"},
		{"photos/d version 01J: shard 1: staging on n2: disk full", "repair failed on node n2"},
		{"photos/d version 01J: shard 1: committing on n2: timeout", "repair failed on node n2"},
		{"photos/e staged version 01J: abort on n1: refused", "abort of a staged version failed on node n1"},
		{"photos/f version 01J: shard 0: moving it from n1 to n7: refused", "shard moves failed"},
		{"photos/g version 01J: shard 3: rebuild: too few shards", "rebuilds failed"},
		{"something new", "other"},
	}
	for _, tt := range tests {
		if got := IncompleteKindOf(tt.msg); got != tt.want {
			t.Errorf("IncompleteKindOf(%q) = %q, want %q", tt.msg, got, tt.want)
		}
	}
}

func TestSummariseIncomplete(t *testing.T) {
	down := func(i int) string { return fmt.Sprintf("b/k%d version V: shard 2: its node n3 did not answer", i) }
	var oneDown []string
	for i := range 8 {
		oneDown = append(oneDown, down(i))
	}
	tests := []struct {
		name string
		msgs []string
		want []IncompleteKind
	}{
		{"none", nil, nil},
		{"one node down: one kind, five examples", oneDown, []IncompleteKind{
			{Kind: "node n3 did not answer", Count: 8, Examples: oneDown[:IncompleteExamples]},
		}},
		{"most frequent first, ties in order of appearance", []string{
			"node n2: listing hints: refused",
			"x/y: 2 nodes did not answer",
			down(0), down(1),
			"x/z: 2 nodes did not answer",
			"mystery",
		}, []IncompleteKind{
			{Kind: "nodes did not answer", Count: 2, Examples: []string{"x/y: 2 nodes did not answer", "x/z: 2 nodes did not answer"}},
			{Kind: "node n3 did not answer", Count: 2, Examples: []string{down(0), down(1)}},
			{Kind: "node n2: listing failed", Count: 1, Examples: []string{"node n2: listing hints: refused"}},
			{Kind: "other", Count: 1, Examples: []string{"mystery"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SummariseIncomplete(tt.msgs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestIncompleteCountsBeyondList: the kinds count every problem, also
// those past the MaxListed the report names.
func TestIncompleteCountsBeyondList(t *testing.T) {
	var tl tally
	for i := range MaxListed + 10 {
		tl.incomplete("b/k%d version V: shard 0: its node n1 did not answer", i)
	}
	r := tl.snapshot()
	if len(r.Incomplete) != MaxListed || r.IncompleteCount != MaxListed+10 {
		t.Fatalf("listed %d of %d", len(r.Incomplete), r.IncompleteCount)
	}
	want := []IncompleteKind{{Kind: "node n1 did not answer", Count: MaxListed + 10, Examples: r.Incomplete[:IncompleteExamples]}}
	if got := r.IncompleteSummary(); !reflect.DeepEqual(got, want) {
		t.Errorf("summary %+v, want %+v", got, want)
	}
}

func TestBelowFull(t *testing.T) {
	tests := []struct {
		name    string
		r       Report
		objects int64
		why     []string
	}{
		{"healthy", Report{RedundancyAfter: map[int]int64{6: 100}}, 0, nil},
		{"node down", Report{
			RedundancyAfter: map[int]int64{6: 10, 5: 90},
			ShardsMissing:   90, RepairsFailed: 90,
			IncompleteKinds: []IncompleteKind{{Kind: "node n3 did not answer", Count: 90}},
		}, 90, []string{"node n3 down (90)", "90 shards missing", "0 rebuilt, 90 rebuilds failed"}},
		{"corrupt, dry run", Report{
			RedundancyAfter: map[int]int64{6: 10, 5: 1, 3: 1},
			ShardsCorrupt:   3, DryRun: true,
		}, 2, []string{"3 shards corrupt", "dry run: nothing rebuilt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objects, why := tt.r.BelowFull(6)
			if objects != tt.objects || !slices.Equal(why, tt.why) {
				t.Errorf("BelowFull(6) = %d, %q; want %d, %q", objects, why, tt.objects, tt.why)
			}
		})
	}
}
