package storagenode

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// routes is the /v1 API. Names always travel in the query, never in the
// path. Each route is a thin adapter (below): it decodes the request,
// calls the Node method of the same name and encodes its answer, or its
// error through writeError; what a call means lives in the method.
func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range []struct {
		pattern string
		h       adapter
	}{
		{"PUT /v1/stage", n.serveStage},
		{"POST /v1/commit", n.serveCommit},
		{"POST /v1/abort", n.serveAbort},
		{"GET /v1/shard", n.serveShard},
		{"GET /v1/stat", n.serveStat},
		{"GET /v1/list", n.serveList},
		{"PUT /v1/bucket", n.servePutBucket},
		{"GET /v1/bucket", n.serveGetBucket},
		{"GET /v1/buckets", n.serveListBuckets},
		{"POST /v1/hints", n.serveAddHints},
		{"GET /v1/hints", n.serveListHints},
		{"DELETE /v1/hints", n.serveDeleteHints},
		{"GET /v1/health", n.serveHealth},
		{"GET /v1/map", n.serveGetMap},
		{"PUT /v1/map", n.servePutMap},
		{"POST /v1/verify", n.serveVerify},
		{"GET /v1/scrub/status", n.serveScrubStatus},
		{"POST /v1/marker/drop", n.serveDropMarker},
		{"POST /v1/shard/drop", n.serveDropShard},
		{"GET /v1/staged", n.serveListStaged},
		{"GET /v1/key/versions", n.serveKeyVersions},
		{"GET /v1/versions", n.serveListVersions},
		{"POST /v1/version/delete", n.serveDeleteVersion},
		{"POST /v1/commit/noncurrent", n.serveCommitNoncurrent},
		{"POST /v1/tags", n.serveSetTags},
	} {
		mux.Handle(rt.pattern, n.adapt(rt.h))
	}
	n.clusterRoutes(mux)
	h := n.fence(mux)
	if n.cfg.Secret == nil {
		return n.metrics.measure(n.refuseIfFailed(h))
	}
	return n.metrics.measure(n.refuseIfFailed(n.authenticate(h)))
}

// An adapter serves one route: it returns the answer to encode as JSON,
// or the error to answer with, or (nil, nil) if it wrote the answer
// itself.
type adapter func(w http.ResponseWriter, r *http.Request) (any, error)

// adapt makes an http.Handler of h.
func (n *Node) adapt(h adapter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch v, err := h(w, r); {
		case err != nil:
			n.writeError(w, r, err)
		case v != nil:
			n.writeJSON(w, r, v)
		}
	})
}

// empty is the answer of calls that return nothing but success.
var empty = struct{}{}

func (n *Node) serveStage(w http.ResponseWriter, r *http.Request) (any, error) {
	const op = "storagenode.Stage"
	q := r.URL.Query()
	shard, err := intParam(q, op, "shard", -1)
	if err != nil {
		return nil, err
	}
	block, err := intParam(q, op, "block", 0)
	if err != nil {
		return nil, err
	}
	ref, err := n.Stage(r.Context(), q.Get("bucket"), q.Get("key"), q.Get("version"), int(shard), int(block), r.Body)
	if err != nil {
		// Read on, so that the client gets the answer rather than a
		// broken connection.
		io.Copy(io.Discard, io.LimitReader(r.Body, maxDrain))
		return nil, err
	}
	return ref, nil
}

func (n *Node) serveCommit(w http.ResponseWriter, r *http.Request) (any, error) {
	var m client.ObjectMeta
	if err := readJSON(w, r, "storagenode.Commit", &m); err != nil {
		return nil, err
	}
	return orNil(n.Commit(r.Context(), m))
}

func (n *Node) serveAbort(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	return empty, n.Abort(r.Context(), q.Get("bucket"), q.Get("key"), q.Get("version"))
}

func (n *Node) serveShard(w http.ResponseWriter, r *http.Request) (any, error) {
	const op = "storagenode.ReadShard"
	q := r.URL.Query()
	off, err := intParam(q, op, "off", 0)
	if err != nil {
		return nil, err
	}
	length, err := intParam(q, op, "len", -1)
	if err != nil {
		return nil, err
	}
	shard, err := intParam(q, op, "shard", -1)
	if err != nil {
		return nil, err
	}
	sr, err := n.readShard(r.Context(), q.Get("bucket"), q.Get("key"), q.Get("version"), int(shard), off, length)
	if err != nil {
		return nil, err
	}
	defer sr.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(sr.count, 10))
	// A limited *os.File (rather than an io.SectionReader) lets the
	// server hand the copy of a shard file, or of a range of a pack
	// file, to sendfile: the bytes never enter user space.
	var src io.ReadSeeker = sr.f
	start := sr.start
	if fr, ok := sr.f.(interface{ File() (*os.File, int64) }); ok {
		file, base := fr.File()
		src, start = file, base+start
	}
	if _, err := src.Seek(start, io.SeekStart); err != nil {
		n.log.Warn("seeking shard", "err", err)
		return nil, nil
	}
	if _, err := io.Copy(w, io.LimitReader(src, sr.count)); err != nil {
		// The status is sent; a short body is all the client can be told.
		n.log.Debug("sending shard", "err", err)
	}
	return nil, nil
}

func (n *Node) serveStat(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	max, err := intParam(q, "storagenode.Stat", "max", 0)
	if err != nil {
		return nil, err
	}
	return orNil(n.StatData(r.Context(), q.Get("bucket"), q.Get("key"), max, q.Get("parity") == "1"))
}

func (n *Node) serveList(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	limit, err := intParam(q, "storagenode.List", "limit", 0)
	if err != nil {
		return nil, err
	}
	return orNil(n.List(r.Context(), q.Get("bucket"), q.Get("prefix"), q.Get("after"), int(limit)))
}

func (n *Node) servePutBucket(w http.ResponseWriter, r *http.Request) (any, error) {
	var b client.BucketRecord
	if err := readJSON(w, r, "storagenode.PutBucket", &b); err != nil {
		return nil, err
	}
	return empty, n.PutBucket(r.Context(), b)
}

func (n *Node) serveGetBucket(w http.ResponseWriter, r *http.Request) (any, error) {
	return orNil(n.GetBucket(r.Context(), r.URL.Query().Get("name")))
}

func (n *Node) serveListBuckets(w http.ResponseWriter, r *http.Request) (any, error) {
	return orNil(n.ListBuckets(r.Context()))
}

func (n *Node) serveAddHints(w http.ResponseWriter, r *http.Request) (any, error) {
	var hs []client.Hint
	if err := readJSON(w, r, "storagenode.AddHints", &hs); err != nil {
		return nil, err
	}
	return empty, n.AddHints(r.Context(), hs)
}

func (n *Node) serveListHints(w http.ResponseWriter, r *http.Request) (any, error) {
	limit, err := intParam(r.URL.Query(), "storagenode.ListHints", "limit", 0)
	if err != nil {
		return nil, err
	}
	return orNil(n.ListHints(r.Context(), int(limit)))
}

func (n *Node) serveDeleteHints(w http.ResponseWriter, r *http.Request) (any, error) {
	var hs []client.Hint
	if err := readJSON(w, r, "storagenode.DeleteHints", &hs); err != nil {
		return nil, err
	}
	return empty, n.DeleteHints(r.Context(), hs)
}

func (n *Node) serveHealth(w http.ResponseWriter, r *http.Request) (any, error) {
	return orNil(n.Health(r.Context()))
}

func (n *Node) serveGetMap(w http.ResponseWriter, r *http.Request) (any, error) {
	raw, err := n.mapJSON(r.Context())
	if err != nil {
		return nil, err
	}
	// As stored: the canonical encoding is what "same content" compares.
	w.Header().Set("Content-Type", "application/json")
	w.Write(raw)
	return nil, nil
}

func (n *Node) servePutMap(w http.ResponseWriter, r *http.Request) (any, error) {
	const op = "storagenode.PutMap"
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, client.MaxSignedBody))
	if err != nil {
		return nil, kerr.E(op, kerr.TooLarge, err)
	}
	epoch, err := n.putMapJSON(r.Context(), body)
	if err != nil {
		return nil, err
	}
	return struct {
		Epoch uint64 `json:"epoch"`
	}{epoch}, nil
}

func (n *Node) serveVerify(w http.ResponseWriter, r *http.Request) (any, error) {
	var req client.VerifyRequest
	if err := readJSON(w, r, "storagenode.Verify", &req); err != nil {
		return nil, err
	}
	return orNil(n.Verify(r.Context(), req.Shards))
}

func (n *Node) serveScrubStatus(w http.ResponseWriter, r *http.Request) (any, error) {
	return orNil(n.ScrubStatus(r.Context()))
}

func (n *Node) serveDropMarker(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	dropped, err := n.DropMarker(r.Context(), q.Get("bucket"), q.Get("key"), q.Get("version"))
	if err != nil {
		return nil, err
	}
	return client.DropResult{Dropped: dropped}, nil
}

func (n *Node) serveDropShard(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	shard, err := strconv.Atoi(q.Get("shard"))
	if err != nil {
		return nil, kerr.E("storagenode.DropShard", kerr.Invalid, fmt.Errorf("parameter shard: %w", err))
	}
	dropped, err := n.DropShard(r.Context(), q.Get("bucket"), q.Get("key"), q.Get("version"), shard)
	if err != nil {
		return nil, err
	}
	return client.DropResult{Dropped: dropped}, nil
}

func (n *Node) serveListStaged(w http.ResponseWriter, r *http.Request) (any, error) {
	limit, err := intParam(r.URL.Query(), "storagenode.ListStaged", "limit", 0)
	if err != nil {
		return nil, err
	}
	return orNil(n.ListStaged(r.Context(), int(limit)))
}

// orNil returns a method's answer as an adapter's: no answer when it
// failed, so that only the error is sent.
func orNil[T any](v T, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

// refuseIfFailed answers every request with the node's failure, health
// checks included (so that gateways' breakers open), once an fsync has
// failed.
func (n *Node) refuseIfFailed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := n.failure(); err != nil {
			n.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate rejects requests whose signature does not verify, before
// anything else looks at them. A shard stream is the only body allowed to
// go unsigned.
func (n *Node) authenticate(next http.Handler) http.Handler {
	const op = "storagenode.authenticate"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := client.Verify(r, n.cfg.Secret, time.Now(), n.cfg.MaxSkew)
		if err == nil && r.Header.Get(client.HeaderContentSHA256) == client.UnsignedStream &&
			(r.Method != http.MethodPut || r.URL.Path != "/v1/stage") {
			err = kerr.E(op, kerr.Unauthorized, "unsigned body on a request that must sign its body")
		}
		if err != nil {
			n.log.Warn("rejected request", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "err", err)
			n.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// kindStatus is the one table from error kind to HTTP status; the client
// inverts it.
var kindStatus = map[kerr.Kind]int{
	kerr.NotExist:     http.StatusNotFound,
	kerr.Exist:        http.StatusConflict,
	kerr.Invalid:      http.StatusBadRequest,
	kerr.Corrupt:      http.StatusUnprocessableEntity,
	kerr.Unavailable:  http.StatusServiceUnavailable,
	kerr.Transient:    http.StatusServiceUnavailable,
	kerr.Internal:     http.StatusInternalServerError,
	kerr.Conflict:     http.StatusConflict,
	kerr.NotEmpty:     http.StatusConflict,
	kerr.Unauthorized: http.StatusUnauthorized,
	kerr.TooLarge:     http.StatusInsufficientStorage,
}

// settle gives the error of a call the form every caller gets, over HTTP
// or in process: once an fsync has failed, the node's failure, whatever
// error the call ran into; a full disk is kerr.TooLarge, whatever kind the
// code that met it gave it.
func (n *Node) settle(err error) error {
	if err == nil {
		return nil
	}
	if ferr := n.failure(); ferr != nil {
		return ferr
	}
	if diskFull(err) && !kerr.Is(kerr.TooLarge, err) {
		return kerr.E("storagenode", kerr.TooLarge, err)
	}
	return err
}

// writeError is the one way a handler answers with an error: err's status
// (kindStatus) and a JSON ErrorBody naming the client sentinel in err's
// chain, if any, so that the caller's errors.Is finds it, the newer
// version of a conflict, and the node's map on a stale-map refusal.
// Failures that are the node's own (5xx) are logged; the caller's (4xx)
// are not.
func (n *Node) writeError(w http.ResponseWriter, r *http.Request, err error) {
	err = n.settle(err)
	kind := kerr.KindOf(err)
	status, ok := kindStatus[kind]
	if !ok {
		kind, status = kerr.Internal, http.StatusInternalServerError
	}
	switch {
	case kind == kerr.Internal:
		n.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	case status >= 500:
		n.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	body := client.ErrorBody{Kind: kind.String(), Message: err.Error(), Sentinel: client.SentinelName(err), Newer: client.Newer(err)}
	var stale *staleMap
	if errors.As(err, &stale) {
		body.Message, body.Map = stale.msg, stale.raw
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func (n *Node) writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		n.writeError(w, r, kerr.E("storagenode.writeJSON", kerr.Internal, err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// readJSON decodes a small JSON request body into v.
func readJSON(w http.ResponseWriter, r *http.Request, op string, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, client.MaxSignedBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return kerr.E(op, kerr.TooLarge, err)
		}
		return kerr.E(op, kerr.Invalid, fmt.Errorf("reading body: %w", err))
	}
	// Unmarshal refuses anything after the value but white space.
	if err := json.Unmarshal(body, v); err != nil {
		return kerr.E(op, kerr.Invalid, fmt.Errorf("decoding body: %w", err))
	}
	return nil
}

// intParam parses the integer query parameter name; def is its value when
// absent.
func intParam(q url.Values, op, name string, def int64) (int64, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, kerr.E(op, kerr.Invalid, fmt.Errorf("parameter %s: %w", name, err))
	}
	return v, nil
}
