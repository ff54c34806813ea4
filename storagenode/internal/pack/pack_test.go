package pack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func read(t *testing.T, s *Store, loc Loc) []byte {
	t.Helper()
	r, err := s.Reader(loc)
	if err != nil {
		t.Fatalf("Reader(%+v): %v", loc, err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAppendConcurrent: concurrent appends land in disjoint ranges and
// read back exact, across rotations, and after a reopen.
func TestAppendConcurrent(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	const n = 64
	locs := make([]Loc, n)
	data := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		data[i] = bytes.Repeat([]byte{byte(i)}, 700+i)
		wg.Go(func() {
			loc, done, err := s.Append(data[i])
			if err != nil {
				t.Error(err)
				return
			}
			done()
			locs[i] = loc
		})
	}
	wg.Wait()
	packs := map[uint32]bool{}
	for i, loc := range locs {
		if !bytes.Equal(read(t, s, loc), data[i]) {
			t.Fatalf("append %d at %+v reads back different bytes", i, loc)
		}
		packs[loc.Pack] = true
	}
	if len(packs) < 4 {
		t.Errorf("%d packs for ~45 KB at a 10 KB limit, want rotation", len(packs))
	}
	for _, in := range s.Packs() {
		if in.Size > 10_000+800 {
			t.Errorf("pack %d grew to %d bytes", in.ID, in.Size)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, loc := range locs {
		if !bytes.Equal(read(t, s, loc), data[i]) {
			t.Fatalf("after reopen, append %d reads back different bytes", i)
		}
	}
	// A reopened store appends to a new pack, never to an old tail.
	loc, done, err := s.Append([]byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	done()
	if packs[loc.Pack] {
		t.Errorf("append after reopen went to old pack %d", loc.Pack)
	}
}

// TestRemove: the active pack and a pack with an append in flight are
// busy; a removed pack is gone for new readers but not for open ones.
func TestRemove(t *testing.T) {
	s, err := Open(t.TempDir(), 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first, done, err := s.Append(bytes.Repeat([]byte("a"), 80))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(first.Pack); !errors.Is(err, ErrBusy) {
		t.Fatalf("Remove(active) = %v, want ErrBusy", err)
	}
	// The next append rotates; the first pack still has its append in
	// flight.
	second, done2, err := s.Append(bytes.Repeat([]byte("b"), 80))
	if err != nil {
		t.Fatal(err)
	}
	done2()
	if second.Pack == first.Pack {
		t.Fatal("no rotation")
	}
	if err := s.Remove(first.Pack); !errors.Is(err, ErrBusy) {
		t.Fatalf("Remove(pending) = %v, want ErrBusy", err)
	}
	done()
	open, err := s.Reader(first)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(first.Pack); err != nil {
		t.Fatalf("Remove = %v", err)
	}
	if _, err := s.Reader(first); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Reader after Remove = %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, name(first.Pack))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file still there: %v", err)
	}
	if b, _ := io.ReadAll(open); !bytes.Equal(b, bytes.Repeat([]byte("a"), 80)) {
		t.Error("a reader opened before Remove lost its bytes")
	}
}

func TestLocRoundTrip(t *testing.T) {
	for _, l := range []Loc{{}, {Pack: 7, Off: 1 << 40, Len: 12345}, {Pack: 1<<32 - 1, Off: 0, Len: 1}} {
		got, err := ParseLoc(AppendLoc(nil, l))
		if err != nil || got != l {
			t.Errorf("round trip of %+v = %+v, %v", l, got, err)
		}
	}
	for _, b := range [][]byte{nil, make([]byte, 19), make([]byte, 21), AppendLoc(nil, Loc{Off: -1})} {
		if _, err := ParseLoc(b); err == nil {
			t.Errorf("ParseLoc(%x) = nil error", b)
		}
	}
}

func FuzzParseLoc(f *testing.F) {
	f.Add(AppendLoc(nil, Loc{Pack: 3, Off: 99, Len: 7}))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLoc(b)
		if err != nil {
			return
		}
		if l.Off < 0 || l.Len < 0 {
			t.Fatalf("accepted %+v", l)
		}
		if got := AppendLoc(nil, l); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding %+v = %x, want %x", l, got, b)
		}
	})
}

func TestParseName(t *testing.T) {
	for _, c := range []struct {
		in string
		id uint32
		ok bool
	}{
		{name(0), 0, true}, {name(42), 42, true}, {"00000001.pack.tmp", 0, false}, {"x.pack", 0, false}, {fmt.Sprint(name(3)), 3, true},
	} {
		id, ok := parseName(c.in)
		if id != c.id || ok != c.ok {
			t.Errorf("parseName(%q) = %d, %v", c.in, id, ok)
		}
	}
}

// TestOpen: an opened range reads its bytes, and its file at its offset
// holds the same bytes; a removed pack cannot be opened.
func TestOpen(t *testing.T) {
	s, err := Open(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Append([]byte("padding"))
	want := []byte("the bytes")
	loc, done, err := s.Append(want)
	if err != nil {
		t.Fatal(err)
	}
	done()
	r, err := s.Open(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, _ := io.ReadAll(r); !bytes.Equal(got, want) {
		t.Fatalf("range reads %q", got)
	}
	f, off := r.File()
	got := make([]byte, len(want))
	if _, err := f.ReadAt(got, off); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("file at offset %d holds %q, %v", off, got, err)
	}
	if _, err := s.Open(Loc{Pack: loc.Pack + 7, Len: 1}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing pack = %v", err)
	}
}

// TestAppendAfterFailure: a pack whose write failed takes no more
// appends; the next append starts a new pack, and what was appended
// before stays readable.
func TestAppendAfterFailure(t *testing.T) {
	s, err := Open(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before, done, err := s.Append([]byte("kept"))
	if err != nil {
		t.Fatal(err)
	}
	done()
	// Break the active pack's descriptor: its next write fails.
	s.mu.Lock()
	broken := s.active
	s.mu.Unlock()
	broken.f.Close()
	if _, _, err := s.Append([]byte("lost")); err == nil {
		t.Fatal("append to a broken pack succeeded")
	}
	after, done, err := s.Append([]byte("next"))
	if err != nil {
		t.Fatalf("append after a failure: %v", err)
	}
	done()
	if after.Pack == broken.id {
		t.Fatalf("append after a failure went to the broken pack %d", broken.id)
	}
	if got := read(t, s, after); string(got) != "next" {
		t.Errorf("new pack reads %q", got)
	}
	r, err := s.Open(before)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, _ := io.ReadAll(r); string(got) != "kept" {
		t.Errorf("bytes appended before the failure read %q", got)
	}
}
