package placement

import (
	"math"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// Partition returns the partition of an object: xxhash64 of
// bucket + "\x00" + key, mod Partitions (DefaultPartitions if unset).
func (m *Map) Partition(bucket, key string) int {
	var d xxhash.Digest
	d.Reset()
	d.WriteString(bucket)
	d.WriteString("\x00")
	d.WriteString(key)
	return int(d.Sum64() % uint64(m.partitions()))
}

func (m *Map) partitions() int {
	if m.Partitions > 0 {
		return m.Partitions
	}
	return DefaultPartitions
}

// PlaceKey returns Place(Partition(bucket, key)).
func (m *Map) PlaceKey(bucket, key string) []Node {
	return m.Place(m.Partition(bucket, key))
}

// Place returns the ordered list of nodes for a partition: shard i lives on
// Place(partition)[i]. The list has N() distinct active nodes, or every
// active node if there are fewer. See the package doc for the algorithm.
// The result is a new slice the caller may keep. Place only reads m, so
// concurrent calls are safe; it takes O(n × nodes) time.
func (m *Map) Place(partition int) []Node {
	n := m.N()
	if n <= 0 {
		return nil
	}
	pl := newPlacer(m.Nodes)
	// With fewer zones than shards every zone gets an even share of the
	// slots whatever its weight, so zones are drawn by name alone: a node
	// joining or leaving a zone then moves no slot between zones.
	evenZones := len(pl.zones) < n
	n = min(n, len(pl.cands))
	out := make([]Node, 0, n)
	for slot := range n {
		seed := slotSeed(partition, slot)
		low := pl.fewestUsed()
		zone := -1
		if evenZones {
			zone = pl.pickZone(low, seed)
		}
		c := &pl.cands[pl.pickNode(low, zone, seed)]
		c.taken = true
		pl.zones[c.zone].used++
		pl.zones[c.zone].left--
		out = append(out, m.Nodes[c.node])
	}
	return out
}

// placer holds the active nodes and the zone tallies while the slots of one
// partition are filled.
type placer struct {
	nodes      []Node
	cands      []candidate
	zones      []zone
	sameWeight bool // all candidates weigh the same: compare hashes only
}

// candidate is an active node competing for the slots of one partition.
// It holds no pointers, so the slice of them is cheap to allocate.
type candidate struct {
	hash   uint64  // xxhash64 of the node id
	weight float64 // > 0
	node   int32   // index into the map's nodes
	zone   int32   // index into placer.zones
	taken  bool
}

type zone struct {
	name string
	hash uint64 // xxhash64 of the name
	left int    // active nodes not yet given a slot
	used int    // slots given so far
}

// zoneSalt sets a zone's rendezvous hash apart from that of a node with
// the same name.
const zoneSalt = 0x5a6f6e655a6f6e65

func newPlacer(nodes []Node) *placer {
	pl := &placer{
		nodes:      nodes,
		cands:      make([]candidate, 0, len(nodes)),
		zones:      make([]zone, 0, min(len(nodes), 32)),
		sameWeight: true,
	}
	// Zones are numbered through a small open-addressing table keyed by
	// their hash, which is needed anyway: cheaper than a map per call.
	table := make([]int32, 1<<bits.Len(uint(2*len(nodes)))) // zone index + 1; 0 is empty
	mask := uint64(len(table) - 1)
	for i := range nodes {
		nd := &nodes[i]
		if nd.State != "" && nd.State != StateActive {
			continue
		}
		w := nd.Weight
		if w == 0 {
			w = 1
		}
		if !(w > 0) || math.IsInf(w, 0) {
			// Validate rejects these; skip rather than let them win or
			// poison comparisons in a map that was never validated.
			continue
		}
		zh := xxhash.Sum64String(nd.Zone)
		z := -1
		for j := zh & mask; ; j = (j + 1) & mask {
			if table[j] == 0 {
				z = len(pl.zones)
				table[j] = int32(z + 1)
				pl.zones = append(pl.zones, zone{name: nd.Zone, hash: zh})
				break
			}
			if zn := &pl.zones[table[j]-1]; zn.hash == zh && zn.name == nd.Zone {
				z = int(table[j] - 1)
				break
			}
		}
		pl.zones[z].left++
		if len(pl.cands) > 0 && w != pl.cands[0].weight {
			pl.sameWeight = false
		}
		pl.cands = append(pl.cands, candidate{
			hash:   xxhash.Sum64String(nd.ID),
			weight: w,
			node:   int32(i),
			zone:   int32(z),
		})
	}
	return pl
}

// fewestUsed returns the fewest slots held by a zone that has a node left.
// Only such zones may take the next slot: that is the zone spread.
func (pl *placer) fewestUsed() int {
	low := math.MaxInt
	for _, z := range pl.zones {
		if z.left > 0 && z.used < low {
			low = z.used
		}
	}
	return low
}

// pickZone returns the zone that takes the slot with the given seed among
// those holding low slots with a node left, by unweighted rendezvous on
// the zones' names.
func (pl *placer) pickZone(low int, seed uint64) int {
	best := -1
	var bestHash uint64
	for i, z := range pl.zones {
		if z.left == 0 || z.used != low {
			continue
		}
		h := mix64(z.hash ^ zoneSalt ^ seed)
		if best < 0 || h > bestHash || (h == bestHash && z.name < pl.zones[best].name) {
			best, bestHash = i, h
		}
	}
	return best
}

// pickNode returns the index of the candidate that takes the slot with the
// given seed: the highest weighted rendezvous score among the untaken
// candidates of zone, or of any zone holding low slots if zone is -1.
// REQUIRES: such a candidate exists.
func (pl *placer) pickNode(low, zone int, seed uint64) int {
	best := -1
	var bestHash uint64
	var bestScore float64
	for i := range pl.cands {
		c := &pl.cands[i]
		if c.taken || pl.zones[c.zone].used != low || (zone >= 0 && int(c.zone) != zone) {
			continue
		}
		h := mix64(c.hash ^ seed)
		var s float64
		if pl.sameWeight {
			if best >= 0 && h < bestHash {
				continue // the common case, decided without beats
			}
		} else {
			// -ln(u) >= 1-u, so w/(1-u) bounds the score from above and
			// rules most nodes out without a logarithm. The margin keeps
			// rounding from ruling out a node that would win, so the
			// answer is the exact argmax. An infinite best (absurd
			// weights) rules out nothing: ties on it go to beats.
			if best >= 0 && !math.IsInf(bestScore, 1) && c.weight*(1+1e-9) < bestScore*oneMinusU(h) {
				continue
			}
			s = c.weight / negLog(unit(h))
		}
		if best < 0 || beats(s, h, pl.nodes[c.node].ID, bestScore, bestHash, pl.nodes[pl.cands[best].node].ID) {
			best, bestHash, bestScore = i, h, s
		}
	}
	return best
}

// beats reports whether a node scoring (s, h, id) outranks the best so far.
// With equal weights s is 0 for all and h alone orders them, as the score
// w/-ln(u) is increasing in u and u in h; equal scores fall back to h, then
// to the id, so the order of the map's nodes never matters.
func beats(s float64, h uint64, id string, bs float64, bh uint64, bid string) bool {
	if s != bs {
		return s > bs
	}
	if h != bh {
		return h > bh
	}
	return id < bid
}

// unit maps the top 52 bits of h into the open interval (0, 1), exactly:
// k + 0.5 needs at most 53 bits.
func unit(h uint64) float64 {
	return (float64(h>>12) + 0.5) * 0x1p-52
}

// oneMinusU returns 1 - unit(h), exactly.
func oneMinusU(h uint64) float64 {
	return (float64((1<<52-1)-h>>12) + 0.5) * 0x1p-52
}

// negLog returns -ln(u) for u in (0, 1). It is written out rather than
// calling math.Log because placement must be bit-identical on every
// machine: math.Log is assembly on some architectures and pure Go on others,
// and the Go compiler may fuse x*y+z into one instruction on some of them.
// Only single IEEE operations are used, each rounded on its own (the
// explicit float64 conversions forbid fusion), so the result is the same
// everywhere.
//
// u = f * 2^e with f in [sqrt(1/2), sqrt(2)), and ln(f) = 2 atanh(s) with
// s = (f-1)/(f+1), |s| < 0.172, whose series converges to full precision in
// 12 terms.
func negLog(u float64) float64 {
	f, e := math.Frexp(u)
	if f < math.Sqrt2/2 {
		f *= 2
		e--
	}
	s := (f - 1) / (f + 1)
	s2 := float64(s * s)
	term := s
	var sum float64
	for k := 1.0; k < 24; k += 2 {
		sum += term / k
		term = float64(term * s2)
	}
	return -(float64(float64(e)*math.Ln2) + float64(2*sum))
}

// slotSeed derives the per-(partition, slot) value mixed into each node's
// hash, so that every slot of every partition ranks the nodes independently.
func slotSeed(partition, slot int) uint64 {
	return mix64(uint64(partition)*0x9e3779b97f4a7c15 + uint64(slot) + 1)
}

// mix64 is a 64-bit finalizer with full avalanche (Stafford's variant 13 of
// the MurmurHash3 finalizer, as used by SplitMix64). Its constants are part
// of the placement: changing them moves every shard.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
