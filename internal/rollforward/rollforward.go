// Package rollforward holds the one rule of the object protocol that both
// gateways and the scrubber apply when they find a version committed on
// some nodes and only staged on others (its writer died between commits):
// which staged copies to commit so the version becomes readable.
//
// It is pure: it decides, callers send the commits. It imports only the
// node API's wire types.
package rollforward

import "github.com/kintsugi-store/kintsugi/storagenode/client"

// Plan returns, for each node answer states[i] (answered[i] false: no
// answer), the staged shard index to commit for meta's version there, or
// -1 for nothing. It returns nil when committing would not leave at least
// meta.Data distinct shards of the version committed: each commit drops
// the node's shard of an older version, and trading a readable old version
// for an unreadable new one would lose both.
func Plan(states []client.KeyState, answered []bool, meta client.ObjectMeta) []int {
	plan := make([]int, len(states))
	shards := make(map[int]bool)
	for i, st := range states {
		plan[i] = -1
		if !answered[i] {
			continue
		}
		if c := st.Committed; c != nil && c.Version >= meta.Version {
			if c.Version == meta.Version {
				shards[c.Shard] = true
			}
			continue
		}
		for _, ref := range st.Staged {
			// A shard committed under a newer version than it was
			// staged under is found by its stage version.
			if ref.Version == meta.Version || ref.Version == meta.StageVersion() {
				plan[i] = ref.Shard
			}
		}
	}
	added := 0
	for i, sh := range plan {
		switch {
		case sh < 0:
		case shards[sh]:
			plan[i] = -1 // that shard is committed elsewhere already
		default:
			shards[sh] = true
			added++
		}
	}
	if added == 0 || len(shards) < meta.Data {
		return nil
	}
	return plan
}
