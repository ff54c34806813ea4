// Package placement maps (bucket, key) to a partition and a partition to the
// ordered list of nodes that hold its shards, given a cluster map. It owns
// the cluster map's schema, its defaults, its validation and the rules of
// its edits.
//
// placement is pure and deterministic: no clock, no randomness, no I/O beyond
// Load reading the map file, and it must never import another package of the
// project, so that every process (gateway, scrubber, admin) can link it and
// agree. Same map, same answer, on every machine; golden files in testdata
// pin the answers so that a change of algorithm cannot slip in unnoticed.
//
// # Partitions
//
// A key's partition is xxhash64(bucket + "\x00" + key) mod Partitions. The
// partition, not the key, is the unit of placement, so a map change is
// resolved per partition and a rebalance can walk partitions.
//
// # Placement
//
// Place fills the n = d+p shard slots of a partition in order, slot 0
// first. Each slot goes to the eligible node with the highest weighted
// rendezvous score for (partition, slot):
//
//	u     = hash(partition, slot, node id) mapped into (0, 1)
//	score = -weight / ln(u)
//
// A node is eligible if it is active, holds no earlier slot, and its zone
// holds the fewest slots so far among the zones that still have an unused
// active node. So while there are at least n zones no two shards share a
// zone, and with fewer zones the shards are spread as evenly as the zones
// allow: at most ceil(n/zones) per zone when every zone has enough nodes.
//
// With fewer zones than n every zone gets its even share of the slots
// whatever its weight, so each slot first draws its zone by unweighted
// rendezvous over the eligible zones' names, then its node within that zone
// as above. A node joining or leaving a zone then never moves a slot held
// in another zone.
//
// A node of weight w wins the first slot w times as often as a node of
// weight 1. Over all slots the share is only close to proportional: a node
// holds at most one slot of a partition, so a heavy node falls short when n
// is not small beside the number of nodes; and with fewer zones than n,
// weights only share out a zone's slots among its nodes.
//
// Ties need equal 64-bit hashes; they go to the smaller node id, so the
// order of the nodes in the map never matters. Node ids and zone names are
// hashed with xxhash64 and mixed with (partition, slot) by the SplitMix64
// finalizer. Weighted scores use a logarithm written out in this package
// from single IEEE operations, so that every architecture computes the
// same bits; when all weights are equal no floating point is involved.
//
// # Why rendezvous hashing, and a score per slot
//
// Rendezvous hashing needs no tables to store, distribute or version: the
// map itself is the whole input. It takes weights naturally, and it moves
// the minimum: a new node takes a slot only where it outscores the holder,
// about 1/(N+1) of all slots, each taken from a different node; removing a
// node moves only the slots it held, plus a small knock-on where its
// replacement held a later slot of the same partition.
//
// Shard i lives on Place(p)[i], so the order of the list is as durable as
// its members. Taking the top n of one score per node, in score order,
// would shift every later slot by one whenever a node enters or leaves the
// list: about 3.5 times the minimal movement for 4+2. Scoring each slot on
// its own keeps a slot on its node unless that node leaves or is outscored
// for that very slot. Tests hold movement within 1.5 times the minimum
// when nodes have zones of their own or there are fewer zones than n, and
// within twice the minimum when at least n zones are shared by several
// nodes, where the zone spread adds knock-on moves.
//
// # Changing the map
//
// A Change (AddNode, DrainNode, RemoveNode, ReplaceMap) is a value, encoded
// by Marshal and read back by ParseChange, so that it can be logged and
// replicated before it is applied. Map.Apply makes it on the current map and
// returns the next one, epoch plus one and validated, or refuses it: with a
// *ConflictError when the change expected another epoch (Expecting), with
// ErrInvalidChange when its rules refuse it (a node unknown or in the wrong
// state), with ErrInvalidMap when the result would not be a usable map.
// Apply is pure like the rest, so replicas applying the same changes in the
// same order hold the same maps. Where the map is stored, how writers are
// serialised and how nodes learn of it is the caller's affair.
//
// Draining and removed nodes get no slots. If fewer than n active nodes
// exist Place returns as many as there are; Validate rejects such a map, but
// callers resolving an older epoch or a degraded map must handle it.
package placement
