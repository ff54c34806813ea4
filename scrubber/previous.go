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
// The nodes that committed newest may still serve the fallback's shards
// for their superseded grace, but then remove them, so they do not count.
func fallbackShort(states []nodeState, newest client.ObjectMeta, unreached int) (verdict, string, bool) {
	var prev *client.Record
	for _, ns := range states {
		if c := ns.st.Committed; ns.err == nil && c != nil && c.Version < newest.Version && (prev == nil || c.Version > prev.Version) {
			prev = c
		}
	}
	if prev == nil || prev.Deleted || len(prev.Parts) > 0 || prev.Shard < 0 {
		return vNone, "", false
	}
	shards := make(map[int]bool)
	for _, ns := range states {
		if c := ns.st.Committed; ns.err == nil && c != nil && c.Version == prev.Version && c.Shard >= 0 {
			shards[c.Shard] = true
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
