package wire

// Bucket versioning states, as S3 names them. A bucket never versioned has
// the empty state.
const (
	VersioningEnabled   = "Enabled"
	VersioningSuspended = "Suspended"
)

// NullVersion is the version id S3 clients see for a version written while
// the bucket was not versioned (ObjectMeta.Versioned false).
const NullVersion = "null"

// BucketState is a bucket's versioning state as of a bucket record version.
type BucketState struct {
	Versioning string `json:"versioning"`
	Version    string `json:"version"` // of the bucket record
}

// Newer reports whether s is a newer state than the one read from the bucket
// record of version at.
func (s *BucketState) Newer(at string) bool { return s != nil && s.Version > at }

// KeyVersions is every version one node holds of a key: the committed
// (current) record first, then its noncurrent versions, newest first, and
// the versions of the key deleted by version.
type KeyVersions struct {
	Versions []Record `json:"versions,omitempty"`
	Purged   []string `json:"purged,omitempty"`
}

// VersionPage is one page of a node's versions of a bucket's keys: in key
// order, each key's versions newest first (the current one first).
type VersionPage struct {
	Records   []Record `json:"records"`
	Truncated bool     `json:"truncated"`
}

// TagUpdate replaces the tag set of one version a node holds, current or
// noncurrent, without writing a new version. At stamps the update (a
// version name from the writer's clock): a node keeps the tag set of the
// newest stamp, so that nodes receiving concurrent updates in different
// orders end up with the same one.
type TagUpdate struct {
	Bucket  string `json:"bucket"`
	Key     string `json:"key"`
	Version string `json:"version"`
	Tagging string `json:"tagging,omitempty"` // URL-encoded; "" removes every tag
	At      string `json:"at"`
}
