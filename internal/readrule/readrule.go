// Package readrule is the object protocol's read rule, stated once: given
// what the nodes answered about a key, which version a read serves, which
// staged copies must be committed first, and whether a version that cannot
// be read could have been acknowledged. The gateway's reads and the
// scrubber's checks both decide through Decide, so a reader and a repair
// never disagree about which version is live.
//
// It owns the rule and nothing else: it must never do I/O, keep state,
// read a clock or start goroutines. Callers ask the nodes, send the
// commits a verdict names, and ask Decide again; that keeps the rule
// testable as tables of node answers, one row per state of the protocol.
//
// # The rule
//
// A node that did not answer (down, timed out, or never asked, as are the
// placement slots a map could not fill) may hold anything. Each version
// has its own write quorum: WriteQuorum, or the lower one it records
// (ObjectMeta.Quorum) when it was written with raised parity while some
// of its nodes were down; see Quorum. If MinQuorum nodes are silent, an
// acknowledged version, raised or not, could live on those alone:
// Unavailable. Otherwise committed versions are considered newest first.
// A version V is "seen" on the nodes that committed it or something newer
// (a newer commit may have removed V's shard), and could have been
// acknowledged only if seen + silent >= V's quorum: an acknowledged write
// was committed on its quorum of nodes before any read that could be
// required to see it started, and each of those answers shows it or
// something newer.
//
//   - V holds data (it has shards). If nodes hold V staged while their
//     committed version is older, and committing it there leaves at least
//     d distinct shards of V committed, the verdict is RollForward: V is
//     committed somewhere, so its writer passed its stage quorum and meant
//     it to be visible. With d holders V is served (Serve). A version
//     with raised parity, whose d is at most half its n, is rolled
//     forward and served only if it could have been acknowledged (seen,
//     after the roll-forward, plus silent reaching its quorum): else its
//     d holders and the d holders of an older acknowledged version can
//     coexist on disjoint nodes (with d > n/2 two versions cannot both
//     be readable), and the unacknowledged one would hide the older one
//     from some readers and not from others. Otherwise it is treated as
//     unreadable below. With fewer holders, if
//     V could have been acknowledged, the answer is Unavailable (never
//     stale data for an acknowledged write), or InFlux when every node
//     answered and the answers show a write in progress (answers are taken
//     at different moments, so asking again sees the write further on).
//     Otherwise V was never acknowledged and the next older version is
//     considered.
//   - V is shardless (a delete marker or a multipart manifest, committed
//     without a stage). If it could have been acknowledged it wins:
//     Deleted, or Serve for a manifest. If not, it is passed over in
//     favour of an older version that can be served, so that a marker a
//     failed delete left on a few nodes does not make reads flip between
//     404 and 200 with the nodes they happened to ask. If there is no
//     older version, or the one that could have been acknowledged cannot
//     be read even if every silent node held a shard of it, the shardless
//     version wins after all and is committed on the nodes that lack it
//     (RollForward): a delete that reached half the nodes is finished
//     rather than leaving the key unreadable.
//
// A node that superseded V still holding V's shard reports it as its
// Previous record (for its superseded grace, longer after an underwritten
// overwrite). When the rule falls back to V past newer versions it
// skipped, such a node holds that shard of V, for Serve as for the
// count of shards held; a write that staged fewer than n shards and
// whose writer died between commits thus leaves the version it overwrote
// readable through the loss of p nodes. Previous only adds holders to a
// version the rule already falls back to: it never makes an older version
// win over a newer one that could have been acknowledged, nor changes a
// verdict on the newest version.
//
// A read that asked only the first d placed nodes (Input.Partial) is
// settled by them alone only if they all answered with one committed
// version, no manifest, and nothing staged: an acknowledged newer version
// is committed on all but n-MinQuorum nodes, so on at least one of any d
// when d > n-MinQuorum. Otherwise the verdict is AskAll.
package readrule

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Answer is one node's reply about a key.
type Answer struct {
	Node string // the node's id
	// OK is false when the node did not answer (down, timed out,
	// refused): it may hold anything.
	OK    bool
	State client.KeyState
}

// Input is what a read knows when it decides.
type Input struct {
	Answers []Answer
	// Silent counts nodes that may hold the key but were not asked:
	// placement slots the map could not fill (an older map may have
	// filled them) and, with Partial, the placed nodes left out. They
	// count as not having answered.
	Silent      int
	WriteQuorum int
	// MinQuorum is the smallest write quorum any version of the key may
	// have been acknowledged under (placement.Map.MinWriteQuorum): it
	// decides for versions no answer shows. 0 means WriteQuorum: no
	// version was written with a lowered quorum.
	MinQuorum int
	// Partial says the answers come from the first d placed nodes only;
	// a verdict they do not settle on their own is AskAll.
	Partial bool
	// NoRollForward decides as if no staged copy could be committed: for
	// a dry run, or once the caller has sent the commits of a
	// RollForward verdict and asks again.
	NoRollForward bool
}

// Kind is what a read should do.
type Kind int

const (
	// NotFound: no version of the key that could have been acknowledged.
	NotFound Kind = iota
	// Serve Verdict.Meta: Holders names a node for at least d shards (a
	// manifest has none: its data is in its parts).
	Serve
	// Deleted: the live version is the delete marker Verdict.Meta.
	Deleted
	// RollForward: send Verdict.Meta's commit to the nodes in Commits,
	// then decide again on the updated answers with NoRollForward.
	RollForward
	// InFlux: every node answered, nothing can be served, and the
	// answers show a write in progress: ask again.
	InFlux
	// Unavailable: Verdict.Meta (or, with Meta empty, some version on
	// the silent nodes) could have been acknowledged and cannot be read.
	Unavailable
	// AskAll: a Partial read the answers do not settle: ask every node.
	AskAll
)

var kindNames = [...]string{"not found", "serve", "deleted", "roll forward", "in flux", "unavailable", "ask all"}

func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// Commit names an answer whose node is to commit the verdict's version,
// and the shard it holds staged (-1 for a shardless version).
type Commit struct {
	Answer int // index into Input.Answers
	Shard  int
}

// Verdict is Decide's answer.
type Verdict struct {
	Kind Kind
	// Meta is the version served, deleted or rolled forward, or, for
	// InFlux and Unavailable, the version that could have been
	// acknowledged and cannot be read.
	Meta client.ObjectMeta
	// Holders (Serve of a version with shards) is, by shard index, the
	// index into Input.Answers of a node holding that shard committed
	// (or, for a version the rule fell back to, as its Previous record),
	// or -1.
	Holders []int
	// Commits (RollForward) are the commits to send.
	Commits []Commit
	// Skipped are the committed versions newer than Meta that were passed
	// over as never acknowledged, newest first.
	Skipped []client.ObjectMeta
	// Held is the number of distinct shards of Meta committed among the
	// answers; Seen the answers that committed Meta or something newer;
	// Silent the nodes that did not answer, Input.Silent included.
	Held, Seen, Silent int
	// Quorum is Meta's write quorum (see Quorum), 0 without Meta;
	// MinQuorum the input's.
	Quorum, MinQuorum int
}

// Quorum is the write quorum version m was acknowledged under: the lower
// one it records, if it was written with raised parity while some of its
// nodes were down, else wq, the map's.
func Quorum(m client.ObjectMeta, wq int) int {
	if m.Quorum > 0 && m.Quorum < wq {
		return m.Quorum
	}
	return wq
}

// minQuorum is in.MinQuorum, or WriteQuorum if that is unset or higher.
func (in Input) minQuorum() int {
	if in.MinQuorum > 0 && in.MinQuorum < in.WriteQuorum {
		return in.MinQuorum
	}
	return in.WriteQuorum
}

// Reason says in words why a verdict is InFlux or Unavailable.
func (v Verdict) Reason() string {
	if v.Meta.Version == "" {
		return fmt.Sprintf("%d nodes did not answer, write quorum %d reachable by them alone", v.Silent, v.MinQuorum)
	}
	return fmt.Sprintf("version %s: %d shards held, need %d; committed or superseded on %d nodes, %d silent, write quorum %d: may have been acknowledged",
		v.Meta.Version, v.Held, v.Meta.Data, v.Seen, v.Silent, v.Quorum)
}

// Decide applies the read rule (see the package doc) to in.
func Decide(in Input) Verdict {
	v := decide(in)
	if in.Partial && !settlesAlone(in, v) {
		return Verdict{Kind: AskAll, Silent: v.Silent, MinQuorum: v.MinQuorum}
	}
	return v
}

// Settled reports whether v, decided on the answers so far with the
// pending nodes counted among Input.Silent, is one that their answers
// could not change, so a reader need not wait for them: a version with
// shards that d nodes hold (more answers only add holders, and a newer
// version the pending nodes alone had committed could not have been
// acknowledged, even under the smallest quorum), a delete marker that
// could have been acknowledged even without them, or no version at all.
// A write in progress that the answers show only staged may still be
// rolled forward by a later reader.
func (v Verdict) Settled(pending int) bool {
	if v.MinQuorum == 0 || v.Silent >= v.MinQuorum {
		return false
	}
	switch v.Kind {
	case Serve, RollForward:
		if 2*v.Meta.Data <= v.Meta.Data+v.Meta.Parity {
			// Raised parity: served only while it could have been
			// acknowledged, which the pending answers may disprove.
			return !Shardless(v.Meta) && v.Seen+len(v.Commits)+v.Silent-pending >= v.Quorum
		}
		return !Shardless(v.Meta)
	case Deleted:
		return v.Seen+v.Silent-pending >= v.Quorum
	case NotFound:
		return len(v.Skipped) == 0
	}
	return false
}

// settlesAlone reports whether a Partial read's answers settle v.
func settlesAlone(in Input, v Verdict) bool {
	if v.Kind != Serve && v.Kind != Deleted || len(in.Answers) == 0 {
		return false
	}
	first := in.Answers[0].State.Committed
	for _, a := range in.Answers {
		c := a.State.Committed
		if !a.OK || c == nil || len(a.State.Staged) > 0 || c.Version != first.Version || len(c.Parts) > 0 {
			return false
		}
	}
	return true
}

func decide(in Input) Verdict {
	silent := in.Silent
	for _, a := range in.Answers {
		if !a.OK {
			silent++
		}
	}
	minQ := in.minQuorum()
	if silent >= minQ {
		return Verdict{Kind: Unavailable, Silent: silent, MinQuorum: minQ}
	}
	var skipped []client.ObjectMeta
	for _, meta := range Committed(in.Answers) {
		v := Verdict{Meta: meta, Skipped: skipped, Silent: silent, Quorum: Quorum(meta, in.WriteQuorum), MinQuorum: minQ}
		for _, a := range in.Answers {
			if c := a.State.Committed; a.OK && c != nil && c.Version >= meta.Version {
				v.Seen++
			}
		}
		acked := v.Seen+silent >= v.Quorum
		if Shardless(meta) {
			if acked {
				return won(v, in)
			}
			skipped = append(skipped, meta)
			continue
		}
		// A version readable from at most half its nodes (raised
		// parity) is served only if it could have been acknowledged.
		minority := 2*meta.Data <= meta.Data+meta.Parity
		if !in.NoRollForward {
			if cs := rollForward(in.Answers, meta); cs != nil && (!minority || v.Seen+len(cs)+silent >= v.Quorum) {
				v.Kind, v.Commits = RollForward, cs
				return v
			}
		}
		v.Holders = holders(in.Answers, meta, len(skipped) > 0)
		for _, h := range v.Holders {
			if h >= 0 {
				v.Held++
			}
		}
		if v.Held >= meta.Data && (!minority || acked) {
			v.Kind = Serve
			return v
		}
		if !acked {
			skipped = append(skipped, meta)
			continue
		}
		v.Holders = nil
		// Nothing older may be served. A shardless version passed over
		// above wins rather than leave the key unreadable, unless the
		// silent nodes might hold enough of meta's shards to read it.
		if i := slices.IndexFunc(skipped, Shardless); i >= 0 && v.Held+silent < meta.Data {
			return won(Verdict{Meta: skipped[i], Skipped: skipped[:i], Silent: silent, MinQuorum: minQ}, in)
		}
		v.Kind = Unavailable
		if silent == in.Silent && Writing(in.Answers) {
			v.Kind = InFlux
		}
		return v
	}
	if i := slices.IndexFunc(skipped, Shardless); i >= 0 {
		return won(Verdict{Meta: skipped[i], Skipped: skipped[:i], Silent: silent, MinQuorum: minQ}, in)
	}
	return Verdict{Kind: NotFound, Skipped: skipped, Silent: silent, MinQuorum: minQ}
}

// won is the verdict for the shardless version v.Meta taken as live: its
// commit goes to the answering nodes whose committed version is older,
// unless it is acknowledged already (the caller spreads what it needs
// to) or the caller decides without rolling forward.
func won(v Verdict, in Input) Verdict {
	seen := 0
	var cs []Commit
	for i, a := range in.Answers {
		if !a.OK {
			continue
		}
		if c := a.State.Committed; c != nil && c.Version >= v.Meta.Version {
			seen++
			continue
		}
		cs = append(cs, Commit{Answer: i, Shard: -1})
	}
	v.Seen, v.Quorum = seen, Quorum(v.Meta, in.WriteQuorum)
	if seen+v.Silent < v.Quorum && !in.NoRollForward && len(cs) > 0 {
		v.Kind, v.Commits = RollForward, cs
		return v
	}
	v.Kind = Serve
	if v.Meta.Deleted {
		v.Kind = Deleted
	}
	return v
}

// Shardless reports whether m is a version without shards of its own: a
// delete marker or a multipart manifest, committed without a stage.
func Shardless(m client.ObjectMeta) bool { return m.Deleted || len(m.Parts) > 0 }

// holders returns, by shard index, the first answer holding that shard of
// meta committed, or -1. With previous (the rule fell back to meta past
// newer versions never acknowledged), an answer whose Previous record is
// meta holds its shard too, where no answer has it committed.
func holders(answers []Answer, meta client.ObjectMeta, previous bool) []int {
	hs := make([]int, meta.Data+meta.Parity)
	for i := range hs {
		hs[i] = -1
	}
	for i, a := range answers {
		c := a.State.Committed
		if a.OK && c != nil && c.Version == meta.Version && c.Shard >= 0 && c.Shard < len(hs) && hs[c.Shard] < 0 {
			hs[c.Shard] = i
		}
	}
	if !previous {
		return hs
	}
	for i, a := range answers {
		p := a.State.Previous
		if a.OK && p != nil && p.Version == meta.Version && p.Shard >= 0 && p.Shard < len(hs) && hs[p.Shard] < 0 {
			hs[p.Shard] = i
		}
	}
	return hs
}

// rollForward returns the commits that finish meta's write: on each
// answering node holding meta staged while its committed version is
// older, unless another node has that shard committed already. It
// returns nil when that would not leave at least meta.Data distinct
// shards committed: each commit drops the node's shard of an older
// version, and trading a readable old version for an unreadable new one
// would lose both.
func rollForward(answers []Answer, meta client.ObjectMeta) []Commit {
	shards := make(map[int]bool)
	staged := make([]int, len(answers))
	for i, a := range answers {
		staged[i] = -1
		if !a.OK {
			continue
		}
		if c := a.State.Committed; c != nil && c.Version >= meta.Version {
			if c.Version == meta.Version {
				shards[c.Shard] = true
			}
			continue
		}
		for _, ref := range a.State.Staged {
			// A version committed under a newer name than its shards
			// were staged under (a write that had to go above a
			// version its stages revealed) is found by its stage name.
			if ref.Version == meta.Version || ref.Version == meta.StageVersion() {
				staged[i] = ref.Shard
			}
		}
	}
	var cs []Commit
	for i, sh := range staged {
		if sh >= 0 && !shards[sh] {
			shards[sh] = true
			cs = append(cs, Commit{Answer: i, Shard: sh})
		}
	}
	if len(cs) == 0 || len(shards) < meta.Data {
		return nil
	}
	return cs
}

// Committed returns the distinct committed versions the answering nodes
// report, newest first.
func Committed(answers []Answer) []client.ObjectMeta {
	var out []client.ObjectMeta
	seen := make(map[string]bool)
	for _, a := range answers {
		if c := a.State.Committed; a.OK && c != nil && !seen[c.Version] {
			seen[c.Version] = true
			out = append(out, c.ObjectMeta)
		}
	}
	slices.SortFunc(out, func(a, b client.ObjectMeta) int { return strings.Compare(b.Version, a.Version) })
	return out
}

// Writing reports whether answers show a write in progress: a staged
// version newer than the node's committed one, or nodes committed to
// different versions.
func Writing(answers []Answer) bool {
	var v string
	for _, a := range answers {
		if !a.OK {
			continue
		}
		if len(a.State.Staged) > 0 {
			return true
		}
		if c := a.State.Committed; c != nil {
			if v != "" && c.Version != v {
				return true
			}
			v = c.Version
		}
	}
	return false
}

// Named returns the ids of the nodes that the committed versions in
// answers name as shard holders (ObjectMeta.Nodes) and that are not in
// asked, in the order found. Readers ask them too: a shard not yet moved
// after several map changes lives on a node neither map places.
func Named(answers []Answer, asked []string) []string {
	seen := make(map[string]bool, len(asked))
	for _, id := range asked {
		seen[id] = true
	}
	var out []string
	for _, a := range answers {
		c := a.State.Committed
		if !a.OK || c == nil {
			continue
		}
		for _, id := range c.Nodes {
			if id != "" && !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}
