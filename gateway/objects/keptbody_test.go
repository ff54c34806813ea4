package objects

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// TestReplay: every reader of a replay reads the whole body from its
// first byte, whether the reader before it read all of it, part, or
// nothing, and a body's read error comes back to every reader after the
// bytes before it.
func TestReplay(t *testing.T) {
	body := payload(10000, 3)
	broken := errors.New("client went away")
	tests := []struct {
		name  string
		src   func() io.Reader
		first int // bytes the first reader takes before the second starts
		want  []byte
		err   error
	}{
		{"whole, then again", func() io.Reader { return bytes.NewReader(body) }, len(body), body, nil},
		{"part, then whole", func() io.Reader { return iotest.HalfReader(bytes.NewReader(body)) }, 3333, body, nil},
		{"nothing, then whole", func() io.Reader { return bytes.NewReader(body) }, 0, body, nil},
		{"a read error", func() io.Reader {
			return io.MultiReader(bytes.NewReader(body[:700]), iotest.ErrReader(broken))
		}, 5000, body[:700], broken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Store{keptMax: 1 << 20}
			rb, ok := s.keep(tc.src(), int64(len(body)))
			if !ok {
				t.Fatal("body not kept")
			}
			first, err := io.ReadAll(io.LimitReader(rb.reader(), int64(tc.first)))
			if tc.err == nil && (err != nil || !bytes.Equal(first, body[:tc.first])) {
				t.Fatalf("first reader: %d bytes, %v", len(first), err)
			}
			for round := range 2 {
				got, err := io.ReadAll(rb.reader())
				if !errors.Is(err, tc.err) || !bytes.Equal(got, tc.want) {
					t.Fatalf("reader %d: %d bytes, %v; want %d bytes, %v", round+2, len(got), err, len(tc.want), tc.err)
				}
			}
			s.release(rb)
			if got := s.kept.Load(); got != 0 {
				t.Fatalf("%d bytes still counted kept after release", got)
			}
		})
	}
}

// TestKeepBounds: a body is kept only within MaxKeptBody and the Store's
// bound on the bytes kept at once, and a released body's bytes count no
// more.
func TestKeepBounds(t *testing.T) {
	s := &Store{keptMax: 3 << 20}
	a, ok := s.keep(bytes.NewReader(nil), 2<<20)
	if !ok {
		t.Fatal("2 MiB of 3 not kept")
	}
	if _, ok := s.keep(bytes.NewReader(nil), 2<<20); ok {
		t.Fatal("kept 4 MiB at once under a 3 MiB bound")
	}
	b, ok := s.keep(bytes.NewReader(nil), 1<<20)
	if !ok {
		t.Fatal("1 MiB more not kept under the bound")
	}
	s.release(a)
	s.release(b)
	if got := s.kept.Load(); got != 0 {
		t.Fatalf("%d bytes counted after both released", got)
	}
	if _, ok := s.keep(bytes.NewReader(nil), 4<<20); ok {
		t.Fatal("kept a body above the bound alone")
	}
	big := &Store{keptMax: 1 << 40}
	if _, ok := big.keep(bytes.NewReader(nil), MaxKeptBody+1); ok {
		t.Fatal("kept a body above MaxKeptBody")
	}
	none := &Store{}
	if _, ok := none.keep(bytes.NewReader(nil), 1); ok {
		t.Fatal("a Store that keeps nothing kept a body")
	}
}
