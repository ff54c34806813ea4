// Package client owns the storage node API as its callers see it: the
// small interfaces that name it by concern (Stager, Committer,
// ShardReader, ... composed into Node, with Versioner apart for the
// versions of versioned buckets; see node.go), Client, the
// implementation of them over HTTP for one node, and the wire types, as
// aliases of storagenode/wire. Gateways and the scrubber talk to nodes
// only through these interfaces, never by touching node files; the node's
// in-process client (storagenode.Local) and the test fake
// (storagenode/nodetest) implement the same ones.
//
// Client validates arguments, puts a deadline on every call (from ctx),
// wraps errors with kerr kinds (NotExist, Unavailable, Transient, Corrupt,
// Invalid, Unauthorized, TooLarge), keeps the node's sentinel errors
// (ErrWrongShard) in the chain for errors.Is, and never buffers a whole
// shard. The package must never import the node server, badger or
// anything that tracks node health: breakers wrap it from outside
// (internal/nodeaccess).
//
// The package also holds what both ends of the wire must agree on, so that
// there is one implementation of each: request signing (Sign, Verify), the
// name rules (CheckKey, CheckVersion, ...) and page limits. Object names
// travel in query parameters only, never in the URL path.
//
// Wire API (all under /v1, names in the query; errors are ErrorBody JSON).
// Every call but health, map, scrub/status and shard reads may carry the
// caller's map epoch in HeaderMapEpoch; a node holding a newer map refuses
// it with 409 and its map in ErrorBody.Map (see Fence, docs/fencing.md):
//
//	PUT    /v1/stage?bucket&key&version&shard&block   body: framed shard  -> StagedRef (with newest)
//	POST   /v1/commit                                 body: ObjectMeta    -> Record, or 409 ErrorBody{newer}
//	POST   /v1/abort?bucket&key&version
//	GET    /v1/shard?bucket&key&version&shard&off&len -> framed bytes
//	GET    /v1/stat?bucket&key                        -> KeyState
//	GET    /v1/list?bucket&prefix&after&limit         -> ListPage
//	PUT    /v1/bucket                                 body: BucketRecord
//	GET    /v1/bucket?name                            -> BucketRecord
//	GET    /v1/buckets                                -> []BucketRecord
//	POST   /v1/hints, DELETE /v1/hints                body: []Hint
//	GET    /v1/hints?limit                            -> []Hint
//	GET    /v1/health                                 -> Health
//	POST   /v1/verify                                 body: VerifyRequest -> []VerifyResult (refs name the shard index)
//	GET    /v1/scrub/status                           -> ScrubStatus
//	POST   /v1/marker/drop?bucket&key&version         -> {"dropped": bool}
//	POST   /v1/shard/drop?bucket&key&version&shard    -> DropResult
//	GET    /v1/staged?limit                           -> []StagedShard
//	GET    /v1/key/versions?bucket&key                -> KeyVersions
//	GET    /v1/versions?bucket&prefix&after_key&after_version&limit -> VersionPage
//	POST   /v1/version/delete?bucket&key&version      -> {"current": Record|null}
//	POST   /v1/commit/noncurrent                      body: ObjectMeta    -> Record
package client

import (
	"errors"

	"github.com/kintsugi-store/kintsugi/storagenode/wire"
)

// The node API's types are declared in package wire, which the node server
// shares; these aliases keep their names in this package.
type (
	ObjectMeta    = wire.ObjectMeta
	PartRef       = wire.PartRef
	Record        = wire.Record
	StagedRef     = wire.StagedRef
	KeyState      = wire.KeyState
	BucketRecord  = wire.BucketRecord
	Hint          = wire.Hint
	Health        = wire.Health
	ListPage      = wire.ListPage
	ErrorBody     = wire.ErrorBody
	ConflictError = wire.ConflictError
)

// Newer returns the version a ConflictError in err's chain names, or "".
func Newer(err error) string {
	var ce *ConflictError
	if errors.As(err, &ce) {
		return ce.Newer
	}
	return ""
}
