// Package storagenode is one storage node: a data directory of shard files
// and a badger index (storagenode/internal/meta), served over a small
// internal HTTP API under /v1/ (see storagenode/client for the Go side).
//
// The protocol is the Node's methods (Stage, Commit, Abort, ReadShard,
// Stat, StatData, List, PutBucket, GetBucket, ListBuckets, AddHints,
// ListHints, DeleteHints, Verify, ScrubStatus, DropMarker, ListStaged,
// DropShard, GetMap, PutMap, Health): ctx first, with the signatures,
// contracts and error kinds of the same methods of client.Client, fenced
// by the client.Fence in ctx. The HTTP handler (http.go) is a thin adapter
// over them, with one error writer. Local is a node client for a Node in
// the same process: the Client's method set without HTTP, JSON or
// signing, so that callers hold either behind the same interface and
// cannot tell them apart by their answers or errors.
//
// The node owns the durability of what it acknowledges. It never decodes
// objects or talks to other nodes; it never lets a client-supplied name
// become a file path: a shard file is named by the hex blake3 of
// (bucket, key, version) plus its shard index, under two levels of fan-out
// directories, and names only ever travel in query parameters.
//
// Directory layout:
//
//	meta/                       badger index
//	shards/ab/cd/<hash>.<i>     committed shard i of a version
//	staging/<hash>.<i>.<nonce>  staged shard (nonce: concurrent stages never share a file)
//	packs/<id>.pack             mid-size shards, back to back (see below)
//	quarantine/ab/cd/<hash>.<i>.<nonce>  shard that failed verification, kept until repaired or superseded
//
// Write path and durability order:
//
//  1. Stage streams the body through codec.FrameReader (every block is
//     verified against its digest as it arrives; only a Local with
//     LocalOptions.TrustFrames skips that) into a new file under
//     staging/, fsyncs the file and its directory, and records the staged
//     entry (synced) in the index. Only then does it answer with the root
//     digest it computed.
//  2. Commit, under the key's lock, renames the staged file to its final
//     name under shards/, fsyncs that directory, and then writes the
//     committed record, the removal of the staged entry and a note of the
//     superseded version's file, with its record, in one synced index
//     transaction. The superseded file stays for Config.SupersededGrace,
//     during which ReadShard of exactly that version still serves it (a
//     read that resolved the version just before the commit must not find
//     its shards gone). A commit of an underwritten version (its metadata
//     names no node for some shard: a stage failed and parity was not
//     raised) starts that grace only after Config.UnderwrittenHold, so
//     that the old version outlives the loss of p nodes until a scrub pass
//     has settled the new one. For as long as the note exists Stat reports
//     the superseded record as KeyState.Previous, which readers count
//     when they fall back to that version (internal/readrule); List and
//     verification see only the newest record. Sweep removes the file
//     after the grace (with neither grace nor hold, the commit removes it
//     at once). Dropped and quarantined shards are never served.
//
// Reads, verifications and drops name the shard index they mean, and the
// node acts only on that index: its shard of a version can change under a
// caller (the rebalancer swaps shards between nodes: drop one index,
// commit another of the same version), and another index's frames would
// pass every block check. ReadShard refuses a mismatch with kerr.NotExist
// wrapping client.ErrWrongShard, Verify answers it VerifyAbsent, and
// DropShard drops nothing.
//
// Small and mid-size shards skip the files: a framed stream of at most
// Config.InlineMax bytes is kept in the index entry of its would-be file
// name, and one of at most Config.PackMax bytes is appended to the active
// pack file (storagenode/internal/pack), fsynced together with concurrent
// appends, with its location in that index entry. The stage records that
// entry and the staged entry in one synced transaction; the commit renames
// the entry in the record's own transaction. Every path-based operation
// (read, verify, quarantine, sweep, drop) looks in the index first. Sweep
// compacts pack files that hold mostly removed shards.
//
// Flushes are shared, never skipped: concurrent fsyncs of one directory and
// concurrent index syncs are each served by one flush that started after
// every one of their writes (storagenode/internal/flush), so concurrent
// stages and commits cost fewer flushes, and none is acknowledged early.
// Fan-out directories are created and their parents fsynced once, then
// remembered.
//
// Nothing is visible before it is durable: readers (Stat, List, ReadShard,
// bucket lookups) see a record only once the index sync that made it
// durable has returned (storagenode/internal/meta waits for it), so no
// reader serves, or rolls forward elsewhere, a commit that a crash could
// still take back.
//
// Fail-stop: once an fsync of a shard file, a directory or the index has
// failed, the kernel may have dropped the dirty pages it could not write,
// so the node can no longer tell what it holds. It then refuses every call,
// health checks included, with kerr.Unavailable (HTTP 503, the body saying
// it needs a restart) until it is reopened; it never exits or panics, as
// other nodes and a gateway may share its process.
//
// Staged shards are swept by age (Config.StagingGrace) only once the key's
// committed version here is theirs or newer: a staged version newer than
// that may be committed on other nodes, and its staged shards are then
// what a roll forward needs. Whether it is, only the cluster knows: the
// scrubber's staged pass rolls such a version forward or aborts it
// (docs/lifecycle-of-shards.md).
//
// A crash at any point leaves either the old record or the new one in the
// index, never a mix: the record is the commit point. Files a crash strands
// (a temp file with no entry, a renamed file whose record never landed, a
// superseded file not yet removed) are found and removed by Sweep.
//
// Verification: a background verifier (Config.ScrubRate, checkpointed in
// the index) and the Verify call re-hash committed shards against their
// block digests and recorded root. A shard that fails is quarantined: its
// file moves under quarantine/, ReadShard refuses it (kerr.Corrupt), and
// the record stays, because the node still owes that shard. A commit of the
// same version with a staged shard of the same index then repairs it in
// place; a healthy committed shard is never replaced.
//
// Newest wins: versions are ULIDs compared as strings, and every
// read-modify-write of a key's entries holds a lock striped by key, so of
// concurrent commits the newest version is the one that stays, whatever
// the order they arrive in. A commit older than the key's record is
// refused with a conflict naming the newer version (client.ConflictError),
// never answered as a success: the gateway must not count it (see
// docs/ordering.md). A stage answers with the newest version the node has
// committed or staged for the key, so that the gateway can commit above
// it; the commit may name the version its shard was staged under
// (ObjectMeta.Staged), and installs that shard under the committed
// version's file name, so reads know only the committed version.
//
// Metrics: with Config.Registerer set, the node counts and times its
// stage, commit and shard read calls and their bytes, times its fsyncs,
// counts the staged shards its sweep removes, and reports at scrape time
// its pack and shard files, index size, disk space, objects, quarantined
// shards and the verifier's progress (kintsugi_storagenode_*). The series
// carry no node id: the caller labels the registerer, so that several
// nodes can share one registry.
package storagenode
