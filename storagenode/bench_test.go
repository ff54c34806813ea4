package storagenode

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// benchShard returns one framed shard carrying size payload bytes in
// default-size blocks.
func benchShard(b *testing.B, size int) []byte {
	b.Helper()
	c, err := codec.New(1, 0)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := c.Encode(bytes.NewReader(bytes.Repeat([]byte("kintsugi"), size/8)), []io.Writer{&buf}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// stageCommitter is the part of a node client the stage benchmarks use.
type stageCommitter interface {
	Stage(ctx context.Context, bucket, key, version string, shard, blockSize int, body io.Reader) (client.StagedRef, error)
	Commit(ctx context.Context, meta client.ObjectMeta) (client.Record, error)
}

// benchmarkStageCommit stages and commits shards of size bytes, one after
// the other, through the client via returns (nil: the node's HTTP client).
func benchmarkStageCommit(b *testing.B, size int, via func(*testNode) stageCommitter) {
	tn := startNode(b, "", nil)
	var c stageCommitter = tn.c
	if via != nil {
		c = via(tn)
	}
	shard := benchShard(b, size)
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		v := ulid.Make().String()
		if _, err := c.Stage(ctx, "bench", "key", v, 0, codec.DefaultBlockSize, bytes.NewReader(shard)); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Commit(ctx, benchMeta(v, size)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStageCommit4K(b *testing.B)   { benchmarkStageCommit(b, 4<<10, nil) }
func BenchmarkStageCommit256K(b *testing.B) { benchmarkStageCommit(b, 256<<10, nil) }
func BenchmarkStageCommit16M(b *testing.B)  { benchmarkStageCommit(b, 16<<20, nil) }

func local(tn *testNode) stageCommitter { return NewLocal(tn.Node, nil) }
func trusting(tn *testNode) stageCommitter {
	return NewLocal(tn.Node, &LocalOptions{TrustFrames: true})
}

func BenchmarkStageCommitLocal4K(b *testing.B)         { benchmarkStageCommit(b, 4<<10, local) }
func BenchmarkStageCommitLocal16M(b *testing.B)        { benchmarkStageCommit(b, 16<<20, local) }
func BenchmarkStageCommitLocalTrusted16M(b *testing.B) { benchmarkStageCommit(b, 16<<20, trusting) }

func BenchmarkReadShard(b *testing.B) {
	const size = 4 << 20
	tn := startNode(b, "", nil)
	shard := benchShard(b, size)
	ctx := context.Background()
	v := ulid.Make().String()
	if _, err := tn.c.Stage(ctx, "bench", "key", v, 0, codec.DefaultBlockSize, bytes.NewReader(shard)); err != nil {
		b.Fatal(err)
	}
	if _, err := tn.c.Commit(ctx, benchMeta(v, size)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(shard)))
	b.ReportAllocs()
	for b.Loop() {
		rc, err := tn.c.ReadShard(ctx, "bench", "key", v, 0, 0, -1)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n != int64(len(shard)) {
			b.Fatalf("read %d bytes, %v", n, err)
		}
	}
}

// BenchmarkStageCommitParallel4K runs stage+commits of 4 KiB shards from 16
// goroutines on distinct keys, the shape in which concurrent PUTs share
// fsyncs (group commit).
func BenchmarkStageCommitParallel4K(b *testing.B) {
	benchStageCommitParallel(b, startNode(b, "", nil), 4<<10)
}

// benchStageCommitParallel runs stage+commits of shards of size bytes from
// 16 goroutines on 2 CPUs, each on its own key, overwriting it.
func benchStageCommitParallel(b *testing.B, tn *testNode, size int) {
	shard := benchShard(b, size)
	ctx := context.Background()
	var keys atomic.Int64
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := "key" + strconv.FormatInt(keys.Add(1), 10)
		for pb.Next() {
			v := ulid.Make().String()
			if _, err := tn.c.Stage(ctx, "bench", key, v, 0, codec.DefaultBlockSize, bytes.NewReader(shard)); err != nil {
				b.Error(err)
				return
			}
			m := benchMeta(v, size)
			m.Key = key
			if _, err := tn.c.Commit(ctx, m); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkInlineThreshold runs parallel stage+commits (as
// BenchmarkStageCommitParallel4K) of shards of several sizes with the
// shard in a file of its own, inline in the index, or in a pack file, to
// choose DefaultInlineMax and DefaultPackMax.
func BenchmarkInlineThreshold(b *testing.B) {
	for _, size := range []int{1 << 10, 4 << 10, 16 << 10, 32 << 10, 64 << 10, 256 << 10, 1 << 20} {
		for _, mode := range []string{"file", "inline", "pack"} {
			b.Run(strconv.Itoa(size>>10)+"KiB/"+mode, func(b *testing.B) {
				tn := startNode(b, "", func(c *Config) {
					c.SupersededGrace = 0
					switch mode {
					case "inline":
						c.InlineMax = int64(size + 2*codec.DigestSize)
					case "pack":
						c.PackMax = int64(size + 8*codec.DigestSize)
					}
				})
				benchStageCommitParallel(b, tn, size)
			})
		}
	}
}

// BenchmarkCopyFrames16M and BenchmarkCopyFramesTrusted16M measure what a
// stage spends on its frames alone, without the disk: the cost
// LocalOptions.TrustFrames saves.
func BenchmarkCopyFrames16M(b *testing.B)        { benchmarkCopyFrames(b, false) }
func BenchmarkCopyFramesTrusted16M(b *testing.B) { benchmarkCopyFrames(b, true) }

func benchmarkCopyFrames(b *testing.B, trust bool) {
	shard := benchShard(b, 16<<20)
	blocks := newFreeList(1)
	b.SetBytes(int64(len(shard)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := copyFrames(nil, blocks, bytes.NewReader(shard), codec.DefaultBlockSize, trust); err != nil {
			b.Fatal(err)
		}
	}
}
