package codec

import (
	"bytes"
	"io"
	"testing"
)

// Benchmarks use the default block size; names follow reedsolomon's
// BenchmarkEncode<d>x<p>x<object size>.

func benchmarkEncode(b *testing.B, d, p, size int) {
	c, err := New(d, p)
	if err != nil {
		b.Fatal(err)
	}
	data := randBytes(size, 1)
	ws := make([]io.Writer, d+p)
	for i := range ws {
		ws[i] = io.Discard
	}
	r := bytes.NewReader(data)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(data)
		if _, err := c.Encode(r, ws); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode4x2x64K(b *testing.B) { benchmarkEncode(b, 4, 2, 64<<10) }
func BenchmarkEncode4x2x1M(b *testing.B)  { benchmarkEncode(b, 4, 2, 1<<20) }
func BenchmarkEncode4x2x64M(b *testing.B) { benchmarkEncode(b, 4, 2, 64<<20) }
func BenchmarkEncode8x3x64K(b *testing.B) { benchmarkEncode(b, 8, 3, 64<<10) }
func BenchmarkEncode8x3x1M(b *testing.B)  { benchmarkEncode(b, 8, 3, 1<<20) }
func BenchmarkEncode8x3x64M(b *testing.B) { benchmarkEncode(b, 8, 3, 64<<20) }

// benchmarkDecode decodes a whole object with the first `lost` shards
// missing: 0 is the healthy path, p forces Reed-Solomon on every stripe.
func benchmarkDecode(b *testing.B, d, p, size, lost int) {
	c, err := New(d, p)
	if err != nil {
		b.Fatal(err)
	}
	shards, _ := encode(b, c, randBytes(size, 2))
	readers := make([]*bytes.Reader, d+p)
	rs := make([]io.Reader, d+p)
	for i := lost; i < d+p; i++ {
		readers[i] = bytes.NewReader(shards[i])
		rs[i] = readers[i]
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for i := lost; i < d+p; i++ {
			readers[i].Reset(shards[i])
		}
		if _, err := c.Decode(io.Discard, rs, int64(size), 0, int64(size)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode4x2x64K(b *testing.B)      { benchmarkDecode(b, 4, 2, 64<<10, 0) }
func BenchmarkDecode4x2x1M(b *testing.B)       { benchmarkDecode(b, 4, 2, 1<<20, 0) }
func BenchmarkDecode4x2x64M(b *testing.B)      { benchmarkDecode(b, 4, 2, 64<<20, 0) }
func BenchmarkReconstruct4x2x64K(b *testing.B) { benchmarkDecode(b, 4, 2, 64<<10, 2) }
func BenchmarkReconstruct4x2x1M(b *testing.B)  { benchmarkDecode(b, 4, 2, 1<<20, 2) }
func BenchmarkReconstruct4x2x64M(b *testing.B) { benchmarkDecode(b, 4, 2, 64<<20, 2) }
func BenchmarkDecode8x3x64K(b *testing.B)      { benchmarkDecode(b, 8, 3, 64<<10, 0) }
func BenchmarkDecode8x3x1M(b *testing.B)       { benchmarkDecode(b, 8, 3, 1<<20, 0) }
func BenchmarkDecode8x3x64M(b *testing.B)      { benchmarkDecode(b, 8, 3, 64<<20, 0) }
func BenchmarkReconstruct8x3x64K(b *testing.B) { benchmarkDecode(b, 8, 3, 64<<10, 3) }
func BenchmarkReconstruct8x3x1M(b *testing.B)  { benchmarkDecode(b, 8, 3, 1<<20, 3) }
func BenchmarkReconstruct8x3x64M(b *testing.B) { benchmarkDecode(b, 8, 3, 64<<20, 3) }
