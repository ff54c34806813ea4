// Package cluster holds the cluster map in an embedded Raft group
// (github.com/hashicorp/raft), so that no file on an admin's host is the
// source of truth and every map change is linearizable from any host.
//
// The replicated state is one placement.Map. Every entry of the Raft log
// is an Op on the current map (init, add, drain, remove, or a push of a
// whole edited map), optionally with the epoch it expects the map to be
// at: an Op either applies at that epoch, raising it by one, or fails
// with a *ConflictError and changes nothing. Two admins adding different
// nodes both succeed one after the other; two that compare-and-set at
// the same epoch cannot both win.
//
// A Group is one member: it runs Raft over an authenticated TCP stream
// layer (an HMAC challenge-response with the cluster secret before any
// Raft byte, over TLS when configured), keeps the log in bolt and
// snapshots the map as JSON. Its leader decides membership from the map
// itself: a few nodes in distinct zones vote (PickVoters), the others
// follow the log as non-voters, and removed nodes leave the group.
// Handler is the HTTP API a storage node mounts (apply, status, init and
// a long-poll watch of the map); Client is its caller.
//
// cluster never touches shard data, never places objects, and never
// decides a map edit on its own: the edits are the admin's, in Op.
// The storage node, the gateways and the scrubber only read its map.
// See docs/raft.md.
package cluster
