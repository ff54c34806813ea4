// Package storagenode is one storage node: a data directory of shard files
// and a badger index (storagenode/internal/meta), served over a small
// internal HTTP API under /v1/ (see storagenode/client for the Go side).
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
//     verified against its digest as it arrives) into a new file under
//     staging/, fsyncs the file and its directory, and records the staged
//     entry (synced) in the index. Only then does it answer with the root
//     digest it computed.
//  2. Commit, under the key's lock, renames the staged file to its final
//     name under shards/, fsyncs that directory, and then writes the
//     committed record, the removal of the staged entry and a note of the
//     superseded version's file in one synced index transaction. The
//     superseded file stays for Config.SupersededGrace, during which
//     ReadShard of exactly that version still serves it (a read that
//     resolved the version just before the commit must not find its
//     shards gone); Stat, List and verification see only the newest
//     record. Sweep removes it after the grace (with no grace, the commit
//     removes it at once). Dropped and quarantined shards are never served.
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
package storagenode
