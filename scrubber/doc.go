// Package scrubber is the cluster's verify-and-repair pass: it finds every
// shard that is rotten or lost, rebuilds it from the others onto the node
// the cluster map names, and says exactly where the cluster stands.
//
// It talks to nodes only through storagenode/client (client.Node), never
// by touching node files, and must never import the gateway or the node
// server. Its only durable state is its own checkpoint (internal/checkpoint,
// the one place it may use badger). It must never resurrect a deleted
// object or overwrite a version newer than the one it repairs.
//
// # A pass
//
// Run does one pass in five phases, checkpointing its position as it goes
// so that a killed pass resumes where it stopped:
//
//  1. hints: the repair hints gateways (and the nodes' own verifiers) left
//     on the nodes are read first; the objects they name are checked and
//     repaired at once, fewest healthy shards first, and the hints deleted
//     once settled. A hint of a repair that failed stays for the next pass.
//  2. buckets: every node's bucket records are merged, newest wins, and
//     copied to the nodes whose record is missing or older (a wiped node).
//  3. walk: for every bucket, the nodes' key-ordered listings are merged
//     (newest record per key per node) and every key is checked (below).
//     Objects short of shards are put in a repair queue keyed by their
//     healthy count.
//  4. repair: the queue is drained lowest healthy count first, so the
//     objects closest to loss are rebuilt first whatever their names.
//  5. staged: staged versions older than the staging grace, which nodes
//     keep until a newer commit supersedes them there. One that some node
//     committed (its writer died between commits) is rolled forward, never
//     aborted; one that every node of the key answered for and none
//     committed (its writer died before committing) is aborted on the
//     nodes holding it; while a node does not answer it is left alone.
//
// # Checking an object
//
// The placement's nodes, and any other node whose listing showed the key,
// are asked for the key's state (Stat). Which version is live is decided
// by internal/readrule, the read rule the gateways apply too, so the pass
// never repairs a version readers skip nor skips one they serve. If the
// rule says a version committed on some nodes and staged on others is to
// be rolled forward, the pass commits it there, as readers do, whether or
// not a newer unacknowledged version sits above it. Each holder of the
// live version then verifies its shard where it lies (client.Verify,
// naming the index its state showed: a node whose shard was swapped
// meanwhile answers absent, and the shard counts as missing): the node
// re-hashes every block and the root, and quarantines a shard that fails,
// so the data never crosses the network to be checked. The object is then
// healthy (n shards verify), degraded (d to n-1: repairable),
// unrecoverable (fewer than d, though it may have been acknowledged),
// unacknowledged (its newest committed version, a delete marker included,
// never reached the write quorum: readers skip it and serve an older
// version, so it is not data loss, and the pass leaves it alone), or
// incomplete (nodes did not answer).
//
// A rebuild streams d verified shards (ReadShard, lazily: only as many as
// needed, each read naming its index) through codec.Rebuild, stages each
// missing shard on the node the current map names for its index and commits
// it there with the version's own metadata. The rebuilt root must equal the
// recorded one. Nodes apply their newest-wins rule to such commits, so a
// version written or deleted while the pass ran is never clobbered: the
// commit is a no-op and the object counts as changed. A node that holds the
// same version with its shard quarantined or lost accepts the rebuilt shard
// in place.
//
// # Delete markers and multipart manifests
//
// A multipart object's newest version is a manifest naming part objects
// under internal keys; it has no shards. The pass copies it to the nodes
// whose committed version is older, as readers do, and checks the parts
// when the walk reaches their keys, like any object.
//
// A delete marker that readers take as live (it could have been
// acknowledged, or nothing older can be served) is copied to the nodes
// whose committed version is older, so that losing the others later
// cannot bring an older version back. It
// is dropped (client.DropMarker, a compare-and-delete on each node) only
// when it is older than MarkerGrace, every node of the map answered the
// bucket's listing, and every node asked holds exactly that marker and
// nothing staged: then no node holds anything older it would let back.
// MarkerGrace must exceed the longest an older write may still commit,
// which the nodes' staging grace bounds.
//
// # Raised versions
//
// A version written with raised parity (fewer data shards than the map's:
// some of its nodes were down) is repaired at its own layout like any
// other. The null version of a bucket never versioned is then re-coded
// to the map's layout once every node of its placement answers
// (recode.go): read from its verified shards, encoded with the map's
// codec, staged on every placed node and committed under the name
// client.RecodeVersion(V), a copy of its record with only the version,
// layout and shards changed. That name sorts above V and below every
// version above V, so the re-code never wins over a client write; a node
// holding or staging a newer version stops it, and anything failing
// before the commits aborts it and leaves V as it was. A raised re-code
// V.g is re-coded the same way as the next generation V.(g+1), up to
// client.MaxRecodeGeneration.
//
// # Bounds
//
// Concurrency bounds the objects checked, rebuilt or moved at once; Rate
// bounds the shard bytes verified on nodes plus those read to rebuild or
// move. Memory is
// a few stripes per rebuild and one listing page per node; the repair
// queue lives in the checkpoint store, not in memory.
//
// Every metadata call has a deadline (CallTimeout; data calls get more in
// proportion to their bytes). A transient failure is retried once, so that
// a reset connection does not make a healthy shard look missing; a node
// that keeps failing trips its circuit breaker (internal/nodeaccess) and is
// skipped at once for a few seconds instead of being waited for on every
// object. A shard whose node did not answer is never counted missing or
// rebuilt: the pass reports itself incomplete instead.
//
// # Rebalancing
//
// After a map change (a node added, drained or removed, a weight changed)
// some shard slots name another node. The pass is also the rebalancer:
// a check asks, besides the current placement and the nodes listing the
// key, the previous map's placement and the nodes the version's metadata
// names (ObjectMeta.Nodes), as readers do, so it finds every copy. A
// shard verified on another node than the map names for its index is a
// move; it is queued like a repair (after the degraded objects, which
// come first) and, in the repair phase:
//
//  1. streamed from its holder (ReadShard, through the Rate throttle) and
//     staged on its new node, which checks every block; the root must be
//     the recorded one;
//  2. committed there with the version's metadata, its node list naming
//     the new placement, under the usual newest-wins rule;
//  3. verified where it now lies (client.Verify);
//  4. only then dropped from the old node (client.DropShard, a compare
//     and delete of that version and shard: a newer write there stays),
//     and only once every node of the key's placement under the previous
//     and current map holds the current map (the pass gives it to nodes
//     that are behind); otherwise the copy stays for a later pass.
//
// Until step 4 the old node keeps serving the shard, and readers find it
// through the previous map and the node lists, so no object is ever
// unreadable because of a move. Nodes refuse calls made under an older
// map than theirs (docs/fencing.md), so after step 4 a reader still on
// the previous map is refused everywhere it asks and re-resolves under
// the new map instead of finding the key gone. The same rule holds for
// every copy the rebalancer drops. The pass's own calls carry its map's
// epoch: a node with a newer map refuses them and sends it, and the pass
// resumes under that map. A node holds one shard of a version, so a
// move into a node that holds another shard of it waits until that one
// has moved on; moves that all wait on one another (a cycle, which a
// weight change, or a cluster of exactly n nodes, produces) are swapped:
// every shard is staged on its new node first, then each node drops the
// shard it holds and commits the staged one, so at most two shards are
// staged but uncommitted at any moment, each for a drop and a commit. A
// cycle of three or more needs p >= 2 and is otherwise reported failed.
// Shards whose holder is gone (a node removed by force) are rebuilt on
// their node instead. Once every shard is on its node, copies that no
// longer belong anywhere are dropped: duplicates, older versions, delete
// markers and manifests on nodes the map no longer places the key on, so
// that a drained node ends holding nothing and can be removed.
//
// A write or delete that lands during a move wins: the commit on the new
// node is a no-op, the drop on the old one compares the version, and the
// object counts as changed. Moves are resumable like everything else: a
// killed pass re-checks the queued objects, finds the shards already
// moved on their nodes (and their old copies as strays to drop) and goes
// on.
//
// The scrubber keeps the maps it worked from in its state, so the
// previous map is known across runs; SetMap gives it a newer one (the
// daemon re-reads its cluster file), and Daemon interrupts the pass in
// flight, resumes it under the new map and then runs a whole pass again.
//
// # Reporting
//
// Run returns a Report: objects and bytes verified, shards missing,
// corrupt and rebuilt, moves planned, done and failed and the bytes moved,
// objects by redundancy level before and after, the objects it could not
// repair (by name) and why the pass could not cover everything
// (Incomplete). `kintsugi scrub` maps it to its exit code: 1 if anything
// is unrecoverable, else 2 if the pass was incomplete (a failed move
// included), else 0. Daemon runs passes on an interval and serves /status
// and /metrics.
package scrubber
