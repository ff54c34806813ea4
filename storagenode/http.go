package storagenode

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// routes is the /v1 API. Names always travel in the query, never in the
// path.
func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/stage", n.handleStage)
	mux.HandleFunc("POST /v1/commit", n.handleCommit)
	mux.HandleFunc("POST /v1/abort", n.handleAbort)
	mux.HandleFunc("GET /v1/shard", n.handleShard)
	mux.HandleFunc("GET /v1/stat", n.handleStat)
	mux.HandleFunc("GET /v1/list", n.handleList)
	mux.HandleFunc("PUT /v1/bucket", n.handlePutBucket)
	mux.HandleFunc("GET /v1/bucket", n.handleGetBucket)
	mux.HandleFunc("GET /v1/buckets", n.handleListBuckets)
	mux.HandleFunc("POST /v1/hints", n.handleAddHints)
	mux.HandleFunc("GET /v1/hints", n.handleListHints)
	mux.HandleFunc("DELETE /v1/hints", n.handleDeleteHints)
	mux.HandleFunc("GET /v1/health", n.handleHealth)
	n.mapRoutes(mux)
	n.clusterRoutes(mux)
	mux.HandleFunc("POST /v1/verify", n.handleVerify)
	mux.HandleFunc("GET /v1/scrub/status", n.handleScrubStatus)
	mux.HandleFunc("POST /v1/marker/drop", n.handleDropMarker)
	mux.HandleFunc("POST /v1/shard/drop", n.handleDropShard)
	mux.HandleFunc("GET /v1/staged", n.handleListStaged)
	h := n.fence(mux)
	if n.cfg.Secret == nil {
		return n.metrics.measure(n.refuseIfFailed(h))
	}
	return n.metrics.measure(n.refuseIfFailed(n.authenticate(h)))
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

// writeError answers with err's status and a JSON ErrorBody, naming the
// client sentinel in err's chain, if any, so that the caller's errors.Is
// finds it. Failures that are the node's own (5xx) are logged; the
// caller's (4xx) are not.
func (n *Node) writeError(w http.ResponseWriter, r *http.Request, err error) {
	// A call that was under way when an fsync failed gets the failure,
	// whatever error it ran into.
	if ferr := n.failure(); ferr != nil {
		err = ferr
	}
	kind := kerr.KindOf(err)
	if diskFull(err) {
		kind = kerr.TooLarge
	}
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
	n.writeErrorBody(w, r, status, client.ErrorBody{Kind: kind.String(), Message: err.Error(), Sentinel: client.SentinelName(err), Newer: client.Newer(err)})
}

// writeErrorBody answers with status and body.
func (n *Node) writeErrorBody(w http.ResponseWriter, r *http.Request, status int, body client.ErrorBody) {
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
