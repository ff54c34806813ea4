package client

// RecodeSuffix ends the name of a version the scrubber re-coded: the
// re-code of version V (a ULID) is V+RecodeSuffix. '.' sorts below every
// character of a ULID, so for any other version W, W > V implies W > the
// re-code (they differ within the first 26 characters) and W < V implies
// W < it, while the re-code is above V: it replaces exactly V and never
// anything newer (docs/ordering.md).
const RecodeSuffix = ".1"

// ulidLen is the length of a canonical ULID.
const ulidLen = 26

// RecodeVersion returns the name of the re-code of version v.
func RecodeVersion(v string) string { return BaseVersion(v) + RecodeSuffix }

// BaseVersion returns the ULID a version name is based on: v itself, or
// the version a re-code replaced.
func BaseVersion(v string) string {
	if len(v) > ulidLen && v[ulidLen:] == RecodeSuffix {
		return v[:ulidLen]
	}
	return v
}

// IsRecode reports whether v names the re-code of a version.
func IsRecode(v string) bool { return BaseVersion(v) != v }

// RecodeTags returns m, the re-code of cur's version, with cur's tag set
// if cur's is newer: a re-code copies its base's record as the scrubber
// read it, and a tag update the base took since must not be lost when
// the re-code supersedes it. A node applies it under the key's lock.
func RecodeTags(cur *Record, m ObjectMeta) ObjectMeta {
	if cur != nil && !cur.Deleted && IsRecode(m.Version) && BaseVersion(m.Version) == cur.Version && cur.TagsAt > m.TagsAt {
		m.Tagging, m.TagsAt = cur.Tagging, cur.TagsAt
	}
	return m
}
