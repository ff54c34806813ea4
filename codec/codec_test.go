package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/klauspost/reedsolomon"
	"github.com/zeebo/blake3"
)

const testBlock = MinBlockSize // small blocks keep the exhaustive tests fast

var errBoom = errors.New("boom")

// randBytes returns n deterministic pseudo-random bytes.
func randBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 0x6b696e74))
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], rng.Uint64())
		copy(b[i:], w[:])
	}
	return b
}

func mustNew(t testing.TB, d, p, b int) *Codec {
	t.Helper()
	c, err := New(d, p, WithBlockSize(b))
	if err != nil {
		t.Fatalf("New(%d, %d, %d): %v", d, p, b, err)
	}
	return c
}

// encode encodes data and returns the shard streams.
func encode(t testing.TB, c *Codec, data []byte) ([][]byte, Encoded) {
	t.Helper()
	n := c.Data() + c.Parity()
	bufs := make([]*bytes.Buffer, n)
	ws := make([]io.Writer, n)
	for i := range bufs {
		bufs[i] = new(bytes.Buffer)
		ws[i] = bufs[i]
	}
	enc, err := c.Encode(bytes.NewReader(data), ws)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	for i, err := range enc.ShardErr {
		if err != nil {
			t.Fatalf("Encode: shard %d: %v", i, err)
		}
	}
	if enc.Size != int64(len(data)) {
		t.Fatalf("Encode: Size %d, want %d", enc.Size, len(data))
	}
	shards := make([][]byte, n)
	for i, b := range bufs {
		shards[i] = b.Bytes()
	}
	return shards, enc
}

// noSeek hides an io.Seeker so that Decode must discard bytes to skip.
type noSeek struct{ io.Reader }

// spanReaders returns readers over exactly the span of [off, off+length) of
// each shard; shards listed in missing are nil. Odd shards hide Seek.
func spanReaders(l Layout, shards [][]byte, off, length int64, missing ...int) []io.Reader {
	rs := make([]io.Reader, len(shards))
	var sp Span
	if length > 0 {
		sp = l.Span(off, length)
	}
	for i, s := range shards {
		r := bytes.NewReader(s[sp.ShardOff : sp.ShardOff+sp.ShardLen])
		if i%2 == 1 {
			rs[i] = noSeek{r}
		} else {
			rs[i] = r
		}
	}
	for _, i := range missing {
		rs[i] = nil
	}
	return rs
}

func decode(t testing.TB, c *Codec, rs []io.Reader, size, off, length int64) ([]byte, Report, error) {
	t.Helper()
	var out bytes.Buffer
	rep, err := c.Decode(&out, rs, size, off, length)
	return out.Bytes(), rep, err
}

// failures renders a Report as "shard/block:cause" strings for comparison.
func failures(rep Report) string {
	var parts []string
	for _, f := range rep.Failed {
		cause := "other:" + f.Err.Error()
		for _, s := range []error{ErrMissing, ErrCorrupt, ErrShortShard, errBoom} {
			if errors.Is(f.Err, s) {
				cause = strings.TrimPrefix(s.Error(), "codec: ")
			}
		}
		parts = append(parts, fmt.Sprintf("%d/%d:%s", f.Shard, f.Block, cause))
	}
	return strings.Join(parts, " ")
}

func TestNew(t *testing.T) {
	tests := []struct {
		d, p, b int
		field   string
	}{
		{4, 2, DefaultBlockSize, ""},
		{1, 0, MinBlockSize, ""},
		{16, 8, MaxBlockSize, ""},
		{0, 2, DefaultBlockSize, "Data"},
		{17, 2, DefaultBlockSize, "Data"},
		{4, -1, DefaultBlockSize, "Parity"},
		{4, 9, DefaultBlockSize, "Parity"},
		{4, 2, MinBlockSize - 1, "BlockSize"},
		{4, 2, MaxBlockSize + 1, "BlockSize"},
	}
	for _, tt := range tests {
		c, err := New(tt.d, tt.p, WithBlockSize(tt.b))
		if tt.field != "" {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.field) || c != nil {
				t.Errorf("New(%d, %d, %d) = %v, %v; want ErrInvalid naming %s", tt.d, tt.p, tt.b, c, err, tt.field)
			}
			continue
		}
		if err != nil {
			t.Fatalf("New(%d, %d, %d): %v", tt.d, tt.p, tt.b, err)
		}
		if c.Data() != tt.d || c.Parity() != tt.p || c.BlockSize() != tt.b {
			t.Errorf("New(%d, %d, %d): got %d+%d B=%d", tt.d, tt.p, tt.b, c.Data(), c.Parity(), c.BlockSize())
		}
		want := Layout{Data: tt.d, Parity: tt.p, BlockSize: tt.b, Size: 99}
		if got := c.Layout(99); got != want {
			t.Errorf("Layout(99) = %+v, want %+v", got, want)
		}
	}
	c, err := New(4, 2)
	if err != nil || c.BlockSize() != DefaultBlockSize {
		t.Fatalf("New(4, 2) = %v, %v; want block size %d", c, err, DefaultBlockSize)
	}
}

// TestEncodeFormat pins the durable frame format byte for byte.
func TestEncodeFormat(t *testing.T) {
	const d, p, B = 3, 2, testBlock
	c := mustNew(t, d, p, B)
	size := 2*d*B + 1000 // two full stripes and a last one of 1000 bytes
	data := randBytes(size, 1)
	shards, enc := encode(t, c, data)
	rs, err := reedsolomon.New(d, p)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]bytes.Buffer, d+p)
	digests := make([][]Digest, d+p)
	for s, off := 0, 0; off < size; s++ {
		m := min(d*B, size-off)
		bl := (m + d - 1) / d
		stripe := make([]byte, (d+p)*bl) // zero padded
		copy(stripe, data[off:off+m])
		blocks := make([][]byte, d+p)
		for i := range blocks {
			blocks[i] = stripe[i*bl : (i+1)*bl]
		}
		if err := rs.Encode(blocks); err != nil {
			t.Fatal(err)
		}
		for i, b := range blocks {
			sum := blake3.Sum256(b)
			want[i].Write(sum[:])
			want[i].Write(b)
			digests[i] = append(digests[i], sum)
		}
		off += m
	}
	for i := range shards {
		if !bytes.Equal(shards[i], want[i].Bytes()) {
			t.Errorf("shard %d: %d bytes differ from the reference framing (%d bytes)", i, len(shards[i]), want[i].Len())
		}
		h := blake3.New()
		for _, dg := range digests[i] {
			h.Write(dg[:])
		}
		var root Digest
		h.Sum(root[:0])
		if enc.Roots[i] != root || RootOf(digests[i]) != root {
			t.Errorf("shard %d: root %s, RootOf %s, want %s", i, enc.Roots[i], RootOf(digests[i]), root)
		}
	}
	if last := shards[0][len(shards[0])-(32+334):]; !bytes.Equal(last[32:], data[2*d*B:2*d*B+334]) {
		t.Errorf("shard 0: last block does not start the last stripe")
	}
}

func TestRoundTrip(t *testing.T) {
	configs := []struct{ d, p int }{{4, 2}, {8, 3}, {1, 0}, {3, 0}, {1, 1}, {16, 8}}
	for _, cf := range configs {
		B := testBlock
		c := mustNew(t, cf.d, cf.p, B)
		sb := cf.d * B
		sizes := []int{0, 1, B - 1, B, B + 1, sb - 1, sb, sb + 1, 3*sb + 7}
		for _, size := range sizes {
			t.Run(fmt.Sprintf("%dx%d/%d", cf.d, cf.p, size), func(t *testing.T) {
				data := randBytes(size, uint64(size))
				shards, enc := encode(t, c, data)
				l := c.Layout(int64(size))
				for i, s := range shards {
					if int64(len(s)) != l.ShardSize() {
						t.Errorf("shard %d: %d bytes, want ShardSize %d", i, len(s), l.ShardSize())
					}
					if err := VerifyShard(bytes.NewReader(s), l, i, enc.Roots[i]); err != nil {
						t.Errorf("VerifyShard(%d): %v", i, err)
					}
				}
				got, rep, err := decode(t, c, spanReaders(l, shards, 0, int64(size)), int64(size), 0, int64(size))
				if err != nil || len(rep.Failed) != 0 {
					t.Fatalf("Decode: %v, report %q", err, failures(rep))
				}
				if !bytes.Equal(got, data) {
					t.Fatalf("Decode: %d bytes differ from the %d put in", len(got), len(data))
				}
			})
		}
	}
}

// genReader streams n deterministic bytes without holding them: a random
// 1 MiB pattern stamped with the chunk number, in chunks that do not line up
// with stripes.
type genReader struct {
	pattern []byte
	chunk   uint64
	off     int // offset in the current chunk
	left    int64
}

const genChunk = 1<<20 - 13

func newGenReader(n int64) *genReader {
	return &genReader{pattern: randBytes(genChunk, 42), left: n}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if g.off == 0 {
		binary.LittleEndian.PutUint64(g.pattern, g.chunk)
	}
	n := copy(p, g.pattern[g.off:])
	n = int(min(int64(n), g.left))
	g.left -= int64(n)
	if g.off += n; g.off == len(g.pattern) {
		g.off = 0
		g.chunk++
	}
	return n, nil
}

// TestRoundTripLarge streams 256 MiB through Encode and a concurrent
// degraded Decode over pipes, so neither the object nor its shards are ever
// held in memory, and compares digests of what went in and came out.
func TestRoundTripLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 256 MiB through encode and decode; skipped in -short mode to save time")
	}
	const size = 256 << 20
	c, err := New(4, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Shard 1 is lost, parity 4 stands in; Encode and Decode visit shards
	// 0, 2, 3, 4 in the same order, so unbuffered pipes suffice.
	const lost = 1
	used := []int{0, 2, 3, 4}
	ws := make([]io.Writer, 6)
	rs := make([]io.Reader, 6)
	pws := make([]*io.PipeWriter, 0, len(used))
	for _, i := range used {
		pr, pw := io.Pipe()
		ws[i], rs[i] = pw, pr
		pws = append(pws, pw)
	}
	in, out := blake3.New(), blake3.New()
	type result struct {
		rep Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := c.Decode(out, rs, size, 0, size)
		for _, r := range rs {
			if pr, ok := r.(*io.PipeReader); ok {
				pr.CloseWithError(errors.New("decode finished"))
			}
		}
		done <- result{rep, err}
	}()
	enc, err := c.Encode(io.TeeReader(newGenReader(size), in), ws)
	for _, pw := range pws {
		pw.Close()
	}
	res := <-done
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	for i, err := range enc.ShardErr {
		if err != nil {
			t.Errorf("Encode: shard %d: %v", i, err)
		}
	}
	if res.err != nil {
		t.Fatalf("Decode: %v", res.err)
	}
	if got, want := failures(res.rep), fmt.Sprintf("%d/0:shard missing", lost); got != want {
		t.Errorf("Decode report %q, want %q", got, want)
	}
	if enc.Size != size {
		t.Errorf("Encode: Size %d, want %d", enc.Size, size)
	}
	if !bytes.Equal(in.Sum(nil), out.Sum(nil)) {
		t.Errorf("decoded stream differs from the encoded one")
	}
}

// failWriter accepts n bytes, then fails every write, counting the attempts.
type failWriter struct {
	n     int
	calls int
	bytes.Buffer
}

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n < len(p) {
		w.calls++
		return 0, errBoom
	}
	w.n -= len(p)
	return w.Buffer.Write(p)
}

func TestEncodeWriterErrors(t *testing.T) {
	const d, p, B = 4, 2, testBlock
	c := mustNew(t, d, p, B)
	data := randBytes(3*d*B+100, 7)
	want, wantEnc := encode(t, c, data)
	frame := DigestSize + B

	bufs := make([]*bytes.Buffer, d+p)
	ws := make([]io.Writer, d+p)
	for i := range ws {
		bufs[i] = new(bytes.Buffer)
		ws[i] = bufs[i]
	}
	fw1 := &failWriter{n: frame + 10} // fails inside stripe 1's digest
	fw4 := &failWriter{n: 0}          // fails at once
	ws[1], ws[4] = fw1, fw4
	ws[5] = nil // computed, not written
	enc, err := c.Encode(bytes.NewReader(data), ws)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	for i, e := range enc.ShardErr {
		var se *ShardError
		switch i {
		case 1, 4:
			wantBlock := map[int]int{1: 1, 4: 0}[i]
			if !errors.As(e, &se) || se.Shard != i || se.Block != wantBlock || !errors.Is(e, errBoom) {
				t.Errorf("ShardErr[%d] = %v, want *ShardError{%d, %d, boom}", i, e, i, wantBlock)
			}
		default:
			if e != nil {
				t.Errorf("ShardErr[%d] = %v, want nil", i, e)
			}
		}
	}
	if fw1.calls != 1 || fw4.calls != 1 {
		t.Errorf("failed writers written again: %d and %d calls after failure", fw1.calls, fw4.calls)
	}
	if !bytes.Equal(fw1.Bytes(), want[1][:frame]) {
		t.Errorf("shard 1: wrote %d bytes, want its first frame", fw1.Len())
	}
	for _, i := range []int{0, 2, 3} {
		if !bytes.Equal(bufs[i].Bytes(), want[i]) {
			t.Errorf("shard %d differs", i)
		}
	}
	for i := range wantEnc.Roots {
		if enc.Roots[i] != wantEnc.Roots[i] {
			t.Errorf("root %d = %s, want %s", i, enc.Roots[i], wantEnc.Roots[i])
		}
	}
}

// dataThen returns data, then err.
type dataThen struct {
	r   io.Reader
	err error
}

func (d dataThen) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err == io.EOF {
		err = d.err
	}
	return n, err
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestEncodeReaders(t *testing.T) {
	const d, p, B = 4, 2, testBlock
	c := mustNew(t, d, p, B)
	data := randBytes(2*d*B+555, 3)
	want, wantEnc := encode(t, c, data)

	good := []struct {
		name string
		r    io.Reader
	}{
		{"OneByteReader", iotest.OneByteReader(bytes.NewReader(data))},
		{"DataErrReader", iotest.DataErrReader(bytes.NewReader(data))},
		{"HalfReader", iotest.HalfReader(bytes.NewReader(data))},
	}
	for _, tt := range good {
		bufs := make([]bytes.Buffer, d+p)
		ws := make([]io.Writer, d+p)
		for i := range ws {
			ws[i] = &bufs[i]
		}
		enc, err := c.Encode(tt.r, ws)
		if err != nil {
			t.Fatalf("%s: Encode: %v", tt.name, err)
		}
		if enc.Size != int64(len(data)) {
			t.Errorf("%s: Size %d, want %d", tt.name, enc.Size, len(data))
		}
		for i := range bufs {
			if !bytes.Equal(bufs[i].Bytes(), want[i]) || enc.Roots[i] != wantEnc.Roots[i] {
				t.Errorf("%s: shard %d differs from a plain read", tt.name, i)
			}
		}
	}

	bad := []struct {
		name string
		r    io.Reader
		want error
	}{
		{"ErrReader", iotest.ErrReader(errBoom), errBoom},
		{"error mid-stream", dataThen{bytes.NewReader(data[:d*B+10]), errBoom}, errBoom},
		{"ErrUnexpectedEOF", dataThen{bytes.NewReader(data[:100]), io.ErrUnexpectedEOF}, io.ErrUnexpectedEOF},
		{"TimeoutReader", iotest.TimeoutReader(bytes.NewReader(data)), iotest.ErrTimeout},
		{"no progress", zeroReader{}, io.ErrNoProgress},
	}
	for _, tt := range bad {
		enc, err := c.Encode(tt.r, make([]io.Writer, d+p))
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: Encode error %v, want %v", tt.name, err, tt.want)
		}
		if enc.Roots != nil || enc.ShardErr != nil || enc.Size != 0 {
			t.Errorf("%s: Encoded %+v, want zero on error", tt.name, enc)
		}
	}

	if _, err := c.Encode(bytes.NewReader(data), make([]io.Writer, d+p-1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode with %d writers: %v, want ErrInvalid", d+p-1, err)
	}
}

// TestEncodeEmpty: an empty object has empty shards whose roots are the
// root of no digests.
func TestEncodeEmpty(t *testing.T) {
	c := mustNew(t, 4, 2, testBlock)
	shards, enc := encode(t, c, nil)
	for i, s := range shards {
		if len(s) != 0 || enc.Roots[i] != RootOf(nil) {
			t.Errorf("shard %d: %d bytes, root %s; want empty, %s", i, len(s), enc.Roots[i], RootOf(nil))
		}
	}
	if want := Digest(blake3.Sum256(nil)); RootOf(nil) != want {
		t.Errorf("RootOf(nil) = %s, want blake3 of nothing %s", RootOf(nil), want)
	}
}

// TestConcurrent runs encodes and decodes on one Codec at once.
func TestConcurrent(t *testing.T) {
	c := mustNew(t, 4, 2, testBlock)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			data := randBytes(5*4*testBlock+g, uint64(g))
			shards, _ := encode(t, c, data)
			l := c.Layout(int64(len(data)))
			got, _, err := decode(t, c, spanReaders(l, shards, 0, int64(len(data)), g%4, 4+g%2), l.Size, 0, l.Size)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("goroutine %d: Decode: %v, equal %v", g, err, bytes.Equal(got, data))
			}
		})
	}
	wg.Wait()
}

// TestStripeAllocs checks that allocation does not grow with the number of
// stripes. Per-call allocations vary a little, hence the averaging over 64
// extra stripes. Under -race sync.Pool drops items at random, which makes
// the count meaningless: make test runs it again without -race.
func TestStripeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race; make test runs this test again without it")
	}
	for _, tt := range []struct {
		d, p int
		max  float64 // allocations per stripe
	}{
		{4, 0, 0.25},
		{4, 2, 1.25}, // reedsolomon's Encode allocates one small table per call
	} {
		c := mustNew(t, tt.d, tt.p, testBlock)
		ws := make([]io.Writer, tt.d+tt.p)
		for i := range ws {
			ws[i] = io.Discard
		}
		allocs := func(stripes int) float64 {
			data := randBytes(stripes*tt.d*testBlock, 1)
			r := bytes.NewReader(data)
			return testing.AllocsPerRun(20, func() {
				r.Reset(data)
				if _, err := c.Encode(r, ws); err != nil {
					t.Fatal(err)
				}
			})
		}
		one, many := allocs(1), allocs(65)
		if perStripe := (many - one) / 64; perStripe > tt.max {
			t.Errorf("%dx%d: Encode allocates %.2f times per stripe (1 stripe: %.0f, 65: %.0f), want <= %.2f", tt.d, tt.p, perStripe, one, many, tt.max)
		}
	}
}
