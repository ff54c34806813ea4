package placement

// Move is one shard slot whose node differs between two maps: shard Shard
// of the key was placed on From and now belongs on To. From is the zero
// Node when the older map could not fill the slot, To when the newer one
// cannot.
type Move struct {
	Shard    int
	From, To Node
}

// Moves returns, in shard order, the shard slots of bucket/key whose node
// differs between the maps from and to: the shards a rebalancer must move
// (or rebuild) after the cluster changed from one map to the other. Both
// maps must have the same number of shards per object; Moves only reads
// them and is as deterministic as PlaceKey.
func Moves(from, to *Map, bucket, key string) []Move {
	a, b := from.PlaceKey(bucket, key), to.PlaceKey(bucket, key)
	var out []Move
	for i := range max(len(a), len(b)) {
		var mv Move
		mv.Shard = i
		if i < len(a) {
			mv.From = a[i]
		}
		if i < len(b) {
			mv.To = b[i]
		}
		if mv.From.ID != mv.To.ID {
			out = append(out, mv)
		}
	}
	return out
}
