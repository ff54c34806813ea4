package meta

import (
	"encoding/hex"
	"strconv"

	"github.com/zeebo/blake3"
)

const (
	prefixObject  = "o/"
	prefixStaged  = "s/"
	prefixGarbage = "g/"
	prefixBucket  = "b/"
	prefixHint    = "h/"
	// prefixPrevious maps a key to the garbage note of the superseded
	// shard its Stat reports (see DB.Previous).
	prefixPrevious = "p/"
)

// markerBit is set in the badger user meta of a delete marker's record, so
// that counting live objects needs keys only.
const markerBit byte = 1

func objectPrefix(bucket string) []byte { return []byte(prefixObject + bucket + "/") }

func objectKey(bucket, key string) []byte { return []byte(prefixObject + bucket + "/" + key) }

// nameHash names a key or version in fixed-width index keys: 128 bits of
// blake3 over the parts joined by NUL (bucket names hold no NUL, versions
// have a fixed width, so the joining is unambiguous). Collisions are
// harmless anyway: entries carry their names and readers compare them.
func nameHash(parts ...string) string {
	h := blake3.New()
	for i, p := range parts {
		if i > 0 {
			h.WriteString("\x00")
		}
		h.WriteString(p)
	}
	var sum [32]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

func stagedKeyPrefix(bucket, key string) []byte {
	return []byte(prefixStaged + nameHash(bucket, key) + "/")
}

func stagedKey(bucket, key, version string, shard int) []byte {
	return []byte(prefixStaged + nameHash(bucket, key) + "/" + version + "/" + strconv.Itoa(shard))
}

func garbageKey(path string) []byte { return []byte(prefixGarbage + path) }

func previousKey(bucket, key string) []byte {
	return []byte(prefixPrevious + nameHash(bucket, key))
}

func bucketKey(name string) []byte { return []byte(prefixBucket + name) }

func hintKey(bucket, key, version string, shard int) []byte {
	return []byte(prefixHint + nameHash(bucket, key, version) + "/" + strconv.Itoa(shard))
}
