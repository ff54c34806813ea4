package storagenode

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

const testBlock = 4096

// testNode is a node served over httptest with a client for it.
type testNode struct {
	*Node
	srv *httptest.Server
	c   *client.Client
	cfg Config
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startNode opens a node on dir (a new temp dir if "") and serves it.
func startNode(t testing.TB, dir string, edit func(*Config)) *testNode {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := Config{ID: "node-1", Dir: dir, Logger: quietLogger()}
	if edit != nil {
		edit(&cfg)
	}
	n, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	srv := httptest.NewServer(n.Handler())
	tn := &testNode{Node: n, srv: srv, cfg: cfg, c: client.New(srv.URL, &client.Options{Secret: cfg.Secret})}
	t.Cleanup(tn.stop)
	return tn
}

// stop shuts the server and node down; it may be called more than once.
func (tn *testNode) stop() {
	tn.srv.Close()
	tn.Node.Close()
}

// ver returns a version that sorts by i.
func ver(i int) string {
	return ulid.MustNew(uint64(1_700_000_000_000+i), bytes.NewReader(make([]byte, 16))).String()
}

// object is an encoded test object.
type object struct {
	data   []byte
	shards [][]byte
	roots  []codec.Digest
}

// encode makes a deterministic object of size bytes, 4+2, block testBlock.
func encode(t testing.TB, size int, seed uint64) object {
	t.Helper()
	c, err := codec.New(4, 2, codec.WithBlockSize(testBlock))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	bufs := make([]*bytes.Buffer, 6)
	ws := make([]io.Writer, 6)
	for i := range bufs {
		bufs[i] = new(bytes.Buffer)
		ws[i] = bufs[i]
	}
	enc, err := c.Encode(bytes.NewReader(data), ws)
	if err != nil {
		t.Fatal(err)
	}
	o := object{data: data, roots: enc.Roots}
	for _, b := range bufs {
		o.shards = append(o.shards, b.Bytes())
	}
	return o
}

func (o object) meta(bucket, key, version string) client.ObjectMeta {
	m := client.ObjectMeta{
		Bucket: bucket, Key: key, Version: version, Size: int64(len(o.data)),
		Modified: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Data:     4, Parity: 2, BlockSize: testBlock, Format: codec.FormatVersion,
		Nodes: []string{"node-0", "node-1", "node-2", "node-3", "node-4", "node-5"},
	}
	for _, r := range o.roots {
		m.Roots = append(m.Roots, r.String())
	}
	return m
}

// put stages shard i of o and commits it.
func (tn *testNode) put(t testing.TB, bucket, key, version string, o object, shard int) client.Record {
	t.Helper()
	ctx := context.Background()
	if _, err := tn.c.Stage(ctx, bucket, key, version, shard, testBlock, bytes.NewReader(o.shards[shard])); err != nil {
		t.Fatalf("Stage %s/%s %s: %v", bucket, key, version, err)
	}
	rec, err := tn.c.Commit(ctx, o.meta(bucket, key, version))
	if err != nil {
		t.Fatalf("Commit %s/%s %s: %v", bucket, key, version, err)
	}
	return rec
}

// readAll reads a whole committed shard.
func (tn *testNode) readAll(t testing.TB, bucket, key, version string, shard int) []byte {
	t.Helper()
	rc, err := tn.c.ReadShard(context.Background(), bucket, key, version, shard, 0, -1)
	if err != nil {
		t.Fatalf("ReadShard %s/%s %s: %v", bucket, key, version, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading shard: %v", err)
	}
	return b
}

// files lists the regular files under dir/sub, relative to dir, sorted.
func files(t testing.TB, dir, sub string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(dir, sub), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func wantKind(t testing.TB, err error, k kerr.Kind) {
	t.Helper()
	if got := kerr.KindOf(err); got != k {
		t.Fatalf("error kind = %v, want %v (err: %v)", got, k, err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func timeNow() time.Time { return time.Now() }

func newRawRequest(method, url string, body io.Reader) (*http.Request, error) {
	return http.NewRequest(method, url, body)
}

func benchMeta(version string, size int) client.ObjectMeta {
	return client.ObjectMeta{
		Bucket: "bench", Key: "key", Version: version, Size: int64(size),
		Data: 1, Parity: 0, BlockSize: codec.DefaultBlockSize, Format: codec.FormatVersion,
	}
}
