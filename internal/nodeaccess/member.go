package nodeaccess

import (
	"slices"

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
	return withoutPurged(out)
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

// withoutPurged removes from the answers every version some node reports
// deleted by version: a node that missed the deletion (down at the time)
// still calls it committed, and must not make it current again. Such a
// node's answer then names no committed version: it counts as a node
// without the key's current version, as a node that missed a write does.
func withoutPurged(as []readrule.Answer) []readrule.Answer {
	purged := map[string]bool{}
	for _, a := range as {
		for _, v := range a.State.Purged {
			purged[v] = true
		}
	}
	if len(purged) == 0 {
		return as
	}
	for i := range as {
		st := &as[i].State
		if st.Committed != nil && purged[st.Committed.Version] {
			st.Committed, st.Data = nil, nil
		}
		if st.Previous != nil && purged[st.Previous.Version] {
			st.Previous = nil
		}
		st.Staged = slices.DeleteFunc(slices.Clone(st.Staged), func(r client.StagedRef) bool { return purged[r.Version] })
	}
	return as
}
