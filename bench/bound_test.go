package bench

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/reedsolomon"
	"github.com/zeebo/blake3"

	"github.com/kintsugi-store/kintsugi/codec"
)

// The pipeline bound is what the CPU can do with an object's bytes when
// nothing but the unavoidable work happens: for a PUT, MD5 of the body (the
// S3 ETag), Reed-Solomon 4+2 over every stripe and blake3 of every shard
// block; for a healthy GET, blake3 of the data blocks it returns. No
// network, no disk, no allocation. End-to-end benchmarks report
// efficiency = their MB/s / the bound's MB/s for the same object size and
// number of goroutines, measured in the same process: a ratio that holds
// on a noisy or different machine, where absolute MB/s do not.

const (
	boundData   = 4
	boundParity = 2
	boundBlock  = codec.DefaultBlockSize
)

// pipeline is the per-goroutine working memory of the bound: one stripe.
type pipeline struct {
	enc    reedsolomon.Encoder
	buf    []byte   // (d+p) * B
	shards [][]byte // views of buf
}

func newPipeline() *pipeline {
	enc, err := reedsolomon.New(boundData, boundParity)
	if err != nil {
		panic(err)
	}
	n := boundData + boundParity
	p := &pipeline{enc: enc, buf: make([]byte, n*boundBlock), shards: make([][]byte, n)}
	return p
}

// put does a PUT's CPU work on obj: MD5 of the whole, then per stripe a
// copy into the stripe buffer (the read from the socket), zero padding,
// RS encode and blake3 of all d+p blocks.
func (p *pipeline) put(obj []byte) {
	md5.Sum(obj)
	p.stripes(obj, func(blockLen int) {
		if err := p.enc.Encode(p.shards); err != nil {
			panic(err)
		}
		for _, s := range p.shards {
			blake3.Sum256(s)
		}
	})
}

// get does a healthy GET's CPU work on obj: per stripe, blake3 of the d
// data blocks as they are read into the stripe buffer.
func (p *pipeline) get(obj []byte) {
	p.stripes(obj, func(blockLen int) {
		for _, s := range p.shards[:boundData] {
			blake3.Sum256(s)
		}
	})
}

// stripes cuts obj as codec.Layout does (stripes of d*B bytes; the last
// one's blocks are ceil(rem/d) bytes, zero padded), copies each stripe into
// the buffer and calls work with p.shards set to its blocks.
func (p *pipeline) stripes(obj []byte, work func(blockLen int)) {
	for off := 0; off < len(obj); off += boundData * boundBlock {
		rem := min(len(obj)-off, boundData*boundBlock)
		blockLen := (rem + boundData - 1) / boundData
		for i := range p.shards {
			p.shards[i] = p.buf[i*boundBlock : i*boundBlock+blockLen]
		}
		for i := range boundData {
			lo := off + i*blockLen
			n := copy(p.shards[i], obj[min(lo, off+rem):min(lo+blockLen, off+rem)])
			clear(p.shards[i][n:])
		}
		work(blockLen)
	}
}

// newPipelines returns the working memory of conc goroutines.
func newPipelines(conc int) []*pipeline {
	ps := make([]*pipeline, conc)
	for i := range ps {
		ps[i] = newPipeline()
	}
	return ps
}

// runPipeline processes n objects on len(ps) goroutines.
func runPipeline(kind string, obj []byte, ps []*pipeline, n int64) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() {
			for next.Add(1) <= n {
				if kind == "put" {
					p.put(obj)
				} else {
					p.get(obj)
				}
			}
		})
	}
	wg.Wait()
}

// bound is the pipeline's throughput and its CPU time per object.
type bound struct {
	mbps     float64
	cpuPerOp time.Duration
}

// bounds caches the measured bound per (kind, size, concurrency) for the
// life of the benchmark process.
var bounds struct {
	sync.Mutex
	m map[string]bound
}

// pipelineBound returns the bound for kind ("put" or "get"), measuring it
// the first time: at least 300 ms and 4 objects per goroutine.
func pipelineBound(kind string, size, conc int) bound {
	key := fmt.Sprintf("%s/%d/%d", kind, size, conc)
	bounds.Lock()
	defer bounds.Unlock()
	if v, ok := bounds.m[key]; ok {
		return v
	}
	obj := benchPayload(size)
	ps := newPipelines(conc)
	runPipeline(kind, obj, ps, int64(conc)) // warm: stripe buffers, RS tables
	var n int64
	start, cpu0 := time.Now(), processCPU()
	for batch := int64(4 * conc); ; batch *= 2 {
		runPipeline(kind, obj, ps, batch)
		n += batch
		if time.Since(start) >= 300*time.Millisecond {
			break
		}
	}
	v := bound{
		mbps:     float64(n) * float64(size) / 1e6 / time.Since(start).Seconds(),
		cpuPerOp: (processCPU() - cpu0) / time.Duration(n),
	}
	if bounds.m == nil {
		bounds.m = make(map[string]bound)
	}
	bounds.m[key] = v
	return v
}

// reportEfficiency adds the bound and efficiency metrics to an end-to-end
// benchmark that has moved b.N objects of size bytes using cpuPerOp of CPU
// time for each:
//
//	efficiency      end-to-end MB/s / the bound's MB/s
//	cpu-efficiency  the bound's CPU time per object / end-to-end CPU time per object
//
// The first says how close the system gets to what the machine could do
// in the same run; the second, how much of the CPU it spends does work
// that cannot be avoided, and it holds even when other processes compete
// for the cores (wall time suffers from them, CPU time does not).
func reportEfficiency(b *testing.B, kind string, size, conc int, cpuPerOp time.Duration) {
	if b.Elapsed() <= 0 {
		return
	}
	mbps := float64(b.N) * float64(size) / 1e6 / b.Elapsed().Seconds()
	bd := pipelineBound(kind, size, conc)
	b.ReportMetric(bd.mbps, "bound-MB/s")
	b.ReportMetric(mbps/bd.mbps, "efficiency")
	if cpuPerOp > 0 {
		b.ReportMetric(float64(bd.cpuPerOp)/float64(cpuPerOp), "cpu-efficiency")
	}
}

// BenchmarkPipelineBound measures the bound itself: the CPU work of a PUT
// (MD5 + RS 4+2 + blake3 of every shard block) and of a healthy GET
// (blake3 of the data blocks), in memory, on c goroutines.
func BenchmarkPipelineBound(b *testing.B) {
	for _, kind := range []string{"put", "get"} {
		for _, sz := range benchSizes() {
			for _, conc := range benchConcurrency {
				b.Run(fmt.Sprintf("%s/%s/c%d", kind, sz.name, conc), func(b *testing.B) {
					obj := benchPayload(sz.n)
					ps := newPipelines(conc)
					b.SetBytes(int64(sz.n))
					b.ReportAllocs()
					runPipeline(kind, obj, ps, int64(conc))
					cpu0 := processCPU()
					b.ResetTimer()
					runPipeline(kind, obj, ps, int64(b.N))
					b.StopTimer()
					b.ReportMetric(float64((processCPU()-cpu0)/time.Duration(b.N))/1e3, "cpu-us/op")
				})
			}
		}
	}
}

// TestPipelineMatchesCodec checks that the bound does the same arithmetic
// as the real encoder: its shard blocks hash to the roots codec.Encode
// computes, for sizes around the stripe boundaries.
func TestPipelineMatchesCodec(t *testing.T) {
	c, err := codec.New(boundData, boundParity)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1, 4096, boundData*boundBlock - 1, boundData * boundBlock, boundData*boundBlock + 5, 3 * boundData * boundBlock} {
		obj := benchPayload(size)
		p := newPipeline()
		digests := make([][]codec.Digest, boundData+boundParity)
		p.stripes(obj, func(int) {
			if err := p.enc.Encode(p.shards); err != nil {
				t.Fatal(err)
			}
			for i, s := range p.shards {
				digests[i] = append(digests[i], blake3.Sum256(s))
			}
		})
		ws := make([]io.Writer, boundData+boundParity)
		for i := range ws {
			ws[i] = io.Discard
		}
		enc, err := c.Encode(bytes.NewReader(obj), ws)
		if err != nil {
			t.Fatal(err)
		}
		for i := range digests {
			if got := codec.RootOf(digests[i]); got != enc.Roots[i] {
				t.Errorf("size %d shard %d: bound's root %x, codec's %x", size, i, got[:4], enc.Roots[i][:4])
			}
		}
	}
}
