package objects

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// The tests here run gateways (Stores) whose clocks disagree against the
// same real storage nodes, served over HTTP: the order of writes must
// follow the order of their acknowledgements, whatever the clocks say.

// startNodes starts n storage nodes over loopback HTTP and returns a d+p
// map of them.
func startNodes(t *testing.T, n, d, p int) *placement.Map {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	m := &placement.Map{Epoch: 1, DataShards: d, ParityShards: p, BlockSize: 4096}
	for i := range n {
		cfg := storagenode.DefaultConfig()
		cfg.ID = fmt.Sprintf("n%d", i+1)
		cfg.Dir = t.TempDir()
		cfg.Logger = logger
		cfg.SweepInterval = 0
		cfg.ScrubRate = 0
		node, err := storagenode.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		srv := httptest.NewServer(node.Handler())
		t.Cleanup(srv.Close) // runs before node.Close
		m.Nodes = append(m.Nodes, placement.Node{ID: cfg.ID, Addr: srv.Listener.Addr().String(), Zone: fmt.Sprintf("z%d", i+1)})
	}
	return m
}

// gatewayAt returns a Store over m whose clock reads the real time plus
// offset. Bucket lookups are not cached: each gateway asks the nodes.
func gatewayAt(t *testing.T, m *placement.Map, offset time.Duration) *Store {
	t.Helper()
	s, err := New(Config{
		Map:            m,
		Now:            func() time.Time { return time.Now().Add(offset) },
		BucketCacheTTL: -1,
		Logger:         slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.bg.Wait)
	return s
}

func putBytes(t *testing.T, s *Store, bucket, key string, data []byte) {
	t.Helper()
	if _, err := s.PutObject(context.Background(), PutInput{Bucket: bucket, Key: key, Size: int64(len(data)), Body: bytes.NewReader(data)}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// readBytes reads bucket/key whole; a missing key is nil, ErrNoSuchKey.
func readBytes(s *Store, bucket, key string) ([]byte, error) {
	obj, err := s.OpenObject(context.Background(), bucket, key)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = obj.WriteRange(context.Background(), &buf, 0, obj.Info().Size)
	return buf.Bytes(), err
}

func wantBytes(t *testing.T, s *Store, bucket, key string, want []byte) {
	t.Helper()
	got, err := readBytes(s, bucket, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("get %s: served %d bytes %q..., want the %d bytes of the later write %q...", key, len(got), got[:min(8, len(got))], len(want), want[:min(8, len(want))])
	}
}

func wantGone(t *testing.T, s *Store, bucket, key string) {
	t.Helper()
	got, err := readBytes(s, bucket, key)
	if !kerr.Is(kerr.NotExist, err) {
		t.Fatalf("get %s after an acknowledged delete: %d bytes, %v; want not found", key, len(got), err)
	}
}

// TestSkewedGatewaysLaterWriteWins: two gateways 5 s apart write the same
// keys in turn; each acknowledged write is the one read afterwards,
// through either gateway.
func TestSkewedGatewaysLaterWriteWins(t *testing.T) {
	m := startNodes(t, 6, 4, 2)
	leading, lagging := gatewayAt(t, m, 5*time.Second), gatewayAt(t, m, 0)
	ctx := context.Background()
	if err := leading.CreateBucket(ctx, "bk"); err != nil {
		t.Fatal(err)
	}
	first, second, third := payload(9000, 1), payload(7000, 2), payload(100, 3)

	t.Run("put after put", func(t *testing.T) {
		putBytes(t, leading, "bk", "k", first)
		putBytes(t, lagging, "bk", "k", second)
		wantBytes(t, lagging, "bk", "k", second)
		wantBytes(t, leading, "bk", "k", second)
	})
	t.Run("delete after put", func(t *testing.T) {
		putBytes(t, leading, "bk", "d", first)
		if err := lagging.DeleteObject(ctx, "bk", "d"); err != nil {
			t.Fatal(err)
		}
		wantGone(t, lagging, "bk", "d")
		wantGone(t, leading, "bk", "d")
	})
	t.Run("put after delete", func(t *testing.T) {
		putBytes(t, lagging, "bk", "p", first)
		if err := leading.DeleteObject(ctx, "bk", "p"); err != nil {
			t.Fatal(err)
		}
		putBytes(t, lagging, "bk", "p", third)
		wantBytes(t, leading, "bk", "p", third)
	})
	t.Run("bucket delete after create", func(t *testing.T) {
		if err := leading.CreateBucket(ctx, "b2"); err != nil {
			t.Fatal(err)
		}
		if err := lagging.DeleteBucket(ctx, "b2"); err != nil {
			t.Fatal(err)
		}
		if _, err := leading.HeadBucket(ctx, "b2"); !kerr.Is(kerr.NotExist, err) {
			t.Fatalf("HeadBucket after an acknowledged delete: %v, want not found", err)
		}
		if err := lagging.CreateBucket(ctx, "b2"); err != nil {
			t.Fatal(err)
		}
		if _, err := leading.HeadBucket(ctx, "b2"); err != nil {
			t.Fatalf("HeadBucket after an acknowledged create: %v", err)
		}
	})
}

// TestClockStepsBackAcrossRestart: a gateway restarted with its clock an
// hour behind still overwrites and deletes what it wrote before.
func TestClockStepsBackAcrossRestart(t *testing.T) {
	m := startNodes(t, 6, 4, 2)
	before := gatewayAt(t, m, 0)
	ctx := context.Background()
	if err := before.CreateBucket(ctx, "bk"); err != nil {
		t.Fatal(err)
	}
	putBytes(t, before, "bk", "k", payload(5000, 4))
	putBytes(t, before, "bk", "d", payload(5000, 5))

	after := gatewayAt(t, m, -time.Hour) // a fresh Store: it remembers nothing
	want := payload(3000, 6)
	putBytes(t, after, "bk", "k", want)
	wantBytes(t, after, "bk", "k", want)
	if err := after.DeleteObject(ctx, "bk", "d"); err != nil {
		t.Fatal(err)
	}
	wantGone(t, after, "bk", "d")
}

// TestCommitAboveStageAnswers: a write staged before another write of the
// key was acknowledged, and committed after, wins: its commit is named
// above the versions the nodes hold, and a node that committed a newer
// version meanwhile refuses rather than counts.
func TestCommitAboveStageAnswers(t *testing.T) {
	m := startNodes(t, 6, 4, 2)
	s := gatewayAt(t, m, 0)
	ctx := context.Background()
	if err := s.CreateBucket(ctx, "bk"); err != nil {
		t.Fatal(err)
	}
	// The slow write's stage version is named first; the other write is
	// acknowledged before the slow one's commit begins.
	slow, fast := payload(6000, 7), payload(6000, 8)
	body := &gatedReader{r: bytes.NewReader(slow), at: 3000, gate: make(chan struct{}), reached: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := s.PutObject(ctx, PutInput{Bucket: "bk", Key: "k", Size: int64(len(slow)), Body: body})
		done <- err
	}()
	<-body.reached
	putBytes(t, s, "bk", "k", fast)
	close(body.gate)
	if err := <-done; err != nil {
		t.Fatalf("slow put: %v", err)
	}
	wantBytes(t, s, "bk", "k", slow)
	// The node contract behind it: an older commit is refused.
	c := client.New(m.Nodes[0].Addr, nil)
	_, err := c.Commit(ctx, client.ObjectMeta{Bucket: "bk", Key: "k", Version: "01AAAAAAAAAAAAAAAAAAAAAAAA", Deleted: true})
	if !kerr.Is(kerr.Conflict, err) || client.Newer(err) == "" {
		t.Fatalf("commit of an old marker: %v, want a conflict naming the newer version", err)
	}
}

// gatedReader reads r up to at bytes, then signals reached and blocks
// until gate is closed.
type gatedReader struct {
	r       *bytes.Reader
	at      int
	n       int
	gate    chan struct{}
	reached chan struct{}
	once    bool
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.n >= g.at && !g.once {
		g.once = true
		close(g.reached)
		<-g.gate
	}
	if g.n < g.at && len(p) > g.at-g.n {
		p = p[:g.at-g.n]
	}
	k, err := g.r.Read(p)
	g.n += k
	return k, err
}
