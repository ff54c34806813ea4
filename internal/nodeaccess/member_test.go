package nodeaccess

import (
	"errors"
	"slices"
	"testing"

	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

func reply(id string, err error, holders ...string) Reply {
	r := Reply{Member: Member{Node: placement.Node{ID: id}}, Err: err}
	if holders != nil {
		r.State.Committed = &client.Record{ObjectMeta: client.ObjectMeta{Version: "v1", Nodes: holders}}
	}
	return r
}

func TestAnswers(t *testing.T) {
	failed := errors.New("connection refused")
	got := Answers([]Reply{reply("n1", nil, "n1"), reply("n2", failed)})
	if len(got) != 2 || got[0].Node != "n1" || !got[0].OK || got[0].State.Committed == nil ||
		got[1].Node != "n2" || got[1].OK || got[1].State.Committed != nil {
		t.Errorf("Answers = %+v", got)
	}
}

func TestNamed(t *testing.T) {
	asked := []Member{{Node: placement.Node{ID: "n1"}}, {Node: placement.Node{ID: "n2"}}}
	replies := []Reply{
		reply("n1", nil, "n1", "n2", "n7", "n9"),
		reply("n2", nil, "n2", "n8", "n7"),
		// A failed answer names nobody, whatever it carries.
		reply("n3", errors.New("reset"), "n6"),
	}
	known := map[string]bool{"n7": true, "n8": true, "n6": true}
	got := Named(asked, replies, func(id string) (Member, bool) {
		return Member{Node: placement.Node{ID: id}}, known[id]
	})
	var ids []string
	for _, m := range got {
		ids = append(ids, m.Node.ID)
	}
	// n9 is unknown to find; n6 is named only by a failed answer.
	if want := []string{"n7", "n8"}; !slices.Equal(ids, want) {
		t.Errorf("Named = %v, want %v", ids, want)
	}
}
