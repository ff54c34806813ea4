package objects

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// rerunPlan drives the nodes of TestStaleMapWriteCommittedSomewhereIsNotRunAgain.
type rerunPlan struct {
	newer     *placement.Map          // the map the refusing nodes take
	committer string                  // the node that takes the first commit
	hook      string                  // the refusing node that runs between
	armed     map[string]*atomic.Bool // refusing nodes, until they refused once
	committed chan struct{}           // closed once the committer's first commit answered
	once      sync.Once
	between   func()
}

// rerunNode is a node that, armed, takes the plan's newer map (the same
// placement one epoch on) just before its first commit and so refuses it,
// as a node does that learned a map change between a write's stage and its
// commit.
type rerunNode struct {
	client.Node
	id   string
	plan *rerunPlan
}

func (n rerunNode) Commit(ctx context.Context, meta client.ObjectMeta) (client.Record, error) {
	return n.plan.call(n.id, n.Node, func() (client.Record, error) { return n.Node.Commit(ctx, meta) })
}

// newRerunCluster is a 4+2 cluster of six nodes whose calls follow plan.
func newRerunCluster(t *testing.T) (*cluster, *rerunPlan) {
	plan := &rerunPlan{committed: make(chan struct{})}
	c := newCluster(t, 6, 4, 2, func(cfg *Config) {
		dial := cfg.Dial
		cfg.Dial = func(pn placement.Node) client.Node {
			return rerunNode{Node: dial(pn), id: pn.ID, plan: plan}
		}
	})
	return c, plan
}

// arm makes nodes refuse their next write by taking the newer map first.
func (p *rerunPlan) arm(nodes []placement.Node) {
	p.armed = make(map[string]*atomic.Bool)
	for _, pn := range nodes {
		p.armed[pn.ID] = new(atomic.Bool)
		p.armed[pn.ID].Store(true)
	}
}

// call runs do, node id's write, as the plan says: the committer's first
// one is let through and announced; an armed node first takes the newer
// map, so that do is refused for it, and the hook node runs between once
// the committer has answered.
func (p *rerunPlan) call(id string, n client.Node, do func() (client.Record, error)) (client.Record, error) {
	if p.armed == nil {
		return do()
	}
	if id == p.committer {
		rec, err := do()
		p.once.Do(func() { close(p.committed) })
		return rec, err
	}
	if a := p.armed[id]; a == nil || !a.CompareAndSwap(true, false) {
		return do()
	}
	if err := n.PutMap(context.Background(), p.newer); err != nil {
		return client.Record{}, err
	}
	if id == p.hook {
		<-p.committed
		p.between()
	}
	return do()
}

// A write refused for a newer map by all but one of its nodes committed on
// that one, and a reader can roll it forward from there and serve it.
// Running it again under the new map would name a second version of it,
// above a write acknowledged after the read, and bring it back: a chaos
// run saw GETs answer a value already overwritten this way. So such a
// write is not run again; it answers 503 ErrMapChanged, and the later
// write stays. The newer map places the key on other nodes, shard for
// shard (its nodes changed zones), so the commit cannot simply be sent
// again under it (TestStaleMapCommitPlacedAlikeIsSentAgain).
func TestStaleMapWriteCommittedSomewhereIsNotRunAgain(t *testing.T) {
	testStaleMapCommittedSomewhere(t, true)
}

// The same scene under a newer map that places the key alike: the commit
// is sent again, same version, under the newer map, and the nodes refuse
// it for the later write's newer version. The later write stays.
func TestStaleMapCommittedSomewherePlacedAlike(t *testing.T) {
	testStaleMapCommittedSomewhere(t, false)
}

func testStaleMapCommittedSomewhere(t *testing.T, moved bool) {
	ctx := context.Background()
	c, plan := newRerunCluster(t)
	c.put("k", payload(100, 0))
	placed := c.s.Map().PlaceKey(testBucket, "k")
	newer := *c.s.Map()
	newer.Epoch++
	if moved {
		// Another partition count puts the key in another partition.
		for newer.Partitions++; newer.Partitions < 2*c.s.Map().Partitions && slices.Equal(nodeIDs(newer.PlaceKey(testBucket, "k")), nodeIDs(placed)); newer.Partitions++ {
		}
		if slices.Equal(nodeIDs(newer.PlaceKey(testBucket, "k")), nodeIDs(placed)) {
			t.Fatal("the newer map places the key alike: the test no longer sets the scene")
		}
	}
	// Another gateway, already on the new map.
	other := c.newStoreOn(t, &newer)
	read := func(s *Store) []byte {
		t.Helper()
		obj, err := s.OpenObject(ctx, testBucket, "k")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		var buf bytes.Buffer
		if err := obj.WriteRange(ctx, &buf, 0, obj.Info().Size); err != nil {
			t.Fatalf("get: %v", err)
		}
		return buf.Bytes()
	}

	first, later := payload(100, 1), payload(100, 2)
	plan.newer = &newer
	plan.committer, plan.hook = placed[0].ID, placed[5].ID
	plan.arm(placed[1:])
	var readBetween []byte
	plan.between = func() {
		// The first write is committed on one node and staged on the
		// others: the other gateway serves it, rolling it forward.
		readBetween = read(other)
		if _, err := other.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: int64(len(later)), Body: bytes.NewReader(later)}); err != nil {
			t.Errorf("later put: %v", err)
		}
	}
	_, err := c.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: int64(len(first)), Body: bytes.NewReader(first)})
	if !bytes.Equal(readBetween, first) {
		t.Fatalf("the read during the first write's commit got %d bytes, not the first write's: the test no longer sets the scene", len(readBetween))
	}
	want, wantName := ErrMapChanged, "ErrMapChanged"
	if !moved {
		want, wantName = ErrSuperseded, "ErrSuperseded"
	}
	if err == nil || !errors.Is(err, want) || kerr.KindOf(err) != kerr.Unavailable {
		t.Errorf("first put: error %v, want %s with kind Unavailable", err, wantName)
	}
	if got := read(other); !bytes.Equal(got, later) {
		t.Errorf("get after both puts: %d bytes, not the later write's (first write's: %v)", len(got), bytes.Equal(got, first))
	}
	if got := read(c.s); !bytes.Equal(got, later) {
		t.Errorf("get through the first gateway: %d bytes, not the later write's (first write's: %v)", len(got), bytes.Equal(got, first))
	}
}

// A write refused for a newer map by all but one of its nodes, with no
// later write of the key, under a map that places the key on the same
// nodes shard for shard (as adding or removing a node does for most keys):
// under that map the write would have been this very one, so its commit
// is sent again, same version, under the newer epoch, and it is
// acknowledged instead of answering 503.
func TestStaleMapCommitPlacedAlikeIsSentAgain(t *testing.T) {
	c, plan := newRerunCluster(t)
	c.put("k", payload(100, 0))
	placed := c.s.Map().PlaceKey(testBucket, "k")
	newer := *c.s.Map()
	newer.Epoch++
	plan.newer = &newer
	plan.committer = placed[0].ID
	plan.arm(placed[1:])
	data := payload(100, 1)
	info, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	for id, a := range plan.armed {
		if a.Load() {
			t.Fatalf("node %s never refused the commit: the test no longer sets the scene", id)
		}
	}
	if e := c.s.Map().Epoch; e != newer.Epoch {
		t.Errorf("gateway map epoch %d after the put, want %d", e, newer.Epoch)
	}
	c.mustGet("k", data)
	// One version, committed on every node of the key.
	for i, pn := range placed {
		st, err := c.nodes[pn.ID].Stat(context.Background(), testBucket, "k")
		if err != nil || st.Committed == nil || st.Committed.Version != info.Version {
			t.Errorf("node %s (shard %d): %+v, %v; want version %q committed", pn.ID, i, st.Committed, err, info.Version)
		}
	}
}

func nodeIDs(nodes []placement.Node) []string {
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.ID)
	}
	return ids
}

// A write refused for a newer map by every node it tried to commit on is
// held committed by none, so nothing can serve it: it runs again under the
// new map and is acknowledged.
func TestStaleMapWriteRefusedEverywhereRunsAgain(t *testing.T) {
	ctx := context.Background()
	c, plan := newRerunCluster(t)
	c.put("k", payload(100, 0))
	newer := *c.s.Map()
	newer.Epoch++
	plan.newer = &newer
	plan.arm(c.s.Map().PlaceKey(testBucket, "k"))
	data := payload(100, 1)
	if _, err := c.s.PutObject(ctx, PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)}); err != nil {
		t.Fatalf("put: %v", err)
	}
	if e := c.s.Map().Epoch; e != newer.Epoch {
		t.Errorf("gateway map epoch %d after the put, want %d", e, newer.Epoch)
	}
	c.mustGet("k", data)
}

// tagRerunNode is rerunNode for tag updates: armed, it takes the plan's
// newer map just before its first tag update and so refuses it.
type tagRerunNode struct {
	*flakyNode
	id   string
	plan *rerunPlan
}

func (n tagRerunNode) SetTags(ctx context.Context, u client.TagUpdate) (client.Record, error) {
	return n.plan.call(n.id, n.flakyNode, func() (client.Record, error) { return n.flakyNode.SetTags(ctx, u) })
}

// A tag update refused for a newer map by all but one of the key's nodes
// took on that one, and a reader serves its tags from there. Running it
// again under the new map would stamp it anew, above a tag update
// acknowledged after the read, and bring the older tags back. So it is
// not run again: it answers 503 ErrMapChanged, and the later tags stay.
func TestStaleMapTagUpdateTakenSomewhereIsNotRunAgain(t *testing.T) {
	ctx := context.Background()
	vc := newVersionCluster(t)
	plan := &rerunPlan{committed: make(chan struct{})}
	gateway := func(m *placement.Map, dial func(placement.Node) client.Node) *Store {
		s, err := New(Config{Map: m, Dial: dial, CallTimeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.bg.Wait)
		return s
	}
	s := gateway(vc.m, func(pn placement.Node) client.Node {
		return tagRerunNode{flakyNode: vc.nodes[pn.ID], id: pn.ID, plan: plan}
	})
	if err := s.CreateBucket(ctx, testBucket); err != nil {
		t.Fatal(err)
	}
	putString(t, s, "k", "data")
	placed := vc.m.PlaceKey(testBucket, "k")
	newer := *vc.m
	newer.Epoch++
	// Another gateway, already on the new map.
	other := gateway(&newer, func(pn placement.Node) client.Node { return vc.nodes[pn.ID] })
	tags := func(s *Store) string {
		t.Helper()
		info, err := s.StatObject(ctx, testBucket, "k")
		if err != nil {
			t.Fatalf("stat: %v", err)
		}
		return info.Tagging
	}

	const first, later = "v=first", "v=later"
	plan.newer = &newer
	plan.committer, plan.hook = placed[0].ID, placed[5].ID
	plan.arm(placed[1:])
	var readBetween string
	plan.between = func() {
		// The first update is on one node: the other gateway serves
		// its tags, then has a later update acknowledged.
		readBetween = tags(other)
		if _, err := other.SetObjectTags(ctx, testBucket, "k", "", later); err != nil {
			t.Errorf("later tag update: %v", err)
		}
	}
	_, err := s.SetObjectTags(ctx, testBucket, "k", "", first)
	if readBetween != first {
		t.Fatalf("the read during the first update got tags %q, not the first update's: the test no longer sets the scene", readBetween)
	}
	if err == nil || !errors.Is(err, ErrMapChanged) || kerr.KindOf(err) != kerr.Unavailable {
		t.Errorf("first tag update: error %v, want ErrMapChanged with kind Unavailable", err)
	}
	if got := tags(other); got != later {
		t.Errorf("tags after both updates: %q, want the later update's %q", got, later)
	}
	if got := tags(s); got != later {
		t.Errorf("tags through the first gateway: %q, want the later update's %q", got, later)
	}
}
