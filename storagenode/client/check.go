package client

import (
	"fmt"
	"strings"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// Limits on names and shard indexes accepted by a node.
const (
	MaxKeyLen  = 1024 // bytes
	MaxShards  = 24   // shard indexes are 0..MaxShards-1
	MaxListLen = 10000
	// DefaultListLen is the page size used when a caller asks for <= 0.
	DefaultListLen = 1000
)

// CheckBucket reports whether name can be a bucket name on a node: non-empty
// and free of '/' and NUL, which the node uses as separators in its index.
// S3 naming rules are the gateway's business; these are the node's only.
func CheckBucket(name string) error {
	const op = "client.CheckBucket"
	switch {
	case name == "":
		return kerr.E(op, kerr.Invalid, "empty bucket name")
	case strings.ContainsAny(name, "/\x00"):
		return kerr.E(op, kerr.Invalid, fmt.Errorf("bucket name %q contains '/' or NUL", name))
	}
	return nil
}

// CheckKey reports whether bucket and key name an object a node accepts:
// a valid bucket and a non-empty key of at most MaxKeyLen bytes. Keys are
// opaque: any bytes are allowed, none of them ever reach a file path.
func CheckKey(bucket, key string) error {
	const op = "client.CheckKey"
	if err := CheckBucket(bucket); err != nil {
		return err
	}
	switch {
	case key == "":
		return kerr.E(op, kerr.Invalid, "empty key")
	case len(key) > MaxKeyLen:
		return kerr.E(op, kerr.Invalid, fmt.Errorf("key is %d bytes, more than %d", len(key), MaxKeyLen))
	}
	return nil
}

// CheckVersion reports whether v is a version name: a ULID in its canonical
// 26-character upper-case form, optionally followed by a re-code
// generation, ".1" to ".9" (RecodeVersion). Only the canonical form is
// accepted because newest-wins compares versions as strings.
func CheckVersion(v string) error {
	const op = "client.CheckVersion"
	base := BaseVersion(v)
	id, err := ulid.ParseStrict(base)
	if err != nil {
		return kerr.E(op, kerr.Invalid, fmt.Errorf("version %q: %w", v, err))
	}
	if id.String() != base {
		return kerr.E(op, kerr.Invalid, fmt.Errorf("version %q is not in canonical form", v))
	}
	return nil
}

// CheckShard reports whether i is a valid shard index.
func CheckShard(i int) error {
	if i < 0 || i >= MaxShards {
		return kerr.E("client.CheckShard", kerr.Invalid, fmt.Errorf("shard %d out of range 0..%d", i, MaxShards-1))
	}
	return nil
}

// CheckObject checks bucket, key and version together.
func CheckObject(bucket, key, version string) error {
	if err := CheckKey(bucket, key); err != nil {
		return err
	}
	return CheckVersion(version)
}

// ListLimit clamps a List page size to 1..MaxListLen (<= 0 means
// DefaultListLen); client and node both apply it.
func ListLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultListLen
	case n > MaxListLen:
		return MaxListLen
	}
	return n
}
