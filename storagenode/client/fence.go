package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/kintsugi-store/kintsugi/placement"
)

// Epoch fencing (see docs/fencing.md): a call carries the cluster map
// epoch its caller resolved placement with, in HeaderMapEpoch. A node
// that holds a newer map refuses the call with 409 Conflict and an
// ErrorBody whose Map is that map, so that a caller still on an older map
// can never conclude from the old placement that an object is missing:
// it installs the map and asks again. The header is not part of the
// signature: it can only make a node refuse a call it would otherwise
// serve as it did before fencing.

// HeaderMapEpoch is the request header that carries a call's map epoch.
const HeaderMapEpoch = "X-Kintsugi-Map-Epoch"

// ErrStaleMap is matched (errors.Is) by the error of a call a node refused
// because it holds a newer cluster map than the call was made under. The
// error's kind is kerr.Conflict; errors.As with a *StaleMapError gives the
// node's map.
var ErrStaleMap = errors.New("the call's cluster map is older than the node's")

// StaleMapError is a node's refusal of a call made under an older map
// epoch than the node holds.
type StaleMapError struct {
	Epoch uint64         // the epoch the call was made under
	Map   *placement.Map // the node's map, validated
}

func (e *StaleMapError) Error() string {
	return fmt.Sprintf("%v: called under map epoch %d, node holds epoch %d", ErrStaleMap, e.Epoch, e.Map.Epoch)
}

// Is makes errors.Is(err, ErrStaleMap) true.
func (e *StaleMapError) Is(target error) bool { return target == ErrStaleMap }

// A Fence is the map epoch the calls made with a context carry (see
// WithFence), and where the newer maps nodes refuse those calls with are
// collected. One Fence spans one operation of its caller: the operation
// resolves placement with a map of epoch Epoch (or newer) and, if Newer
// is set afterwards, installs it and runs again. It is safe for
// concurrent use.
type Fence struct {
	epoch  uint64
	notify func(*placement.Map)

	mu    sync.Mutex
	newer *placement.Map
}

// NewFence returns a Fence for calls made under map epoch epoch. notify,
// if not nil, is called (on the calling goroutine) with every map a node
// refuses one of its calls with, as it arrives.
//
// REQUIRES: the caller resolves placement with a map whose epoch is at
// least epoch, or the fence lets it read through a map the nodes have
// moved past. Read the epoch before the map, never after.
func NewFence(epoch uint64, notify func(*placement.Map)) *Fence {
	return &Fence{epoch: epoch, notify: notify}
}

// Epoch returns the epoch the fenced calls carry.
func (f *Fence) Epoch() uint64 { return f.epoch }

// Newer returns the newest map a node refused a fenced call with, nil if
// none did.
func (f *Fence) Newer() *placement.Map {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.newer
}

// Refused records m, a newer map a node refused a call under f with, and
// passes it to f's notify. The Client calls it for every refusal it
// receives; a node called in process, with no Client between, calls it
// itself, so that the caller sees the same either way.
func (f *Fence) Refused(m *placement.Map) {
	f.mu.Lock()
	if f.newer == nil || m.Epoch > f.newer.Epoch {
		f.newer = m
	}
	f.mu.Unlock()
	if f.notify != nil {
		f.notify(m)
	}
}

type fenceKey struct{}

// WithFence returns a context whose node calls carry f's epoch. A call
// made with a context without a Fence carries no epoch, which nodes
// accept as they did before fencing (admin tools, older callers).
func WithFence(ctx context.Context, f *Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceOf returns the Fence of ctx, nil if none.
func FenceOf(ctx context.Context) *Fence {
	f, _ := ctx.Value(fenceKey{}).(*Fence)
	return f
}

// setEpoch puts the epoch of ctx's Fence, if any, on req.
func setEpoch(ctx context.Context, req *http.Request) {
	if f := FenceOf(ctx); f != nil && f.epoch > 0 {
		req.Header.Set(HeaderMapEpoch, strconv.FormatUint(f.epoch, 10))
	}
}

// ParseEpoch parses a HeaderMapEpoch value; "" is 0 (no epoch).
func ParseEpoch(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	e, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("header %s: %w", HeaderMapEpoch, err)
	}
	return e, nil
}

// staleMap turns the map of a refusal's body into a *StaleMapError and
// tells the call's Fence. It returns nil if raw is not a usable map.
func staleMap(req *http.Request, raw []byte) error {
	m, err := placement.Parse(raw)
	if err != nil {
		return nil
	}
	var epoch uint64
	if req != nil {
		epoch, _ = ParseEpoch(req.Header.Get(HeaderMapEpoch))
		if f := FenceOf(req.Context()); f != nil {
			f.Refused(m)
		}
	}
	return &StaleMapError{Epoch: epoch, Map: m}
}
