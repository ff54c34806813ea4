package client

import "strconv"

// A version written with raised parity is written again at the map's
// layout under a re-code name: the re-code of version V (a ULID) is V.1,
// and a re-code of V.g is the next generation V.(g+1), up to
// V.MaxRecodeGeneration. '.' sorts below every character of a ULID and
// the generation is a single digit, so plain string order gives
// V < V.1 < V.2 < ... < V.9, and for any other version W, W > V implies W
// is above every generation of V (they differ within the first 26
// characters) and W < V implies W is below all of them: a re-code
// replaces exactly the generation before it and never anything newer
// (docs/ordering.md). A version and all its re-codes are one object.

// MaxRecodeGeneration is the last generation a re-code can have: a
// version at it is never re-coded again (RecodeVersion must not be asked
// for its next one), so its name stays a single digit above its base.
const MaxRecodeGeneration = 9

// ulidLen is the length of a canonical ULID.
const ulidLen = 26

// RecodeGeneration returns the re-code generation v names: 0 for a plain
// version (or a name that is no re-code's), g for V.g with g in
// 1..MaxRecodeGeneration.
func RecodeGeneration(v string) int {
	if len(v) != ulidLen+2 || v[ulidLen] != '.' {
		return 0
	}
	g := int(v[ulidLen+1] - '0')
	if g < 1 || g > MaxRecodeGeneration {
		return 0
	}
	return g
}

// RecodeVersion returns the name of the next re-code generation of v:
// V.1 for a plain version V, V.(g+1) for V.g. It panics if v is at
// MaxRecodeGeneration already; callers check RecodeGeneration first.
func RecodeVersion(v string) string {
	g := RecodeGeneration(v)
	if g >= MaxRecodeGeneration {
		panic("client.RecodeVersion: " + v + " is at the last re-code generation")
	}
	return BaseVersion(v) + "." + strconv.Itoa(g+1)
}

// BaseVersion returns the ULID a version name is based on: v itself, or
// the version a re-code of any generation stands for.
func BaseVersion(v string) string {
	if RecodeGeneration(v) > 0 {
		return v[:ulidLen]
	}
	return v
}

// IsRecode reports whether v names a re-code, of any generation.
func IsRecode(v string) bool { return RecodeGeneration(v) > 0 }

// RecodeTags returns m, a re-code replacing cur's version, with cur's tag
// set if cur's is newer: a re-code copies the record it replaces as the
// scrubber read it, and a tag update that record took since must not be
// lost when the re-code supersedes it. Only the record a re-code replaces
// (an older generation of the same base) lends its tags. A node applies
// it under the key's lock.
func RecodeTags(cur *Record, m ObjectMeta) ObjectMeta {
	if cur != nil && !cur.Deleted && IsRecode(m.Version) && BaseVersion(cur.Version) == BaseVersion(m.Version) &&
		cur.Version < m.Version && cur.TagsAt > m.TagsAt {
		m.Tagging, m.TagsAt = cur.Tagging, cur.TagsAt
	}
	return m
}
