// Package throttle limits background I/O (scrubbing, rebuilds) to a byte
// rate so that it never starves client traffic. It is a thin io.Reader
// wrapper around golang.org/x/time/rate's token bucket.
//
// It imports no other package of the project.
package throttle

import (
	"context"
	"io"

	"golang.org/x/time/rate"
)

// Chunk is the largest read a throttled reader passes through at once, so
// that one big read cannot overdraw the bucket by much.
const Chunk = 64 << 10

// T limits a byte rate. A nil *T never waits.
type T struct {
	l *rate.Limiter
}

// New returns a throttle of bytesPerSec, or nil (no limit) for bytesPerSec <= 0.
func New(bytesPerSec int64) *T {
	if bytesPerSec <= 0 {
		return nil
	}
	// A burst of a quarter second's budget (at least one chunk) smooths the
	// rate without letting an idle spell turn into a spike.
	burst := max(int(bytesPerSec/4), Chunk)
	return &T{l: rate.NewLimiter(rate.Limit(bytesPerSec), burst)}
}

// Wait takes n bytes from the budget, sleeping as long as needed, or returns
// ctx's error. Requests larger than the burst are taken in burst-sized
// pieces, so any n is allowed.
func (t *T) Wait(ctx context.Context, n int) error {
	if t == nil {
		return ctx.Err()
	}
	for n > 0 {
		k := min(n, t.l.Burst())
		if err := t.l.WaitN(ctx, k); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		n -= k
	}
	return nil
}

// Reader returns r read through t.
func (t *T) Reader(ctx context.Context, r io.Reader) io.Reader {
	if t == nil {
		return r
	}
	return &reader{ctx: ctx, t: t, r: r}
}

type reader struct {
	ctx context.Context
	t   *T
	r   io.Reader
}

func (tr *reader) Read(p []byte) (int, error) {
	if len(p) > Chunk {
		p = p[:Chunk]
	}
	n, err := tr.r.Read(p)
	if n > 0 {
		if werr := tr.t.Wait(tr.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}
