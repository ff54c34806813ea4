package nodeaccess

import (
	"github.com/kintsugi-store/kintsugi/internal/readrule"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Member is a node of the cluster map with its client. A zero Member
// stands for a node no call is to be made to.
type Member struct {
	Node   placement.Node
	Client client.Node
}

// Member returns n with its client.
func (p *Pool) Member(n placement.Node) Member {
	return Member{Node: n, Client: p.Get(n)}
}

// Reply is one member's answer about a key: its state, or why there is
// none.
type Reply struct {
	Member
	State client.KeyState
	Err   error // nil: the node answered
}

// Answers turns replies into the read rule's input.
func Answers(replies []Reply) []readrule.Answer {
	out := make([]readrule.Answer, len(replies))
	for i, r := range replies {
		out[i] = readrule.Answer{Node: r.Node.ID, OK: r.Err == nil, State: r.State}
	}
	return out
}

// Named returns the members that the committed versions in replies name
// as shard holders (ObjectMeta.Nodes) but that are not among asked, in
// the read rule's order (readrule.Named). find resolves a node id to its
// member; ids it does not know are left out.
func Named(asked []Member, replies []Reply, find func(id string) (Member, bool)) []Member {
	ids := make([]string, len(asked))
	for i, m := range asked {
		ids[i] = m.Node.ID
	}
	var out []Member
	for _, id := range readrule.Named(Answers(replies), ids) {
		if m, ok := find(id); ok {
			out = append(out, m)
		}
	}
	return out
}
