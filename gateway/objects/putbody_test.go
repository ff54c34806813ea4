package objects

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// TestSmallBodiesReuseBuffers writes bodies of at most one stripe, large
// then small, so that each reuses a pooled buffer a larger body dirtied:
// every version reads back exactly, with its own ETag.
func TestSmallBodiesReuseBuffers(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	stripe := 4 * testBlock
	for i, n := range []int{stripe, stripe - 1, 3*testBlock + 5, 4097, 4096, 4095, 100, 1, 0} {
		for round := range 2 {
			key := fmt.Sprintf("k%d", i)
			data := payload(n, byte(i+round*50))
			info := c.put(key, data)
			sum := md5.Sum(data)
			if info.ETag != hex.EncodeToString(sum[:]) || info.Size != int64(n) {
				t.Fatalf("%d bytes: ETag %s size %d, want %x %d", n, info.ETag, info.Size, sum, n)
			}
			c.mustGet(key, data)
		}
	}
}

// TestSmallBodyErrors: a small body is still refused when it runs past or
// falls short of its declared size, and a read error after the declared
// bytes still fails the PUT.
func TestSmallBodyErrors(t *testing.T) {
	data := payload(3*testBlock, 7)
	boom := errors.New("connection reset")
	tests := []struct {
		name string
		in   PutInput
		want error
		kind kerr.Kind
	}{
		{"one byte long", PutInput{Size: int64(len(data)) - 1, Body: bytes.NewReader(data)}, ErrInvalidArgument, kerr.Invalid},
		{"one byte long, a byte at a time", PutInput{Size: 9, Body: iotest.OneByteReader(bytes.NewReader(data[:10]))}, ErrInvalidArgument, kerr.Invalid},
		{"empty declared, one byte sent", PutInput{Size: 0, Body: bytes.NewReader(data[:1])}, ErrInvalidArgument, kerr.Invalid},
		{"short", PutInput{Size: int64(len(data)) + 1, Body: bytes.NewReader(data)}, ErrIncompleteBody, kerr.Invalid},
		{"error after the declared bytes", PutInput{Size: int64(len(data)), Body: io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom))}, boom, kerr.Transient},
		{"error midway", PutInput{Size: int64(len(data)), Body: io.MultiReader(bytes.NewReader(data[:100]), iotest.ErrReader(boom))}, boom, kerr.Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t, 6, 4, 2)
			tt.in.Bucket, tt.in.Key = testBucket, "k"
			_, err := c.s.PutObject(context.Background(), tt.in)
			wantErr(t, err, tt.want, tt.kind)
			c.assertNothing("k")
		})
	}
}

func TestBodyPoolClasses(t *testing.T) {
	var p bodyPool
	for _, c := range []struct{ n, cap int }{{0, 4096}, {1, 4096}, {4096, 4096}, {4097, 8192}, {1 << 20, 1 << 20}, {1<<20 + 1, 2 << 20}} {
		b := p.get(c.n)
		if len(*b) != c.n || cap(*b) != c.cap {
			t.Errorf("get(%d): len %d cap %d, want cap %d", c.n, len(*b), cap(*b), c.cap)
		}
		p.put(b)
	}
	odd := make([]byte, 5000)
	p.put(&odd) // not a class's capacity: dropped, never handed out short
	if b := p.get(5000); cap(*b) != 8192 {
		t.Errorf("get(5000) after putting a 5000-byte buffer: cap %d, want 8192", cap(*b))
	}
}
