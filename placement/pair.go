package placement

// Pair is a cluster map and the one it replaced (nil if unknown). While
// shards move after a map change, readers and the scrubber consult both.
// The scrubber keeps it in its checkpoint as JSON.
type Pair struct {
	Cur  *Map `json:"cur"`
	Prev *Map `json:"prev,omitempty"`
}

// Node returns the node with the given id in Cur or else in Prev, whatever
// its state there.
func (p Pair) Node(id string) (Node, bool) {
	if p.Cur != nil {
		if n, ok := p.Cur.Node(id); ok {
			return n, true
		}
	}
	if p.Prev != nil {
		return p.Prev.Node(id)
	}
	return Node{}, false
}
