package objects

import "io"

// A write whose body is kept can run again when nodes fail it or refuse
// it for a stale map (putKept). Bodies of up to one stripe are always
// kept; longer ones are recorded as they stream, within MaxKeptBody and
// Config.KeptBodies. A body beyond either bound is streamed once, and
// such a write is refused when nodes fail it.

// replay records a body as it is read, so that a write can read it again
// from its first byte: a second reader is served what the first read,
// then goes on reading the body. Readers take turns; they never read at
// once.
type replay struct {
	r   io.Reader
	buf *[]byte // what was read of r, from the Store's body pool
	err error   // r's last error, returned once the recorded bytes are
	// size is what the body counts against the Store's bound.
	size int64
}

// reader returns a reader of the body from its start.
func (b *replay) reader() io.Reader { return &replayReader{b: b} }

type replayReader struct {
	b   *replay
	off int
}

func (rr *replayReader) Read(p []byte) (int, error) {
	b := rr.b
	if rr.off < len(*b.buf) {
		n := copy(p, (*b.buf)[rr.off:])
		rr.off += n
		return n, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	*b.buf = append(*b.buf, p[:n]...)
	rr.off += n
	b.err = err
	return n, err
}

// keep returns a replay of body, size bytes long, if the bounds on kept
// bodies allow one.
func (s *Store) keep(body io.Reader, size int64) (*replay, bool) {
	if size > MaxKeptBody || s.keptMax == 0 {
		return nil, false
	}
	if size > s.keptMax || s.kept.Add(size) > s.keptMax {
		if size <= s.keptMax {
			s.kept.Add(-size)
		}
		// The budget, not the body, said no: an operator who sees this
		// often may give the gateway more (objects.Config.KeptBodies).
		s.metrics.bodyNotKept()
		return nil, false
	}
	buf := s.bodies.get(int(size))
	*buf = (*buf)[:0]
	return &replay{r: body, buf: buf, size: size}, true
}

// release gives b's buffer and budget back: no reader of b may run.
func (s *Store) release(b *replay) {
	s.kept.Add(-b.size)
	s.bodies.put(b.buf)
}
