package bench

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/zeebo/blake3"
)

// whole returns all of o's content through ReadAt in one call.
func whole(t *testing.T, o Object) []byte {
	t.Helper()
	p := make([]byte, o.Size())
	if n, err := o.ReadAt(p, 0); n != len(p) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt whole: %d, %v", n, err)
	}
	return p
}

func TestContentGolden(t *testing.T) {
	// The content is part of the tool's interface: objects written by one
	// build must verify with the next. Changing the generator breaks that;
	// if it must change, change these digests knowingly.
	for _, c := range []struct {
		seed uint64
		key  string
		size int64
		head string // first 16 bytes, hex
		sum  string // blake3-256 of the content, hex prefix
	}{
		{1, "bench/obj-0-65536", 65536, "92f0ecbee4ca12f1a31c5ee85e72adf5", "7622bae7803b74c9"},
		{1, "bench/obj-1-65536", 65536, "f9f3bafc046bdbc0080152b775a5b967", "a8cd2f9d0a8b1c2a"},
		{2, "bench/obj-0-65536", 65536, "facfc815b1d9c1a39f0e7e273bb3e5ee", "11cef04a68b7396f"},
		{1, "bench/obj-7-3000001", 3000001, "3a10be9d0d225edfc11c6a5e85090ca3", "81e4c68f0a733fc4"},
	} {
		p := whole(t, NewSource(c.seed).Object(c.key, c.size))
		sum := blake3.Sum256(p)
		head, s := hex.EncodeToString(p[:16]), hex.EncodeToString(sum[:8])
		if head != c.head || s != c.sum {
			t.Errorf("seed %d %s: head %s sum %s; want %s %s", c.seed, c.key, head, s, c.head, c.sum)
		}
	}
}

func TestContentDeterministicAndDistinct(t *testing.T) {
	const size = 3<<20 + 5 // beyond the pool, odd length
	a := whole(t, NewSource(1).Object("k", size))
	if b := whole(t, NewSource(1).Object("k", size)); !bytes.Equal(a, b) {
		t.Fatal("same seed, key and size gave different content")
	}
	for name, o := range map[string]Object{
		"seed": NewSource(2).Object("k", size),
		"key":  NewSource(1).Object("k2", size),
		"size": NewSource(1).Object("k", size+1),
	} {
		b := whole(t, o)
		same := 0
		for i := 0; i+4096 <= len(a); i += 4096 {
			if bytes.Equal(a[i:i+4096], b[i:i+4096]) {
				same++
			}
		}
		if same > 0 {
			t.Errorf("another %s: %d identical 4 KiB blocks", name, same)
		}
	}
	// No 4 KiB block repeats inside an object, even past the pool size.
	seen := map[string]int{}
	for i := 0; i+4096 <= len(a); i += 4096 {
		k := string(a[i : i+4096])
		if j, ok := seen[k]; ok {
			t.Fatalf("block at %d repeats block at %d", i, j)
		}
		seen[k] = i
	}
}

func TestContentReadAt(t *testing.T) {
	o := NewSource(9).Object("bench/obj-3-100003", 100003)
	all := whole(t, o)
	// Every alignment of start and length agrees with the whole.
	for _, off := range []int64{0, 1, 7, 8, 9, 4095, 4096, 4097, 99990, 100002} {
		for _, n := range []int{0, 1, 3, 8, 13, 4096, 5000} {
			p := make([]byte, n)
			got, err := o.ReadAt(p, off)
			want := min(int64(n), o.Size()-off)
			if int64(got) != want {
				t.Fatalf("ReadAt(%d bytes, %d) = %d, want %d", n, off, got, want)
			}
			if (int64(n) > want) != (err == io.EOF) || (err != nil && err != io.EOF) {
				t.Fatalf("ReadAt(%d bytes, %d): err %v", n, off, err)
			}
			if !bytes.Equal(p[:got], all[off:off+int64(got)]) {
				t.Fatalf("ReadAt(%d bytes, %d) differs from the whole", n, off)
			}
		}
	}
	if n, err := o.ReadAt(make([]byte, 1), o.Size()); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at end = %d, %v", n, err)
	}
	if _, err := o.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("ReadAt at -1: no error")
	}
	// The reader streams the same bytes in small reads and seeks back.
	r := o.Reader()
	got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(r, 1000)))
	if err != nil || !bytes.Equal(got, all[:1000]) {
		t.Fatalf("OneByteReader: %v", err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, all) {
		t.Fatalf("ReadAll after Seek: %d bytes, %v", len(got), err)
	}
}

func TestContentVerify(t *testing.T) {
	src := NewSource(4)
	const size = 200000
	o := src.Object("key", size)
	all := whole(t, o)
	flip := func(i int) []byte {
		b := bytes.Clone(all)
		b[i] ^= 0x40
		return b
	}
	errRead := errors.New("connection reset")
	for _, c := range []struct {
		name    string
		body    io.Reader
		n       int64
		wantErr error
		offset  int64
		got     int64
	}{
		{"exact", bytes.NewReader(all), size, nil, 0, 0},
		{"one byte reads", iotest.OneByteReader(bytes.NewReader(all)), size, nil, 0, 0},
		{"flipped first byte", bytes.NewReader(flip(0)), verifyChunk, ErrMismatch, 0, -1},
		{"flipped in second chunk", bytes.NewReader(flip(verifyChunk + 77)), 2 * verifyChunk, ErrMismatch, verifyChunk + 77, -1},
		{"flipped last byte", bytes.NewReader(flip(size - 1)), size, ErrMismatch, size - 1, -1},
		{"short", bytes.NewReader(all[:size-10]), size - 10, ErrMismatch, size - 10, size - 10},
		{"empty", strings.NewReader(""), 0, ErrMismatch, 0, 0},
		{"long", io.MultiReader(bytes.NewReader(all), strings.NewReader("extra")), size + 5, ErrMismatch, size, size + 5},
		{"other seed", bytes.NewReader(whole(t, NewSource(5).Object("key", size))), verifyChunk, ErrMismatch, -1, -1},
		{"read error", io.MultiReader(bytes.NewReader(all[:1000]), iotest.ErrReader(errRead)), 1000, errRead, 0, 0},
	} {
		n, err := o.Verify(c.body)
		if !errors.Is(err, c.wantErr) || n != c.n {
			t.Errorf("%s: Verify = %d, %v; want %d, %v", c.name, n, err, c.n, c.wantErr)
			continue
		}
		var me *MismatchError
		if errors.As(err, &me) {
			if (c.offset >= 0 && me.Offset != c.offset) || me.Got != c.got || me.Size != size || me.Key != "key" {
				t.Errorf("%s: %+v, want offset %d got %d", c.name, me, c.offset, c.got)
			}
		}
	}
	// A zero-length object verifies against an empty body only.
	empty := src.Object("empty", 0)
	if n, err := empty.Verify(strings.NewReader("")); n != 0 || err != nil {
		t.Errorf("empty object: %d, %v", n, err)
	}
	if _, err := empty.Verify(strings.NewReader("x")); !errors.Is(err, ErrMismatch) {
		t.Errorf("empty object, 1-byte body: %v", err)
	}
}

func BenchmarkContentFill(b *testing.B) {
	o := NewSource(1).Object("k", 1<<20)
	p := make([]byte, 1<<20)
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	for b.Loop() {
		o.fill(p, 0)
	}
}

func BenchmarkContentVerify(b *testing.B) {
	o := NewSource(1).Object("k", 1<<20)
	p := make([]byte, 1<<20)
	o.fill(p, 0)
	r := bytes.NewReader(p)
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(p)
		if _, err := o.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}
