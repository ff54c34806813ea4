package scrubber

import (
	"fmt"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// fallbackShort checks the version readers fall back to when newest, the
// newest committed version of a key, cannot be read and never reached
// write quorum: the newest older version committed on the answering
// nodes. Readers skip newest only because that older one was (or may have
// been) acknowledged; if it has a shard of its own but fewer than d of its
// shards are still committed anywhere, the key is unreadable and the pass
// must say so rather than count an unacknowledged write. While nodes did
// not answer, the missing shards may be there: incomplete.
//
// Shards the nodes that committed newest still hold of the fallback (their
// KeyState.Previous) count, as readers count them: held after an
// underwritten overwrite, they stay until this pass or the next has
// settled the key. The pass does not rebuild the fallback's missing
// shards: readers skip newest, so the key is reported unacknowledged, and
// those nodes would refuse a commit older than their record anyway.
func fallbackShort(states []nodeState, newest client.ObjectMeta, unreached int) (verdict, string, bool) {
	var prev *client.Record
	for _, ns := range states {
		if c := ns.State.Committed; ns.Err == nil && c != nil && c.Version < newest.Version && (prev == nil || c.Version > prev.Version) {
			prev = c
		}
	}
	if prev == nil || prev.Deleted || len(prev.Parts) > 0 || prev.Shard < 0 {
		return vNone, "", false
	}
	shards := make(map[int]bool)
	for _, ns := range states {
		if c := ns.State.Committed; ns.Err == nil && c != nil && c.Version == prev.Version && c.Shard >= 0 {
			shards[c.Shard] = true
		}
		if p := ns.State.Previous; ns.Err == nil && p != nil && p.Version == prev.Version && p.Shard >= 0 {
			shards[p.Shard] = true
		}
	}
	if len(shards) >= prev.Data {
		return vNone, "", false
	}
	why := fmt.Sprintf("newest version %s never reached write quorum, and version %s before it has %d of %d shards needed",
		newest.Version, prev.Version, len(shards), prev.Data)
	if unreached > 0 {
		return vIncomplete, fmt.Sprintf("%s, %d nodes did not answer", why, unreached), true
	}
	return vUnrecoverable, why, true
}
