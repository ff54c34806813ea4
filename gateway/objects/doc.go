// Package objects is the gateway's object protocol: it turns bucket and
// object operations into two-phase staged writes, quorum commits, verified
// degraded reads and merged listings over the storage nodes a cluster map
// names. It knows nothing of HTTP or S3 wire formats; the gateway package
// does.
//
// It talks to nodes only through the node API of storagenode/client
// (client.Node, reached through internal/nodeaccess) and must never touch node files, keep object bytes beyond a
// few stripes per request, or import gin. It holds no durable state of its
// own: every gateway can serve every request, so everything it decides must
// be recoverable from what the nodes say.
//
// # Versions
//
// Every write (object, delete marker, bucket record) is named by a ULID,
// compared as a string: the newest committed version wins. Versions come
// from a hybrid logical clock per Store (versionClock): above its clock
// (Config.Now) and above every version it issued or saw in a node's answer
// (stage answers, refusals, stats, bucket reads). Clocks do not order
// writes, though: a node refuses to commit a version older than its own
// with a conflict that never counts toward the write quorum, and write
// quorums are majorities (2·WriteQuorum > n), so of two acknowledged
// writes the later has the higher version (docs/ordering.md). A PUT
// commits under its stage version when nothing newer showed up, else
// under a new version above what its stage answers reported, binding the
// staged shards to it (ObjectMeta.Staged); if refusals still cost it the
// quorum and nothing committed it, it tries once more above them on the
// nodes that refused (commitWrite), else answers ErrQuorum.
//
// # Writes
//
// PutObject encodes the body once into d+p shard streams and stages shard i
// on the i-th node of the key's placement. Each stream sits behind a small
// bounded buffer so a slow node does not hold back the others until its
// buffer is full; a node that fails, or makes no progress for StallTimeout,
// is dropped and the write carries on without it, as is a node that answers
// with a root digest other than the one the gateway computed; dropped nodes
// are told to abort, so what they kept is never rolled forward. Only when at
// least WriteQuorum shards are staged does the gateway send commit, with the
// object's full metadata, to every staged node; the write is acknowledged
// after WriteQuorum commits. With fewer staged it aborts them all. Before
// commit nothing is visible, so a body that ends early, a lost quorum or a
// gateway crash leaves the previous version in place. Shards that did not
// make it are reported to the nodes that did (hints) so the scrubber
// rebuilds them at once. A write taken while nodes were known to be down
// (see Node health) is coded with d-k data and p+k parity shards instead,
// d and p being recorded in its metadata, so that it still survives p
// further failures; one that loses a node only during the write survives
// p-1 until repaired.
//
// DeleteObject commits a delete marker, a version without shards, under the
// same quorum rule, so an acknowledged delete can never be outvoted by an
// older version that resurfaces on a restarted or repaired node.
//
// # Reads
//
// OpenObject and StatObject ask the placement's nodes (and the previous map
// epoch's, while shards move) for the key's state, then the nodes that the
// versions found name as holders (ObjectMeta.Nodes) but neither map places,
// so a shard not yet moved after several map changes is still found. Which
// version the answers make live is decided by internal/readrule, the
// protocol's read rule, which the scrubber applies too; its package doc
// states it. In short: if WriteQuorum nodes are silent the answer is
// ErrQuorum; a version committed somewhere and staged elsewhere is rolled
// forward (its commit sent to the staged nodes) when that makes it
// readable; the newest version that could have been acknowledged (commits
// seen plus silent nodes reach WriteQuorum) is served if d of its shards
// are held, else the answer is ErrQuorum, never stale data for an
// acknowledged write; versions that never were are passed over. Delete
// markers and manifests obey the same test, so a marker that a failed
// delete left on one node does not make reads answer 404 or 200 depending
// on which nodes they asked; one is committed on the other nodes only when
// nothing older can be served.
//
// A healthy read first asks only the nodes of the first d placed shards;
// the rule settles it there only when they all hold one committed version
// and nothing staged, which every read of all the nodes would serve too.
// Anything else is asked of every node again.
//
// The answers are not one snapshot: each node answers at its own moment. If
// every node answered and a read would answer ErrQuorum while the answers
// show a write in progress (a staged version, or nodes committed to
// different versions), it asks again, at once and then at growing
// intervals for up to a second: two writers racing on a key can show a
// version committed on too few nodes to read and too many to skip, and a
// later look finds the commit finished or rolls it forward. A shard
// stream sent along with a node's state is used only as the shard index
// that state's record names, and only if its root matches that index's in
// the version: after a roll-forward it belongs to the version before.
//
// Object.WriteRange fetches only the stripes that cover the range: data
// shards first, opened in parallel, so the healthy path decodes nothing;
// parity shards are opened lazily when the codec needs them. Every stream
// names the shard index it is for: a node whose shard of the version was
// swapped for another since the read resolved (the rebalancer does this)
// refuses (client.ErrWrongShard), and the shard counts as missing, as
// another index's frames would pass every block check. Every block is
// checked against its digest by the codec before a byte reaches the caller,
// and every failed or missing shard is reported as a hint.
//
// # Node health
//
// With Config.Health set, every node call passes the node's circuit breaker
// first (internal/nodeaccess states which answers count against a node): a node found down is skipped at once, and streams open to it are
// cut off when it goes down. Calls that are not needed for a decision are
// not waited for: once the answers settle a read (and the silent nodes,
// counted as unreachable, stay below WriteQuorum), or WriteQuorum nodes
// have committed, the others get one hedge delay (their recent p95 latency,
// clamped) and are then treated as not having answered, which the rules
// above always allow. Commits left running finish in the background and are
// reported for repair if they fail. A data shard whose fetch outlasts its
// node's hedge delay is hedged: the next parity shard is opened at the same
// stripe and, if it answers first and d shards that have not failed
// remain, the data shard is dropped for it; the first d shards to arrive
// win, and a stalled node costs a read about one hedge delay.
//
// # Lists
//
// ListObjects merges every node's key-ordered pages, keeps the newest
// version per key, drops delete markers and folds keys into common prefixes.
// Pages are fetched lazily, so a listing costs about MaxKeys records per
// node whatever the bucket's size. A listing shows a key's newest committed
// version; in the rare window where that version is unreadable and was never
// acknowledged, GET may serve the previous one until the scrubber settles it.
//
// # Multipart uploads
//
// An upload is recorded as an empty internal object "\x00mpu/<id>" (the id
// is a ULID) whose metadata names the client key (Target), content type
// and user metadata; any gateway can continue it. Each part upload is an
// ordinary object of its own under "\x00mpu/<id>/<part>.<attempt>",
// erasure-coded, checksummed and committed like any PUT. Every attempt
// gets a fresh key, so a part uploaded again, or landing late, never
// replaces data that a completed object refers to. Client keys cannot
// contain control characters, so this namespace cannot collide with
// theirs; listings start past it and never show it.
//
// CompleteUpload checks the listed parts (order, ETags, checksums, sizes,
// and that each is readable), then commits a manifest version of the
// client key on the key's nodes: an ObjectMeta with Parts naming each
// part's key and version and no shards of its own. Nodes commit it like a
// delete marker, under the same write quorum, so completion is atomic: a
// reader sees the old version or the whole new one, and no data is copied
// or re-encoded. A manifest committed on any node is served (its data is
// in the parts) and committed by the reader on the placed nodes that lack
// it. Reads stream the parts in order, resolving and verifying each one
// as any object. The ETag is the MD5 of the parts' MD5s, "-N".
//
// Freeing: completion deletes the upload record, the attempts it did not
// use and the parts of a multipart version it replaced; AbortUpload and
// DeleteBucket delete the record and every attempt; DeleteObject of a
// multipart object deletes its parts. Deletions are delete markers, so
// the nodes drop the shards. All of that is best effort after the
// operation succeeded; SweepUploads, run periodically by gateways, aborts
// uploads older than the expiry (7 days by default) and deletes every part
// that neither an upload in progress nor the live version of its key
// names, which also covers a multipart object replaced by a plain PUT or a
// copy. It never frees a part that the live version of its key names.
//
// Parts outlive every manifest that could be served. Since a manifest on
// any single node is served and rolled forward, even one a completion
// committed below the quorum before it failed, "the live version" above
// means the newest record of every node of the key's placement (current
// and previous map), not just the version a read would pick now; and a
// node that does not answer may hold such a manifest, so then nothing of
// the upload is freed. An abort then still ends the upload (its record is
// deleted) and leaves the parts to a later sweep.
//
// The scrubber treats parts as ordinary objects; a record with Parts has
// no shards to verify.
//
// # Map epochs
//
// Every operation's node calls (but the shard reads of a resolved version)
// carry the epoch of the map it resolves placement with; a node holding a
// newer map refuses them with its map, which the Store installs, and
// reads, deletes, completions, aborts, listings and puts of at most one
// stripe run once more under it (fence.go, docs/fencing.md).
//
// # Buckets
//
// Bucket records live on every node of the map; creating or deleting a
// bucket needs a majority of them, and reading one asks all of them and
// takes the newest record from a majority. Positive answers are cached for
// BucketCacheTTL, so another gateway's delete may be noticed that much late.
//
// A record also carries the bucket's configuration (BucketConfig: tagging
// and CORS, opaque to the store). UpdateBucket changes it by writing the
// whole record again under a new version, by the same path and ordering
// rule as CreateBucket; other gateways act on the previous configuration
// until their cached record expires.
//
// # Metrics
//
// With Config.Registerer set, the Store counts what S3 answers do not
// show: reads that needed parity (degraded), roll-forwards, writes refused
// for lack of a write quorum and writes acknowledged with raised parity
// (kintsugi_gateway_*). A write retried under a newer map is counted once
// per attempt.
package objects
