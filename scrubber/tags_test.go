package scrubber

import (
	"testing"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// TestMergedVersionsNewestTags: a version's tags are those of the node
// record with the newest tag stamp, in whatever order the nodes answer.
func TestMergedVersionsNewestTags(t *testing.T) {
	rec := func(version, tagging, at string) client.Record {
		return client.Record{ObjectMeta: client.ObjectMeta{Bucket: "b", Key: "k", Version: version, Tagging: tagging, TagsAt: at}}
	}
	const v1, v2 = "01J00000000000000000000001", "01J00000000000000000000002"
	const s1, s2 = "01J00000000000000000000010", "01J00000000000000000000020"
	stale := nodeVersions{kv: client.KeyVersions{Versions: []client.Record{rec(v2, "w=1", ""), rec(v1, "old=1", s1)}}}
	fresh := nodeVersions{kv: client.KeyVersions{Versions: []client.Record{rec(v2, "t=2", s2), rec(v1, "", s2)}}}
	for _, order := range [][]nodeVersions{{stale, fresh}, {fresh, stale}} {
		got, _ := mergedVersions(order)
		if len(got) != 2 || got[0].Version != v2 || got[0].Tagging != "t=2" || got[1].Version != v1 || got[1].Tagging != "" {
			t.Fatalf("merged %+v; want %s with t=2, %s with no tags", got, v2, v1)
		}
	}
}
