package cluster

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/kintsugi-store/kintsugi/placement"
)

// FuzzFSMApply feeds arbitrary log entries to the state machine: none may
// panic, and whatever map results must validate and have a higher epoch.
func FuzzFSMApply(f *testing.F) {
	for _, e := range []entry{
		{Change: ptr(placement.AddNode(placement.Node{ID: "e", Addr: "h:2", Zone: "z"}).Expecting(3))},
		{Change: ptr(placement.DrainNode("a"))},
		{Change: ptr(placement.RemoveNode("b", true))},
		{Change: ptr(placement.ReplaceMap(testMap(0, "a", "b", "c", "d")))},
		{Init: testMap(1, "x", "y", "z")},
	} {
		b, _ := json.Marshal(e)
		f.Add(b)
	}
	f.Add([]byte(`{"change":{"op":"add","node":{"id":"q","addr":"h:1","zone":"z","weight":-1}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fm := newFSM(nil)
		base := testMap(3, "a", "b", "c", "d")
		fm.set(base)
		res, _ := fm.Apply(&raft.Log{Type: raft.LogCommand, Index: 1, Data: data}).(result)
		if res.err != nil {
			if m, _ := fm.current(); m != base {
				t.Fatal("a failed entry changed the map")
			}
			return
		}
		if err := res.m.Validate(); err != nil {
			t.Fatalf("applied map does not validate: %v", err)
		}
		if res.m != base && res.m.Epoch != base.Epoch+1 {
			t.Fatalf("epoch %d after a change of epoch %d", res.m.Epoch, base.Epoch)
		}
	})
}

// FuzzSnapshotRestore feeds arbitrary snapshots to Restore: no panic.
func FuzzSnapshotRestore(f *testing.F) {
	f.Add([]byte(`{"map":{"epoch":2,"data_shards":1,"parity_shards":0,"nodes":[{"id":"a","addr":"h:1","zone":"z"}]}}`))
	f.Add([]byte(`{"map":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		newFSM(nil).Restore(io.NopCloser(bytes.NewReader(data)))
	})
}
