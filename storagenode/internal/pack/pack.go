// Package pack stores mid-size shards back to back in append-only pack
// files, so that concurrent stages share one fsync and no stage creates,
// renames or syncs a file or directory of its own.
//
// A pack store owns the files in its directory and nothing else. Which
// bytes are live is the caller's business (its index records a Loc only
// after Append returned it, that is after the bytes are durable); pack
// never decides that a location is garbage, and only removes a whole pack
// when told to, once nothing can still be writing to it. It knows nothing
// of shards, frames or checksums: readers verify what they read.
package pack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/kintsugi-store/kintsugi/storagenode/internal/flush"
)

// Loc is where Append put some bytes.
type Loc struct {
	Pack uint32
	Off  int64
	Len  int64
}

// Info describes a pack file.
type Info struct {
	ID     uint32
	Size   int64 // bytes appended so far (or the file's size, for packs of an earlier run)
	Active bool  // still taking appends
}

// ErrBusy is returned by Remove for a pack that may still be written.
var ErrBusy = errors.New("pack is active or has appends in flight")

const ext = ".pack"

// Store is a directory of pack files. It is safe for concurrent use.
type Store struct {
	dir     string
	maxSize int64

	mu     sync.Mutex
	files  map[uint32]*file
	active *file // nil: none yet, after a failed rotation
	nextID uint32
	closed bool

	// fsync fsyncs a pack file or the directory; see SetSync.
	fsync func(*os.File) error
}

// SetSync makes the store fsync its files and directory with fn instead
// of (*os.File).Sync, so that the caller learns of every failed fsync (a
// node stops after one) and tests can inject them. REQUIRES: no call of
// the store is in progress.
func (s *Store) SetSync(fn func(*os.File) error) { s.fsync = fn }

func (s *Store) syncFile(f *os.File) error {
	if s.fsync != nil {
		return s.fsync(f)
	}
	return f.Sync()
}

type file struct {
	id      uint32
	f       *os.File
	size    int64 // guarded by Store.mu
	pending int   // appends in flight; guarded by Store.mu
	flushes flush.Group
}

// Open opens the pack store in dir, creating it if needed, and starts a
// new pack for appends: packs of an earlier run are only read, so a torn
// tail a crash left is never appended to. A pack grows to about maxSize
// bytes before the next one starts.
func Open(dir string, maxSize int64) (*Store, error) {
	if maxSize <= 0 {
		return nil, fmt.Errorf("pack: size limit %d", maxSize)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &Store{dir: dir, maxSize: maxSize, files: make(map[uint32]*file)}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		id, ok := parseName(e.Name())
		if !ok {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			s.Close()
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			s.Close()
			return nil, err
		}
		s.files[id] = &file{id: id, f: f, size: fi.Size()}
		s.nextID = max(s.nextID, id+1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rotateLocked(); err != nil {
		s.closeLocked()
		return nil, err
	}
	return s, nil
}

func name(id uint32) string { return fmt.Sprintf("%08d%s", id, ext) }

func parseName(n string) (uint32, bool) {
	digits, ok := strings.CutSuffix(n, ext)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseUint(digits, 10, 32)
	return uint32(id), err == nil
}

// rotateLocked starts a new active pack. The new file's directory entry is
// made durable before anything is appended to it: a Loc must never outlive
// its file in a crash. REQUIRES: s.mu.
func (s *Store) rotateLocked() error {
	// Every attempt takes a new id: a failed one may have left its file.
	id := s.nextID
	s.nextID++
	f, err := os.OpenFile(filepath.Join(s.dir, name(id)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := s.syncDir(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	a := &file{id: id, f: f}
	s.files[id] = a
	s.active = a
	return nil
}

// Append writes data to the active pack and returns once it is durable,
// with its location. Concurrent appends share their fsyncs. The caller
// must call done once it has recorded the location (or given up on it):
// until then the pack cannot be removed.
func (s *Store) Append(data []byte) (loc Loc, done func(), err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Loc{}, nil, errors.New("pack: store closed")
	}
	if a := s.active; a == nil || a.size > 0 && a.size+int64(len(data)) > s.maxSize {
		if err := s.rotateLocked(); err != nil {
			s.mu.Unlock()
			return Loc{}, nil, err
		}
	}
	a := s.active
	off := a.size
	a.size += int64(len(data))
	a.pending++
	s.mu.Unlock()
	done = func() {
		s.mu.Lock()
		a.pending--
		s.mu.Unlock()
	}
	// Disjoint ranges: concurrent appenders write in parallel, then one
	// fsync that starts after all their writes covers them all.
	if _, err = a.f.WriteAt(data, off); err == nil {
		err = a.flushes.Do(func() error { return s.syncFile(a.f) })
	}
	if err != nil {
		done()
		s.retire(a)
		return Loc{}, nil, err
	}
	return Loc{Pack: a.id, Off: off, Len: int64(len(data))}, done, nil
}

// retire stops appending to a after a failed write or fsync: after a
// failed fsync the kernel may have dropped dirty pages, so nothing
// appended to that file later could be trusted either. The next append
// starts a new pack (and fails while none can be created, on a full disk
// say).
func (s *Store) retire(a *file) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == a {
		s.active = nil
	}
}

// Reader returns the bytes at loc. The pack stays readable through the
// returned reader even if it is removed meanwhile. A pack that is gone is
// fs.ErrNotExist.
func (s *Store) Reader(loc Loc) (*io.SectionReader, error) {
	s.mu.Lock()
	f := s.files[loc.Pack]
	s.mu.Unlock()
	if f == nil {
		return nil, fmt.Errorf("pack %d: %w", loc.Pack, fs.ErrNotExist)
	}
	return io.NewSectionReader(f.f, loc.Off, loc.Len), nil
}

// Open opens the bytes at loc with a file descriptor of their own, which
// a server can hand to sendfile (see Range.File); the caller closes it.
// A pack that is gone is fs.ErrNotExist.
func (s *Store) Open(loc Loc) (*Range, error) {
	s.mu.Lock()
	_, ok := s.files[loc.Pack]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("pack %d: %w", loc.Pack, fs.ErrNotExist)
	}
	f, err := os.Open(filepath.Join(s.dir, name(loc.Pack)))
	if err != nil {
		return nil, err
	}
	return &Range{SectionReader: io.NewSectionReader(f, loc.Off, loc.Len), f: f, off: loc.Off}, nil
}

// Range is an opened Loc.
type Range struct {
	*io.SectionReader
	f   *os.File
	off int64
}

// File returns the open pack file and the offset of the range in it.
// Reading the file directly moves its own offset only.
func (r *Range) File() (*os.File, int64) { return r.f, r.off }

// Close closes the range's file.
func (r *Range) Close() error { return r.f.Close() }

// Packs describes every pack, by id.
func (s *Store) Packs() []Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Info, 0, len(s.files))
	for _, f := range s.files {
		out = append(out, Info{ID: f.id, Size: f.size, Active: f == s.active || f.pending > 0})
	}
	slices.SortFunc(out, func(a, b Info) int { return int(a.ID) - int(b.ID) })
	return out
}

// Remove deletes pack id. It refuses (ErrBusy) while the pack is active
// or an append to it has not called done; readers already open keep
// reading it.
func (s *Store) Remove(id uint32) error {
	s.mu.Lock()
	f := s.files[id]
	if f == nil {
		s.mu.Unlock()
		return nil
	}
	if f == s.active || f.pending > 0 {
		s.mu.Unlock()
		return ErrBusy
	}
	delete(s.files, id)
	s.mu.Unlock()
	// The descriptor is left to its finalizer: a reader may still hold it.
	if err := os.Remove(f.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return s.syncDir()
}

// Close closes every pack file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeLocked()
}

func (s *Store) closeLocked() error {
	s.closed = true
	var errs []error
	for _, f := range s.files {
		errs = append(errs, f.f.Close())
	}
	s.files = map[uint32]*file{}
	s.active = nil
	return errors.Join(errs...)
}

func (s *Store) syncDir() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	err = s.syncFile(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// locSize is the length of an encoded Loc.
const locSize = 4 + 8 + 8

// AppendLoc appends the binary form of l to b.
func AppendLoc(b []byte, l Loc) []byte {
	b = binary.BigEndian.AppendUint32(b, l.Pack)
	b = binary.BigEndian.AppendUint64(b, uint64(l.Off))
	return binary.BigEndian.AppendUint64(b, uint64(l.Len))
}

// ParseLoc decodes what AppendLoc wrote.
func ParseLoc(b []byte) (Loc, error) {
	if len(b) != locSize {
		return Loc{}, fmt.Errorf("pack: location of %d bytes, want %d", len(b), locSize)
	}
	l := Loc{
		Pack: binary.BigEndian.Uint32(b),
		Off:  int64(binary.BigEndian.Uint64(b[4:])),
		Len:  int64(binary.BigEndian.Uint64(b[12:])),
	}
	if l.Off < 0 || l.Len < 0 || l.Off+l.Len < l.Off {
		return Loc{}, fmt.Errorf("pack: bad location %+v", l)
	}
	return l, nil
}
