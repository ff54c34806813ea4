package scrubber

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// IncompleteExamples is how many problems of each kind a Report keeps as
// examples: with a node down every object it holds is incomplete, and a
// summary that names a few of them says as much as one naming them all.
const IncompleteExamples = 5

// IncompleteKind counts the problems of one kind that kept a pass from
// covering or repairing everything, with the first few as examples.
type IncompleteKind struct {
	Kind     string   `json:"kind"`
	Count    int64    `json:"count"`
	Examples []string `json:"examples"`
}

// Patterns of the problems a pass reports (see the incomplete calls in
// the phases' files, object.go, rebuild.go and rebalance.go), most
// specific first. The kind names the node where one is to blame, so that
// one node down is one kind, however many objects it held.
var incompleteKinds = []struct {
	re   *regexp.Regexp
	kind string // with $1 for the node
}{
	{regexp.MustCompile(`\bnode (\S+) did not answer`), "node $1 did not answer"},
	{regexp.MustCompile(`\bnodes?(?: of \d+ more)? did not answer`), "nodes did not answer"},
	{regexp.MustCompile(`^node (\S+): (listing|deleting|copying) `), "node $1: $2 failed"},
	{regexp.MustCompile(`^bucket \S+: node (\S+) did not list it`), "node $1 did not list a bucket"},
	{regexp.MustCompile(`: (?:staging|committing) on (\S+): `), "repair failed on node $1"},
	{regexp.MustCompile(`: abort on (\S+): `), "abort of a staged version failed on node $1"},
	{regexp.MustCompile(`: (?:moving it from|dropping the stray shard|shard \d+ \(a cycle|in a cycle)`), "shard moves failed"},
	{regexp.MustCompile(`: shard \d+: rebuil`), "rebuilds failed"},
}

// IncompleteKindOf classifies one problem of a pass.
func IncompleteKindOf(msg string) string {
	for _, k := range incompleteKinds {
		if m := k.re.FindStringSubmatchIndex(msg); m != nil {
			return string(k.re.ExpandString(nil, k.kind, msg, m))
		}
	}
	return "other"
}

// addIncomplete counts msg in kinds, keeping it as an example while its
// kind has fewer than IncompleteExamples.
func addIncomplete(kinds []IncompleteKind, msg string) []IncompleteKind {
	kind := IncompleteKindOf(msg)
	i := slices.IndexFunc(kinds, func(k IncompleteKind) bool { return k.Kind == kind })
	if i < 0 {
		kinds = append(kinds, IncompleteKind{Kind: kind})
		i = len(kinds) - 1
	}
	k := &kinds[i]
	k.Count++
	if len(k.Examples) < IncompleteExamples {
		k.Examples = append(k.Examples, msg)
	}
	return kinds
}

// SummariseIncomplete groups problems by kind, the most frequent first
// (ties in order of first appearance).
func SummariseIncomplete(msgs []string) []IncompleteKind {
	var kinds []IncompleteKind
	for _, m := range msgs {
		kinds = addIncomplete(kinds, m)
	}
	return sortKinds(kinds)
}

func sortKinds(kinds []IncompleteKind) []IncompleteKind {
	out := slices.Clone(kinds)
	slices.SortStableFunc(out, func(a, b IncompleteKind) int { return cmp.Compare(b.Count, a.Count) })
	return out
}

// IncompleteSummary returns r's problems by kind, the most frequent first.
// A report written before kinds were counted has only its list, which is
// summarised instead (its counts then cover the listed problems only).
func (r *Report) IncompleteSummary() []IncompleteKind {
	if len(r.IncompleteKinds) > 0 || len(r.Incomplete) == 0 {
		return sortKinds(r.IncompleteKinds)
	}
	return SummariseIncomplete(r.Incomplete)
}

// BelowFull returns how many objects r's pass left with fewer than n
// healthy shards, and why, as far as the report can say: the nodes that
// did not answer, and the missing and corrupt shards the pass found and
// could not rebuild. A dry run rebuilds nothing.
func (r *Report) BelowFull(n int) (objects int64, why []string) {
	for level, c := range r.RedundancyAfter {
		if level < n {
			objects += c
		}
	}
	if objects == 0 {
		return 0, nil
	}
	for _, k := range r.IncompleteSummary() {
		if strings.Contains(k.Kind, "did not answer") {
			why = append(why, fmt.Sprintf("%s (%d)", strings.Replace(k.Kind, "did not answer", "down", 1), k.Count))
		}
	}
	if r.ShardsMissing > 0 {
		why = append(why, fmt.Sprintf("%d shards missing", r.ShardsMissing))
	}
	if r.ShardsCorrupt > 0 {
		why = append(why, fmt.Sprintf("%d shards corrupt", r.ShardsCorrupt))
	}
	if r.ShardsRebuilt > 0 || r.RepairsFailed > 0 {
		why = append(why, fmt.Sprintf("%d rebuilt, %d rebuilds failed", r.ShardsRebuilt, r.RepairsFailed))
	}
	if r.DryRun {
		why = append(why, "dry run: nothing rebuilt")
	}
	return objects, why
}
