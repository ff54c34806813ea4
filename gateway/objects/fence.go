package objects

import (
	"context"
	"errors"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Epoch fencing (docs/fencing.md). Every operation's node calls carry the
// epoch of the map the operation resolves placement with (a client.Fence
// in its ctx, taken before the map is read, so the epoch is never newer
// than the map used). A node holding a newer map refuses them and sends
// its map; a refused call counts as a node that did not answer, which the
// read and write rules always allow, so an old placement can make an
// operation fail but never answer wrongly. The operation's end installs
// the newest map sent, and the operations that are safe to run again do
// so, once, under it: a gateway that missed a map change answers
// correctly on the first request after it, instead of 404 for an object
// the rebalancer has moved.
//
// An Object's shard reads (WriteRange) are not fenced: they name the exact
// version resolved, nodes serve them whatever the epoch, and every block
// is checked. Parts of a multipart object are resolved as the stream
// reaches them, each in a fenced lookup of its own.

// fence returns ctx fenced at the current map's epoch and a func to call
// once the operation is over: it installs the newest map a node refused
// one of the operation's calls with, and reports whether there was one.
// Within an operation that is already fenced (one calling another), the
// outer one keeps the fence and the retry.
func (s *Store) fence(ctx context.Context) (context.Context, func() bool) {
	if client.FenceOf(ctx) != nil {
		return ctx, func() bool { return false }
	}
	f := client.NewFence(s.Map().Epoch, nil)
	return client.WithFence(ctx, f), func() bool { return s.fenceDone(f) }
}

// fenceDone installs the newest map a node refused one of f's calls with
// and reports whether there was one.
func (s *Store) fenceDone(f *client.Fence) bool {
	m := f.Newer()
	if m == nil {
		return false
	}
	if m.Epoch > s.Map().Epoch {
		s.log.Info("objects: a node refused a call under an older cluster map; installing its map",
			"epoch", m.Epoch, "previous", f.Epoch())
	}
	s.SetMap(m)
	return true
}

// fenced runs op fenced at the current map's epoch. If op fails after a
// node refused one of its calls for holding a newer map, op worked from an
// old placement: the newer map is installed and op runs once more under
// it. Only for operations that may run twice: reads, and writes that send
// no body and are idempotent or newest-wins. A write whose failure is a
// mayApplyErr is not run again.
func fenced[T any](ctx context.Context, s *Store, op func(context.Context) (T, error)) (T, error) {
	if client.FenceOf(ctx) != nil {
		return op(ctx)
	}
	fctx, done := s.fence(ctx)
	out, err := op(fctx)
	if !done() || err == nil || ctx.Err() != nil || errors.As(err, new(mayApplyErr)) {
		return out, err
	}
	s.metrics.retried(retryMapChanged)
	fctx, done = s.fence(ctx)
	out, err = op(fctx)
	done()
	return out, err
}

// mayApplyErr marks the error of a write that missed its commit quorum
// while a node may hold it committed (one did, or one's commit failed
// without a clear answer). Such a write is not run again: a reader can
// roll it forward from that node and serve it, and a later write can then
// be acknowledged over it; running it again would name it anew, above
// that later write, and bring it back (docs/ordering.md). Like any
// unacknowledged write it may or may not become visible. Only a write
// that no node can hold committed (refused everywhere, or failed before
// its commit) runs again under the new map.
type mayApplyErr struct{ error }

func (e mayApplyErr) Unwrap() error { return e.error }

// fenced0 is fenced for operations that return only an error.
func fenced0(ctx context.Context, s *Store, op func(context.Context) error) error {
	_, err := fenced(ctx, s, func(ctx context.Context) (struct{}, error) { return struct{}{}, op(ctx) })
	return err
}
