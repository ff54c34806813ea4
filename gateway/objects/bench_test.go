package objects

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

func BenchmarkPut4x2x1M(b *testing.B) {
	c := newCluster(b, 6, 4, 2)
	data := payload(1<<20, 1)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet4x2x1M(b *testing.B) {
	c := newCluster(b, 6, 4, 2)
	data := payload(1<<20, 1)
	c.put("k", data)
	obj, err := c.s.OpenObject(context.Background(), testBucket, "k")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := obj.WriteRange(context.Background(), io.Discard, 0, int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
}

// The degraded-write benchmarks measure what raising parity costs, the
// alternative being a hinted handoff to the next node (see
// docs/operations.md): stored bytes per logical byte are reported as
// "stored/byte".

func BenchmarkPutHealthy4x2x1M(b *testing.B) { benchmarkPutDegraded(b, 0) }

func BenchmarkPutOneDown4x2x1M(b *testing.B) { benchmarkPutDegraded(b, 1) }

func benchmarkPutDegraded(b *testing.B, down int) {
	c := newHealthCluster(b, 6, 4, 2)
	for i := range down {
		n := c.shardNode("k", 5-i)
		n.SetDown("*", true)
		c.waitState(n.ID(), health.Down)
	}
	data := payload(1<<20, 1)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.storedBytes("k"))/float64(len(data)), "stored/byte")
}

// BenchmarkGetRaised3x3x1M reads an object written with one node down
// (3+3 on five nodes) with every node up again.
func BenchmarkGetRaised3x3x1M(b *testing.B) {
	c := newHealthCluster(b, 6, 4, 2)
	down := c.shardNode("k", 5)
	down.SetDown("*", true)
	c.waitState(down.ID(), health.Down)
	data := payload(1<<20, 1)
	c.put("k", data)
	down.SetDown("*", false)
	c.waitState(down.ID(), health.Up)
	obj, err := c.s.OpenObject(context.Background(), testBucket, "k")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := obj.WriteRange(context.Background(), io.Discard, 0, int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
}

// storedBytes is the size of key's committed shards on every node.
func (c *cluster) storedBytes(key string) int {
	total := 0
	for _, n := range c.list {
		n.Edit(func(st *nodetest.State) {
			if fk := st.Keys[nodetest.KeyID(testBucket, key)]; fk != nil && fk.Committed != nil {
				total += len(fk.Shard)
			}
		})
	}
	return total
}

// BenchmarkPutTwoDown compares PUTs with every node up and with p = 2 of
// the six down (written 2+4 on the other four), and reports stored bytes
// per object byte as "stored/byte".
func BenchmarkPutTwoDown(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"1MiB", 1 << 20}, {"16MiB", 16 << 20}} {
		for _, down := range []int{0, 2} {
			name := size.name + map[int]string{0: "/healthy", 2: "/twodown"}[down]
			b.Run(name, func(b *testing.B) {
				c := newHealthCluster(b, 6, 4, 2)
				for i := range down {
					n := c.shardNode("k", 5-2*i)
					n.SetDown("*", true)
					c.waitState(n.ID(), health.Down)
				}
				data := payload(size.n, 1)
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(c.storedBytes("k"))/float64(len(data)), "stored/byte")
			})
		}
	}
}

// BenchmarkPutKeptBody measures what keeping a PUT's body for a second
// attempt costs (keptbody.go): the same 16 MiB PUT with the body kept as
// it streams and with keeping off (KeptBodies < 0).
func BenchmarkPutKeptBody(b *testing.B) {
	for _, mode := range []struct {
		name string
		kept int64
	}{{"kept", 0}, {"streamed", -1}} {
		b.Run(mode.name, func(b *testing.B) {
			c := newCluster(b, 6, 4, 2, func(cfg *Config) { cfg.KeptBodies = mode.kept })
			data := payload(16<<20, 1)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: int64(len(data)), Body: bytes.NewReader(data)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
