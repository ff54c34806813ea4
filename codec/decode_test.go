package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
)

// combos returns every subset of [0, n) with at most k elements.
func combos(n, k int) [][]int {
	out := [][]int{nil}
	var rec func(start int, cur []int)
	rec = func(start int, cur []int) {
		if len(cur) == k {
			return
		}
		for i := start; i < n; i++ {
			next := append(slices.Clone(cur), i)
			out = append(out, next)
			rec(i+1, next)
		}
	}
	rec(0, nil)
	return out
}

// wantMissing is the report of a full decode with the given shards nil: the
// missing data shards, and each missing parity shard tried before enough
// present ones were found.
func wantMissing(d, p int, missing []int) string {
	var parts []string
	need := 0
	for _, i := range missing {
		if i < d {
			parts = append(parts, fmt.Sprintf("%d/0:shard missing", i))
			need++
		}
	}
	for i := d; i < d+p && need > 0; i++ {
		if slices.Contains(missing, i) {
			parts = append(parts, fmt.Sprintf("%d/0:shard missing", i))
		} else {
			need--
		}
	}
	return joinParts(parts)
}

func joinParts(parts []string) string {
	var b bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p)
	}
	return b.String()
}

func TestDecodeMissing(t *testing.T) {
	for _, cf := range []struct{ d, p int }{{4, 2}, {8, 3}} {
		c := mustNew(t, cf.d, cf.p, testBlock)
		size := 3*cf.d*testBlock + 1234
		data := randBytes(size, uint64(cf.d))
		shards, _ := encode(t, c, data)
		l := c.Layout(int64(size))
		sets := combos(cf.d+cf.p, cf.p)
		for _, missing := range sets {
			rs := spanReaders(l, shards, 0, l.Size, missing...)
			got, rep, err := decode(t, c, rs, l.Size, 0, l.Size)
			if err != nil {
				t.Fatalf("%dx%d missing %v: Decode: %v", cf.d, cf.p, missing, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("%dx%d missing %v: wrong bytes", cf.d, cf.p, missing)
			}
			if got, want := failures(rep), wantMissing(cf.d, cf.p, missing); got != want {
				t.Errorf("%dx%d missing %v: report %q, want %q", cf.d, cf.p, missing, got, want)
			}
		}
		if want := map[int]int{4: 22, 8: 232}[cf.d]; len(sets) != want {
			t.Errorf("%dx%d: %d combinations tried, want %d", cf.d, cf.p, len(sets), want)
		}
	}
}

// flip returns a copy of shards with one bit flipped at byte off of shard i.
func flip(shards [][]byte, i int, off int64) [][]byte {
	out := slices.Clone(shards)
	out[i] = slices.Clone(shards[i])
	out[i][off] ^= 0x10
	return out
}

func TestDecodeCorrupt(t *testing.T) {
	for _, cf := range []struct{ d, p int }{{4, 2}, {8, 3}} {
		c := mustNew(t, cf.d, cf.p, testBlock)
		size := 3*cf.d*testBlock + 1234 // the last stripe's blocks are 155 or 309 bytes
		data := randBytes(size, 11)
		shards, _ := encode(t, c, data)
		l := c.Layout(int64(size))
		last := l.Stripes() - 1
		for i := range cf.d + cf.p {
			for _, s := range []int{0, 1, last} {
				// A bit in the digest, at the start, middle and end of the block.
				bl := int64(l.BlockLen(s))
				for _, at := range []int64{5, DigestSize, DigestSize + bl/2, DigestSize + bl - 1} {
					bad := flip(shards, i, l.FrameOffset(s)+at)
					got, rep, err := decode(t, c, spanReaders(l, bad, 0, l.Size), l.Size, 0, l.Size)
					if err != nil || !bytes.Equal(got, data) {
						t.Fatalf("%dx%d shard %d stripe %d byte %d: Decode: %v, bytes equal %v", cf.d, cf.p, i, s, at, err, bytes.Equal(got, data))
					}
					want := ""
					// Parity is never read on the healthy path, nor is a
					// data block of the last stripe that holds only padding.
					if i < cf.d && i*l.BlockLen(s) < l.StripeLen(s) {
						want = fmt.Sprintf("%d/%d:block digest mismatch", i, s)
					}
					if got := failures(rep); got != want {
						t.Errorf("%dx%d shard %d stripe %d byte %d: report %q, want %q", cf.d, cf.p, i, s, at, got, want)
					}
				}
			}
		}
	}
}

// TestDecodeMixed combines nil shards with corrupt blocks, p failures in all.
func TestDecodeMixed(t *testing.T) {
	c := mustNew(t, 4, 2, testBlock)
	size := 5*4*testBlock + 77
	data := randBytes(size, 5)
	shards, _ := encode(t, c, data)
	l := c.Layout(int64(size))
	frame := func(s int) int64 { return l.FrameOffset(s) + DigestSize + 100 }
	tests := []struct {
		name    string
		missing []int
		corrupt map[int]int // shard -> stripe
		want    string
	}{
		{"data missing, parity corrupt", []int{0}, map[int]int{4: 2}, "0/0:shard missing 4/2:block digest mismatch"},
		{"two data corrupt late", nil, map[int]int{1: 3, 3: 4}, "1/3:block digest mismatch 3/4:block digest mismatch"},
		{"parity missing, data corrupt", []int{4}, map[int]int{2: 1}, "2/1:block digest mismatch 4/1:shard missing"},
		{"data corrupt twice", nil, map[int]int{0: 0}, "0/0:block digest mismatch"},
	}
	for _, tt := range tests {
		bad := shards
		for i, s := range tt.corrupt {
			bad = flip(bad, i, frame(s))
		}
		got, rep, err := decode(t, c, spanReaders(l, bad, 0, l.Size, tt.missing...), l.Size, 0, l.Size)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: Decode: %v, bytes equal %v", tt.name, err, bytes.Equal(got, data))
		}
		if got := failures(rep); got != tt.want {
			t.Errorf("%s: report %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDecodeRanges(t *testing.T) {
	for _, cf := range []struct{ d, p int }{{4, 2}, {8, 3}} {
		c := mustNew(t, cf.d, cf.p, testBlock)
		sb := int64(cf.d * testBlock)
		size := 4*sb + 999
		data := randBytes(int(size), 13)
		shards, _ := encode(t, c, data)
		l := c.Layout(size)
		type rng struct{ off, length int64 }
		ranges := []rng{
			{0, 1}, {size - 1, 1}, {0, size}, {sb - 1, 2}, {sb, sb}, {sb - 1, sb + 2},
			{4 * sb, 999}, {4*sb - 1, 1}, {4*sb - 5, 10}, {testBlock - 1, 2}, {1, size - 2},
		}
		rnd := rand.New(rand.NewPCG(uint64(cf.d), 1))
		for range 40 {
			off := rnd.Int64N(size)
			ranges = append(ranges, rng{off, 1 + rnd.Int64N(size-off)})
		}
		missingSets := [][]int{nil, {0}, {cf.d - 1, cf.d}, {1, cf.d + cf.p - 1}}
		if cf.p == 3 {
			missingSets = append(missingSets, []int{0, 2, 7})
		}
		for _, r := range ranges {
			for _, missing := range missingSets {
				got, rep, err := decode(t, c, spanReaders(l, shards, r.off, r.length, missing...), size, r.off, r.length)
				if err != nil {
					t.Fatalf("%dx%d range %+v missing %v: %v", cf.d, cf.p, r, missing, err)
				}
				if !bytes.Equal(got, data[r.off:r.off+r.length]) {
					t.Fatalf("%dx%d range %+v missing %v: wrong bytes", cf.d, cf.p, r, missing)
				}
				for _, f := range rep.Failed {
					if !slices.Contains(missing, f.Shard) || !errors.Is(f, ErrMissing) {
						t.Errorf("%dx%d range %+v missing %v: reported %v", cf.d, cf.p, r, missing, f)
					}
				}
			}
		}
	}
}

// recordSeeker records the Seek calls made on it.
type recordSeeker struct {
	*bytes.Reader
	seeks []int64
}

func (r *recordSeeker) Seek(off int64, whence int) (int64, error) {
	if whence != io.SeekCurrent {
		return 0, fmt.Errorf("whence %d", whence)
	}
	r.seeks = append(r.seeks, off)
	return r.Reader.Seek(off, whence)
}

// TestDecodeAdvance: a parity shard first needed at stripe 2 is advanced by
// two frames, by Seek when it can, else by reading.
func TestDecodeAdvance(t *testing.T) {
	c := mustNew(t, 4, 2, testBlock)
	size := int64(4*4*testBlock + 10)
	data := randBytes(int(size), 17)
	shards, _ := encode(t, c, data)
	l := c.Layout(size)
	bad := flip(shards, 1, l.FrameOffset(2)+DigestSize)

	seeker := &recordSeeker{Reader: bytes.NewReader(bad[4])}
	counted := &countReader{r: bytes.NewReader(bad[5])}
	rs := []io.Reader{bytes.NewReader(bad[0]), bytes.NewReader(bad[1]), bytes.NewReader(bad[2]), bytes.NewReader(bad[3]), seeker, counted}
	got, rep, err := decode(t, c, rs, size, 0, size)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Decode: %v, bytes equal %v", err, bytes.Equal(got, data))
	}
	if want := []int64{2 * (DigestSize + testBlock)}; !slices.Equal(seeker.seeks, want) {
		t.Errorf("parity 4 seeks %v, want %v", seeker.seeks, want)
	}
	if counted.n != 0 {
		t.Errorf("parity 5 read %d bytes, want 0", counted.n)
	}
	if got, want := failures(rep), "1/2:block digest mismatch"; got != want {
		t.Errorf("report %q, want %q", got, want)
	}

	// The same with parity 4 lost: parity 5 cannot seek and is read forward.
	rs = []io.Reader{bytes.NewReader(bad[0]), bytes.NewReader(bad[1]), bytes.NewReader(bad[2]), bytes.NewReader(bad[3]), nil, counted}
	got, rep, err = decode(t, c, rs, size, 0, size)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Decode: %v, bytes equal %v", err, bytes.Equal(got, data))
	}
	if counted.n != l.ShardSize() {
		t.Errorf("parity 5 read %d bytes, want all %d", counted.n, l.ShardSize())
	}
	if got, want := failures(rep), "1/2:block digest mismatch 4/2:shard missing"; got != want {
		t.Errorf("report %q, want %q", got, want)
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestDecodeTooFew(t *testing.T) {
	c := mustNew(t, 4, 2, testBlock)
	sb := 4 * testBlock
	size := int64(3*sb + 5)
	data := randBytes(int(size), 19)
	shards, _ := encode(t, c, data)
	l := c.Layout(size)

	_, rep, err := decode(t, c, spanReaders(l, shards, 0, size, 0, 4, 5), size, 0, size)
	if !errors.Is(err, ErrTooFewShards) {
		t.Fatalf("3 missing: Decode error %v, want ErrTooFewShards", err)
	}
	if got, want := failures(rep), "0/0:shard missing 4/0:shard missing 5/0:shard missing"; got != want {
		t.Errorf("3 missing: report %q, want %q", got, want)
	}

	// Three blocks of stripe 1 rot: stripe 0 is served, then the error.
	bad := flip(flip(flip(shards, 0, l.FrameOffset(1)+40), 2, l.FrameOffset(1)+40), 4, l.FrameOffset(1)+40)
	got, rep, err := decode(t, c, spanReaders(l, bad, 0, size), size, 0, size)
	if !errors.Is(err, ErrTooFewShards) {
		t.Fatalf("3 corrupt: Decode error %v, want ErrTooFewShards", err)
	}
	if !bytes.Equal(got, data[:sb]) {
		t.Errorf("3 corrupt: wrote %d bytes, want exactly stripe 0 (%d bytes)", len(got), sb)
	}
	if got, want := failures(rep), "0/1:block digest mismatch 2/1:block digest mismatch 4/1:block digest mismatch"; got != want {
		t.Errorf("3 corrupt: report %q, want %q", got, want)
	}

	// p == 0: any loss is fatal.
	c0 := mustNew(t, 3, 0, testBlock)
	shards0, _ := encode(t, c0, data)
	_, _, err = decode(t, c0, spanReaders(c0.Layout(size), shards0, 0, size, 1), size, 0, size)
	if !errors.Is(err, ErrTooFewShards) {
		t.Errorf("3+0, one missing: Decode error %v, want ErrTooFewShards", err)
	}
}

// errAfter yields r's bytes and then err instead of io.EOF.
type errAfter struct {
	r   io.Reader
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

func TestDecodeShortAndErrors(t *testing.T) {
	c := mustNew(t, 4, 2, testBlock)
	size := int64(3*4*testBlock + 100)
	data := randBytes(int(size), 23)
	shards, _ := encode(t, c, data)
	l := c.Layout(size)
	tests := []struct {
		name  string
		shard int
		r     io.Reader
		want  string
	}{
		{"cut in stripe 1 digest", 0, bytes.NewReader(shards[0][:l.FrameOffset(1)+10]), "0/1:shard stream ended early"},
		{"cut in stripe 2 block", 3, bytes.NewReader(shards[3][:l.FrameOffset(2)+DigestSize+7]), "3/2:shard stream ended early"},
		{"empty", 1, bytes.NewReader(nil), "1/0:shard stream ended early"},
		{"read error", 2, &errAfter{bytes.NewReader(shards[2][:l.FrameOffset(1)+5]), errBoom}, "2/1:boom"},
		{"reader ErrUnexpectedEOF", 2, &errAfter{bytes.NewReader(shards[2][:l.FrameOffset(1)+5]), io.ErrUnexpectedEOF}, "2/1:shard stream ended early"},
		{"trailing bytes ignored", 0, bytes.NewReader(append(slices.Clone(shards[0]), 1, 2, 3)), ""},
	}
	for _, tt := range tests {
		rs := spanReaders(l, shards, 0, size)
		rs[tt.shard] = tt.r
		got, rep, err := decode(t, c, rs, size, 0, size)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: Decode: %v, bytes equal %v", tt.name, err, bytes.Equal(got, data))
		}
		if got := failures(rep); got != tt.want {
			t.Errorf("%s: report %q, want %q", tt.name, got, tt.want)
		}
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.n++
	if w.n == 2 {
		return 0, errBoom
	}
	return len(p), nil
}

func TestDecodeArgs(t *testing.T) {
	c := mustNew(t, 4, 2, testBlock)
	size := int64(2*4*testBlock + 1)
	data := randBytes(int(size), 29)
	shards, _ := encode(t, c, data)
	l := c.Layout(size)

	bad := []struct{ size, off, length int64 }{
		{-1, 0, 0}, {size, -1, 1}, {size, 0, -1}, {size, 0, size + 1}, {size, size, 1}, {size, 1, size},
	}
	for _, a := range bad {
		if _, _, err := decode(t, c, make([]io.Reader, 6), a.size, a.off, a.length); !errors.Is(err, ErrInvalid) {
			t.Errorf("Decode(size %d, off %d, len %d) = %v, want ErrInvalid", a.size, a.off, a.length, err)
		}
	}
	if _, _, err := decode(t, c, make([]io.Reader, 5), size, 0, 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("Decode with 5 readers = %v, want ErrInvalid", err)
	}
	for _, off := range []int64{0, 7, size} {
		got, rep, err := decode(t, c, make([]io.Reader, 6), size, off, 0)
		if err != nil || len(got) != 0 || len(rep.Failed) != 0 {
			t.Errorf("Decode(off %d, len 0) = %q, %v, %v; want nothing", off, got, rep, err)
		}
	}
	fw := &failingWriter{}
	if _, err := c.Decode(fw, spanReaders(l, shards, 0, size), size, 0, size); !errors.Is(err, errBoom) {
		t.Errorf("Decode to failing writer = %v, want boom", err)
	}
	if fw.n != 2 {
		t.Errorf("Decode wrote %d times to a failed writer, want 2", fw.n)
	}
}

func TestRebuild(t *testing.T) {
	for _, cf := range []struct{ d, p int }{{4, 2}, {8, 3}} {
		c := mustNew(t, cf.d, cf.p, testBlock)
		n := cf.d + cf.p
		for _, size := range []int{0, 1, 3*cf.d*testBlock + 321} {
			data := randBytes(size, uint64(size))
			shards, enc := encode(t, c, data)
			for _, lost := range combos(n, cf.p)[1:] {
				dst := make([]io.Writer, n)
				src := make([]io.Reader, n)
				bufs := make([]bytes.Buffer, n)
				for i := range n {
					if slices.Contains(lost, i) {
						dst[i] = &bufs[i]
					} else {
						src[i] = bytes.NewReader(shards[i])
					}
				}
				roots, rep, err := c.Rebuild(dst, src, int64(size))
				if err != nil {
					t.Fatalf("%dx%d size %d lost %v: Rebuild: %v", cf.d, cf.p, size, lost, err)
				}
				// Sources are taken in shard order until d are good.
				var want []string
				for i, good := 0, 0; i < n && good < cf.d && size > 0; i++ {
					if slices.Contains(lost, i) {
						want = append(want, fmt.Sprintf("%d/0:shard missing", i))
					} else {
						good++
					}
				}
				if got := failures(rep); got != joinParts(want) {
					t.Errorf("%dx%d size %d lost %v: report %q, want %q", cf.d, cf.p, size, lost, got, joinParts(want))
				}
				for i := range n {
					if !slices.Contains(lost, i) {
						if roots[i] != (Digest{}) {
							t.Errorf("lost %v: root %d = %s, want zero", lost, i, roots[i])
						}
						continue
					}
					if !bytes.Equal(bufs[i].Bytes(), shards[i]) {
						t.Fatalf("%dx%d size %d lost %v: shard %d rebuilt differently", cf.d, cf.p, size, lost, i)
					}
					if roots[i] != enc.Roots[i] {
						t.Errorf("lost %v: root %d = %s, want %s", lost, i, roots[i], enc.Roots[i])
					}
				}
			}
		}
	}
}

func TestRebuildBadSources(t *testing.T) {
	c := mustNew(t, 4, 2, testBlock)
	size := int64(3*4*testBlock + 50)
	shards, enc := encode(t, c, randBytes(int(size), 31))
	l := c.Layout(size)
	bad := flip(shards, 1, l.FrameOffset(1)+DigestSize+3)

	// Shard 5 lost, shard 1 rotten at stripe 1: parity 4 stands in from there.
	dst := make([]io.Writer, 6)
	var out bytes.Buffer
	dst[5] = &out
	src := []io.Reader{bytes.NewReader(bad[0]), bytes.NewReader(bad[1]), bytes.NewReader(bad[2]), bytes.NewReader(bad[3]), bytes.NewReader(bad[4]), nil}
	roots, rep, err := c.Rebuild(dst, src, size)
	if err != nil || !bytes.Equal(out.Bytes(), shards[5]) || roots[5] != enc.Roots[5] {
		t.Fatalf("Rebuild: %v, bytes equal %v, root %s want %s", err, bytes.Equal(out.Bytes(), shards[5]), roots[5], enc.Roots[5])
	}
	if got, want := failures(rep), "1/1:block digest mismatch"; got != want {
		t.Errorf("report %q, want %q", got, want)
	}

	// And parity 4 also missing: too few from stripe 1 on.
	src[4] = nil
	for i := range 4 {
		src[i] = bytes.NewReader(bad[i])
	}
	_, rep, err = c.Rebuild(dst, src, size)
	if !errors.Is(err, ErrTooFewShards) {
		t.Fatalf("Rebuild with 3 good sources: %v, want ErrTooFewShards", err)
	}
	if got, want := failures(rep), "1/1:block digest mismatch 4/1:shard missing 5/1:shard missing"; got != want {
		t.Errorf("report %q, want %q", got, want)
	}

	// A failing destination stops the rebuild and is named.
	for i := range 4 {
		src[i] = bytes.NewReader(shards[i])
	}
	dst[4] = &failWriter{n: DigestSize + testBlock}
	_, _, err = c.Rebuild(dst, src, size)
	var se *ShardError
	if !errors.As(err, &se) || se.Shard != 4 || se.Block != 1 || !errors.Is(err, errBoom) {
		t.Errorf("Rebuild to failing writer: %v, want *ShardError{4, 1, boom}", err)
	}

	if _, _, err := c.Rebuild(make([]io.Writer, 6), make([]io.Reader, 5), size); !errors.Is(err, ErrInvalid) {
		t.Errorf("Rebuild with 5 sources: %v, want ErrInvalid", err)
	}
	if _, _, err := c.Rebuild(make([]io.Writer, 6), make([]io.Reader, 6), -1); !errors.Is(err, ErrInvalid) {
		t.Errorf("Rebuild of size -1: %v, want ErrInvalid", err)
	}
}

// TestRebuildNoParity: with p == 0 a shard can only be re-framed from its
// own intact copy.
func TestRebuildNoParity(t *testing.T) {
	c := mustNew(t, 2, 0, testBlock)
	size := int64(5*testBlock + 3)
	shards, enc := encode(t, c, randBytes(int(size), 37))
	var out bytes.Buffer
	roots, _, err := c.Rebuild([]io.Writer{nil, &out}, []io.Reader{bytes.NewReader(shards[0]), bytes.NewReader(shards[1])}, size)
	if err != nil || !bytes.Equal(out.Bytes(), shards[1]) || roots[1] != enc.Roots[1] {
		t.Errorf("Rebuild: %v, bytes equal %v", err, bytes.Equal(out.Bytes(), shards[1]))
	}
	_, _, err = c.Rebuild([]io.Writer{nil, &out}, []io.Reader{bytes.NewReader(shards[0]), nil}, size)
	if !errors.Is(err, ErrTooFewShards) {
		t.Errorf("Rebuild without the shard: %v, want ErrTooFewShards", err)
	}
}
