package codec

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestVerifyShard(t *testing.T) {
	c := mustNew(t, 4, 2, testBlock)
	size := int64(2*4*testBlock + 300) // last blocks are 75 bytes
	shards, enc := encode(t, c, randBytes(int(size), 41))
	l := c.Layout(size)
	for i := range shards {
		if err := VerifyShard(bytes.NewReader(shards[i]), l, i, enc.Roots[i]); err != nil {
			t.Errorf("shard %d: VerifyShard = %v, want nil", i, err)
		}
	}
	s := shards[5]
	tests := []struct {
		name  string
		data  []byte
		root  Digest
		block int
		want  error
	}{
		{"flipped digest bit", flip(shards, 5, 3)[5], enc.Roots[5], 0, ErrCorrupt},
		{"flipped block bit", flip(shards, 5, l.FrameOffset(1)+DigestSize+testBlock-1)[5], enc.Roots[5], 1, ErrCorrupt},
		{"flipped last block", flip(shards, 5, l.FrameOffset(2)+DigestSize)[5], enc.Roots[5], 2, ErrCorrupt},
		{"empty", nil, enc.Roots[5], 0, ErrShortShard},
		{"cut in digest", s[:l.FrameOffset(1)+31], enc.Roots[5], 1, ErrShortShard},
		{"cut after digest", s[:l.FrameOffset(1)+32], enc.Roots[5], 1, ErrShortShard},
		{"cut in last block", s[:len(s)-1], enc.Roots[5], 2, ErrShortShard},
		{"trailing byte", append(slices.Clone(s), 0), enc.Roots[5], 3, ErrCorrupt},
		{"wrong root", s, enc.Roots[4], -1, ErrCorrupt},
		{"another shard", shards[4], enc.Roots[5], -1, ErrCorrupt},
	}
	for _, tt := range tests {
		err := VerifyShard(bytes.NewReader(tt.data), l, 5, tt.root)
		var se *ShardError
		if !errors.As(err, &se) || se.Shard != 5 || se.Block != tt.block || !errors.Is(err, tt.want) {
			t.Errorf("%s: VerifyShard = %v, want *ShardError{5, %d, %v}", tt.name, err, tt.block, tt.want)
		}
	}
	if err := VerifyShard(&errAfter{bytes.NewReader(s[:100]), errBoom}, l, 5, enc.Roots[5]); !errors.Is(err, errBoom) {
		t.Errorf("read error: VerifyShard = %v, want boom", err)
	}
	if err := VerifyShard(bytes.NewReader(nil), Layout{Data: 4, Parity: 2, BlockSize: testBlock}, 0, RootOf(nil)); err != nil {
		t.Errorf("empty object: VerifyShard = %v, want nil", err)
	}
	if err := VerifyShard(bytes.NewReader(s), l, 6, enc.Roots[5]); !errors.Is(err, ErrInvalid) {
		t.Errorf("shard 6 of 6: VerifyShard = %v, want ErrInvalid", err)
	}
	if err := VerifyShard(bytes.NewReader(s), Layout{Data: 4, Parity: 2, BlockSize: 1}, 0, enc.Roots[5]); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad layout: VerifyShard = %v, want ErrInvalid", err)
	}
}

func TestFramedRoot(t *testing.T) {
	c := mustNew(t, 4, 2, testBlock)
	size := int64(2*4*testBlock + 300)
	shards, enc := encode(t, c, randBytes(int(size), 42))
	l := c.Layout(size)
	for i, s := range shards {
		if got, err := FramedRoot(s, l); err != nil || got != enc.Roots[i] {
			t.Errorf("shard %d: FramedRoot = %v, %v; want %v", i, got, err, enc.Roots[i])
		}
	}
	// Another version's shard passes every block check but not the root.
	other, _ := encode(t, c, randBytes(int(size), 43))
	if got, err := FramedRoot(other[2], l); err != nil || got == enc.Roots[2] {
		t.Errorf("another version's shard: FramedRoot = %v, %v; want a different root", got, err)
	}
	for _, b := range [][]byte{nil, shards[0][:len(shards[0])-1], append(slices.Clone(shards[0]), 0)} {
		if _, err := FramedRoot(b, l); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%d bytes: FramedRoot err = %v, want ErrCorrupt", len(b), err)
		}
	}
	if got, err := FramedRoot(nil, c.Layout(0)); err != nil || got != RootOf(nil) {
		t.Errorf("empty object: FramedRoot = %v, %v; want the empty root", got, err)
	}
}

// readFrames drains a FrameReader, returning its blocks and final error.
func readFrames(f *FrameReader) ([][]byte, []Digest, error) {
	var blocks [][]byte
	var digests []Digest
	for {
		b, d, err := f.Next()
		if err != nil {
			return blocks, digests, err
		}
		blocks = append(blocks, slices.Clone(b))
		digests = append(digests, d)
	}
}

func TestFrameReader(t *testing.T) {
	c := mustNew(t, 3, 1, testBlock)
	for _, size := range []int{0, 1, 3 * testBlock, 3*testBlock + 1, 7*3*testBlock + 2000, 16 * 3 * testBlock, 40*3*testBlock + 5} {
		data := randBytes(size, 43)
		shards, enc := encode(t, c, data)
		l := c.Layout(int64(size))
		for i, s := range shards {
			f := NewFrameReader(bytes.NewReader(s), testBlock)
			blocks, digests, err := readFrames(f)
			if err != io.EOF {
				t.Fatalf("size %d shard %d: Next = %v, want io.EOF", size, i, err)
			}
			if len(blocks) != l.Stripes() {
				t.Fatalf("size %d shard %d: %d blocks, want %d", size, i, len(blocks), l.Stripes())
			}
			for k, b := range blocks {
				off := l.FrameOffset(k) + DigestSize
				if !bytes.Equal(b, s[off:off+int64(l.BlockLen(k))]) {
					t.Errorf("size %d shard %d: block %d differs", size, i, k)
				}
			}
			if f.Root() != enc.Roots[i] || RootOf(digests) != enc.Roots[i] {
				t.Errorf("size %d shard %d: Root %s, RootOf %s, want %s", size, i, f.Root(), RootOf(digests), enc.Roots[i])
			}
			if _, _, err := f.Next(); err != io.EOF {
				t.Errorf("size %d shard %d: Next after end = %v, want io.EOF", size, i, err)
			}
		}
	}

	size := 3*3*testBlock + 10 // last blocks are 4 bytes
	shards, _ := encode(t, c, randBytes(size, 47))
	l := c.Layout(int64(size))
	s := shards[0]
	tests := []struct {
		name  string
		r     io.Reader
		good  int // blocks returned before the error
		want  error
		block int
	}{
		{"flipped block 1", bytes.NewReader(flip(shards, 0, l.FrameOffset(1)+DigestSize+9)[0]), 1, ErrCorrupt, 1},
		{"flipped last digest", bytes.NewReader(flip(shards, 0, l.FrameOffset(3))[0]), 3, ErrCorrupt, 3},
		{"cut in digest", bytes.NewReader(s[:l.FrameOffset(2)+5]), 2, ErrShortShard, 2},
		{"digest without block", bytes.NewReader(s[:l.FrameOffset(3)+DigestSize]), 3, ErrShortShard, 3},
		// A cut block looks like a short last block, and fails its digest.
		{"cut in block", bytes.NewReader(s[:l.FrameOffset(1)+DigestSize+100]), 1, ErrCorrupt, 1},
		{"read error", &errAfter{bytes.NewReader(s[:l.FrameOffset(2)]), errBoom}, 2, errBoom, 2},
	}
	for _, tt := range tests {
		f := NewFrameReader(tt.r, testBlock)
		blocks, digests, err := readFrames(f)
		var se *ShardError
		if len(blocks) != tt.good || !errors.As(err, &se) || se.Shard != -1 || se.Block != tt.block || !errors.Is(err, tt.want) {
			t.Errorf("%s: %d blocks then %v; want %d then *ShardError{-1, %d, %v}", tt.name, len(blocks), err, tt.good, tt.block, tt.want)
		}
		if _, _, again := f.Next(); again != err {
			t.Errorf("%s: Next after error = %v, want the same %v", tt.name, again, err)
		}
		if f.Root() != RootOf(digests) {
			t.Errorf("%s: Root %s does not cover the %d good blocks", tt.name, f.Root(), len(digests))
		}
	}

	for _, bs := range []int{0, -1, MaxBlockSize + 1} {
		if _, _, err := NewFrameReader(bytes.NewReader(s), bs).Next(); !errors.Is(err, ErrInvalid) {
			t.Errorf("block size %d: Next = %v, want ErrInvalid", bs, err)
		}
	}
}

func TestDigest(t *testing.T) {
	d := RootOf([]Digest{{1}, {2}})
	s := d.String()
	if len(s) != 64 || strings.ToLower(s) != s {
		t.Fatalf("String = %q, want 64 lower-case hex digits", s)
	}
	got, err := ParseDigest(s)
	if err != nil || got != d {
		t.Errorf("ParseDigest(%q) = %s, %v; want %s", s, got, err, d)
	}
	if got, err := ParseDigest(strings.ToUpper(s)); err != nil || got != d {
		t.Errorf("ParseDigest(upper) = %s, %v; want %s", got, err, d)
	}
	const zero = "0000000000000000000000000000000000000000000000000000000000000000"
	if (Digest{}).String() != zero {
		t.Errorf("zero digest String = %q", (Digest{}).String())
	}
	for _, bad := range []string{"", s[:62], s + "00", "g" + s[1:]} {
		if _, err := ParseDigest(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseDigest(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestFrameReaderSetBuffer(t *testing.T) {
	c := mustNew(t, 3, 1, testBlock)
	size := 3*3*testBlock + 10
	shards, enc := encode(t, c, randBytes(size, 53))
	for _, tt := range []struct {
		name    string
		buf     []byte
		aliased bool
	}{
		{"larger buffer", make([]byte, 2*testBlock), true},
		{"exact buffer", make([]byte, testBlock), true},
		{"short buffer ignored", make([]byte, testBlock-1), false},
	} {
		f := NewFrameReader(bytes.NewReader(shards[1]), testBlock)
		f.SetBuffer(tt.buf)
		var n int
		for {
			b, _, err := f.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: Next = %v", tt.name, err)
			}
			if len(b) > testBlock {
				t.Fatalf("%s: block of %d bytes, want at most %d", tt.name, len(b), testBlock)
			}
			if got := &b[0] == &tt.buf[0]; got != tt.aliased {
				t.Errorf("%s: block aliases buf = %v, want %v", tt.name, got, tt.aliased)
			}
			n++
		}
		if n != c.Layout(int64(size)).Stripes() || f.Root() != enc.Roots[1] {
			t.Errorf("%s: %d blocks, root %s; want %d, %s", tt.name, n, f.Root(), c.Layout(int64(size)).Stripes(), enc.Roots[1])
		}
	}
}
