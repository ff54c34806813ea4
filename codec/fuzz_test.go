package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/zeebo/blake3"
)

// frameStream frames data in blocks of bs bytes, the last one shorter.
func frameStream(data []byte, bs int) ([]byte, [][]byte, []Digest) {
	var out bytes.Buffer
	var blocks [][]byte
	var digests []Digest
	for off := 0; off < len(data); off += bs {
		b := data[off:min(off+bs, len(data))]
		d := Digest(blake3.Sum256(b))
		out.Write(d[:])
		out.Write(b)
		blocks = append(blocks, b)
		digests = append(digests, d)
	}
	return out.Bytes(), blocks, digests
}

func FuzzFrameReader(f *testing.F) {
	good, _, _ := frameStream([]byte("hello, frames: a few blocks of text"), 8)
	f.Add([]byte{}, uint8(7))
	f.Add([]byte("not a frame stream at all"), uint8(3))
	f.Add(good, uint8(7))
	f.Add(good[:len(good)-1], uint8(7))
	f.Add(good[:40], uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, bs8 uint8) {
		bs := int(bs8%64) + 1

		// Arbitrary bytes: never panic, every block returned verifies, the
		// stream ends in an error.
		fr := NewFrameReader(bytes.NewReader(data), bs)
		var err error
		for range len(data)/(DigestSize+1) + 2 {
			var b []byte
			var d Digest
			b, d, err = fr.Next()
			if err != nil {
				break
			}
			if len(b) == 0 || len(b) > bs || Digest(blake3.Sum256(b)) != d {
				t.Fatalf("Next returned an unverified block of %d bytes", len(b))
			}
		}
		if err == nil {
			t.Fatalf("no error after %d bytes", len(data))
		}
		var se *ShardError
		if err != io.EOF && !(errors.As(err, &se) && (errors.Is(err, ErrCorrupt) || errors.Is(err, ErrShortShard))) {
			t.Fatalf("Next = %v, want io.EOF, ErrCorrupt or ErrShortShard", err)
		}

		// A good stream round-trips.
		stream, blocks, digests := frameStream(data, bs)
		fr = NewFrameReader(bytes.NewReader(stream), bs)
		got, gotDigests, err := readFrames(fr)
		if err != io.EOF || len(got) != len(blocks) {
			t.Fatalf("good stream: %d blocks then %v, want %d then io.EOF", len(got), err, len(blocks))
		}
		for i := range got {
			if !bytes.Equal(got[i], blocks[i]) || gotDigests[i] != digests[i] {
				t.Fatalf("good stream: block %d differs", i)
			}
		}
		if fr.Root() != RootOf(digests) {
			t.Fatalf("good stream: Root %s, want %s", fr.Root(), RootOf(digests))
		}
	})
}

// FuzzDecode corrupts encoded shards (bit flips and truncations) and checks
// that Decode never yields wrong bytes: what it writes is always a prefix of
// the requested range, all of it when it reports no error, and it does
// succeed when at most p shards were touched.
func FuzzDecode(f *testing.F) {
	const d, p = 4, 2
	c := mustNew(f, d, p, testBlock)
	f.Add(uint16(0), uint64(1), []byte{}, uint16(0), uint16(0))
	f.Add(uint16(100), uint64(2), []byte{0, 0, 5, 1}, uint16(3), uint16(50))
	f.Add(uint16(40000), uint64(3), []byte{1, 0x40, 0, 0x80, 4, 0x10, 0x20, 0}, uint16(100), uint16(30000))
	f.Add(uint16(65535), uint64(4), []byte{0, 1, 2, 3, 1, 1, 2, 3, 2, 1, 2, 3}, uint16(16380), uint16(20))
	f.Add(uint16(20000), uint64(5), []byte{5, 0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 9}, uint16(0), uint16(20000))
	f.Fuzz(func(t *testing.T, size16 uint16, seed uint64, ops []byte, off16, len16 uint16) {
		size := int64(size16)
		data := randBytes(int(size), seed)
		shards, _ := encode(t, c, data)
		touched := map[int]bool{}
		for k := 0; k+4 <= len(ops) && k < 4*8; k += 4 {
			i := int(ops[k]) % (d + p)
			if len(shards[i]) == 0 {
				continue
			}
			pos := int(binary.LittleEndian.Uint16(ops[k+1:])) % len(shards[i])
			s := bytes.Clone(shards[i])
			if x := ops[k+3]; x == 0 {
				s = s[:pos] // truncate
			} else {
				s[pos] ^= x
			}
			shards[i] = s
			touched[i] = true
		}
		off := int64(off16) % (size + 1)
		length := int64(len16) % (size - off + 1)
		l := c.Layout(size)
		rs := make([]io.Reader, d+p)
		if length > 0 {
			sp := l.Span(off, length)
			for i, s := range shards {
				lo := min(sp.ShardOff, int64(len(s)))
				hi := min(sp.ShardOff+sp.ShardLen, int64(len(s)))
				rs[i] = bytes.NewReader(s[lo:hi])
			}
		}
		var out bytes.Buffer
		_, err := c.Decode(&out, rs, size, off, length)
		want := data[off : off+length]
		if !bytes.HasPrefix(want, out.Bytes()) {
			t.Fatalf("Decode wrote %d bytes that are not a prefix of the range (err %v)", out.Len(), err)
		}
		if err == nil && out.Len() != len(want) {
			t.Fatalf("Decode wrote %d of %d bytes and no error", out.Len(), len(want))
		}
		if len(touched) <= p && err != nil {
			t.Fatalf("%d shards touched, Decode: %v", len(touched), err)
		}
		if err != nil && !errors.Is(err, ErrTooFewShards) {
			t.Fatalf("Decode error %v, want ErrTooFewShards", err)
		}
	})
}
