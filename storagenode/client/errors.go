package client

import "errors"

// ErrWrongShard is the leaf error of a call that names a shard index of a
// version when the node holds another shard of that version. It is carried
// with kerr.NotExist, so callers that treat a missing shard as an erasure
// need nothing more; errors.Is(err, ErrWrongShard) tells the two apart. It
// crosses the wire by name (ErrorBody.Sentinel), so it is found in errors
// returned by a Client as in the node's own.
//
// A node's shard index of a version can change under a reader: the
// rebalancer swaps shards between nodes (drop shard j, commit shard i of
// the same version), and a shard of another index has the same length and
// valid block digests, so only the index in the call can tell it apart.
var ErrWrongShard = errors.New("the node holds another shard of the version")

// ErrVersionDeleted is the leaf error of a commit of a version that was
// deleted by version (Client.DeleteVersion): a late write or a rebuild
// must not bring it back. It is carried with kerr.NotExist.
var ErrVersionDeleted = errors.New("the version was deleted")

// sentinels are the leaf errors that cross the wire by name. Names are
// part of the wire API: append, never rename.
var sentinels = map[string]error{
	"wrong shard":     ErrWrongShard,
	"version deleted": ErrVersionDeleted,
}

// SentinelName returns the wire name of the sentinel in err's chain, or ""
// if it has none. The node puts it in ErrorBody.Sentinel.
func SentinelName(err error) string {
	for name, s := range sentinels {
		if errors.Is(err, s) {
			return name
		}
	}
	return ""
}

// remoteError is a node's error message that unwraps to the sentinel the
// node named, so that errors.Is works on the caller's side.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }
