// Package nodeaccess is how a process reaches its storage nodes: one
// client per node, dialled once and kept, behind that node's circuit
// breaker in a health.Tracker. The gateway's object protocol and the
// scrubber both reach nodes through it, so that a node found dead is
// skipped at once by either, and every answer keeps its health current.
//
// Guard wraps the node API (client.Node), not the HTTP transport, so a
// node reached in process is guarded as one reached over the network.
// Member (a node of the map with its client) and Reply (its answer about a
// key) are the shapes both callers fan their calls out in; Answers and
// Named turn replies into the read rule's input and the extra nodes it
// names.
//
// The breaker rule, stated once (health.Tracker decides it on every call
// made through Guard):
//
//   - An answer from the node counts for it, whatever it says: not found,
//     exists, a conflict, a wrong shard, a stale map, invalid, corrupt.
//     The node is working; the answer is about the data or the caller.
//   - kerr.Unavailable and kerr.Transient (refused or reset connections,
//     5xx, a body cut short) count against it, and so do a passed deadline
//     and a cancellation whose cause is health.ErrSlow: the caller gave up
//     because the node was too slow.
//   - Any other cancellation by the caller (a request ended, a pass
//     starting over under a new map) counts for nothing.
//
// A call refused by an open breaker fails at once with kerr.Unavailable
// wrapping health.ErrOpen, unless the caller bypasses breakers (see
// WithBypass and Bypass) or asks again after a pass the breakers refused
// (see Attempt: only those breakers are gone through, and a node that
// failed a call of the first pass is not called again).
//
// nodeaccess decides nothing about data: it never retries, picks no
// replicas and reads no answers beyond their error.
package nodeaccess
