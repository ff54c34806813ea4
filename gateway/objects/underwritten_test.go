package objects

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// liveNode is a real storage node served over httptest, with its default
// configuration (superseded grace, underwritten hold).
type liveNode struct {
	n   *storagenode.Node
	srv *httptest.Server
	c   *client.Client
}

func startLiveNode(t *testing.T, id string) *liveNode {
	t.Helper()
	cfg := storagenode.DefaultConfig()
	cfg.ID, cfg.Dir, cfg.Logger = id, t.TempDir(), slog.New(slog.DiscardHandler)
	cfg.SweepInterval, cfg.ScrubRate = 0, 0 // the test sweeps
	n, err := storagenode.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln := &liveNode{n: n, srv: httptest.NewServer(n.Handler())}
	ln.c = client.New(ln.srv.URL, nil)
	t.Cleanup(ln.stop)
	return ln
}

// stop closes the node; it may be called more than once.
func (ln *liveNode) stop() {
	ln.srv.Close()
	ln.n.Close()
}

// dyingWriter is a writer's view of the nodes: the stage of shard 5 fails
// (its node was not known to be down), and after the commits of shards
// 0-2 the writer is gone: nothing it sends to shard 3's and 4's nodes, nor
// any abort, arrives.
type dyingWriter struct {
	client.Node
	failStage, failCommit bool
}

var errWriterGone = kerr.E("test", kerr.Unavailable, errors.New("writer gone"))

func (d *dyingWriter) Stage(ctx context.Context, bucket, key, version string, shard, blockSize int, body io.Reader) (client.StagedRef, error) {
	if d.failStage {
		return client.StagedRef{}, errWriterGone
	}
	return d.Node.Stage(ctx, bucket, key, version, shard, blockSize, body)
}

func (d *dyingWriter) Commit(ctx context.Context, m client.ObjectMeta) (client.Record, error) {
	if d.failCommit || d.failStage {
		return client.Record{}, errWriterGone
	}
	return d.Node.Commit(ctx, m)
}

func (d *dyingWriter) Abort(context.Context, string, string, string) error { return errWriterGone }

// TestUnderwrittenOverwriteKeepsOld: v1 is written to all six nodes; v2's
// stage fails on shard 5's node, so v2 names no node for that shard, and
// its writer dies after committing shards 0-2. The superseded grace
// passes, then the two nodes holding v2 only staged are lost (replaced by
// empty ones). v2 has 3 shards and was never acknowledged; v1, which was,
// must still be read whole: its node 5 shard committed and the shards
// nodes 0-2 hold superseded, for the underwritten hold.
func TestUnderwrittenOverwriteKeepsOld(t *testing.T) {
	ctx := context.Background()
	const key = "k"
	m := &placement.Map{Epoch: 1, DataShards: 4, ParityShards: 2, Partitions: 64, BlockSize: testBlock}
	nodes := make(map[string]*liveNode)
	for i := range 6 {
		id := fmt.Sprintf("n%d", i)
		nodes[id] = startLiveNode(t, id)
		m.Nodes = append(m.Nodes, placement.Node{ID: id, Addr: nodes[id].srv.Listener.Addr().String(), Zone: fmt.Sprintf("z%d", i)})
	}
	store := func(dial func(placement.Node) client.Node) *Store {
		t.Helper()
		s, err := New(Config{
			Map:         m,
			Dial:        dial,
			CallTimeout: 5 * time.Second,
			Logger:      slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.bg.Wait)
		return s
	}
	real := func(n placement.Node) client.Node { return nodes[n.ID].c }

	s := store(real)
	if err := s.CreateBucket(ctx, testBucket); err != nil {
		t.Fatal(err)
	}
	v1, v2 := payload(3*testBlock+17, 1), payload(2*testBlock+5, 2)
	if _, err := s.PutObject(ctx, PutInput{Bucket: testBucket, Key: key, Size: int64(len(v1)), Body: bytes.NewReader(v1)}); err != nil {
		t.Fatal(err)
	}

	place := m.PlaceKey(testBucket, key)
	w := store(func(n placement.Node) client.Node {
		d := &dyingWriter{Node: nodes[n.ID].c}
		d.failStage = n.ID == place[5].ID
		d.failCommit = n.ID == place[3].ID || n.ID == place[4].ID
		return d
	})
	if _, err := w.PutObject(ctx, PutInput{Bucket: testBucket, Key: key, Size: int64(len(v2)), Body: bytes.NewReader(v2)}); err == nil {
		t.Fatal("the dying writer's PUT succeeded")
	}
	w.bg.Wait()
	for i, p := range place {
		ks, err := nodes[p.ID].c.Stat(ctx, testBucket, key)
		if err != nil {
			t.Fatal(err)
		}
		committedNew := i < 3
		if c := ks.Committed; c == nil || (c.Nodes[5] == "") != committedNew {
			t.Fatalf("shard %d's node: committed %+v, want v2 committed on shards 0-2 only", i, c)
		}
		if stagedNew := i == 3 || i == 4; stagedNew != (len(ks.Staged) > 0) {
			t.Fatalf("shard %d's node: staged %+v, want v2 staged on shards 3 and 4", i, ks.Staged)
		}
	}

	// Past the superseded grace: the nodes sweep.
	for _, ln := range nodes {
		if _, err := ln.n.Sweep(ctx, time.Now().Add(storagenode.DefaultSupersededGrace+time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	// Shards 3 and 4 are lost: their nodes come back empty, with the
	// bucket (which the other nodes still tell them of).
	bucket, err := nodes[place[0].ID].c.GetBucket(ctx, testBucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range place[3:5] {
		nodes[p.ID].stop()
		nodes[p.ID] = startLiveNode(t, p.ID)
		if err := nodes[p.ID].c.PutBucket(ctx, bucket); err != nil {
			t.Fatal(err)
		}
	}

	r := store(real)
	obj, err := r.OpenObject(ctx, testBucket, key)
	if err != nil {
		t.Fatalf("GET after losing v2's staged shards: %v; want v1", err)
	}
	var buf bytes.Buffer
	if err := obj.WriteRange(ctx, &buf, 0, obj.Info().Size); err != nil || !bytes.Equal(buf.Bytes(), v1) {
		t.Fatalf("GET = %d bytes, %v; want v1's %d bytes", buf.Len(), err, len(v1))
	}
}
