package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// The HTTP API a storage node serves for its member, behind the node's
// own authentication (every call is signed with the cluster secret):
//
//	GET  /v1/cluster/status[?local=1]        ClusterStatus (local: this member's Status)
//	POST /v1/cluster/apply     body: placement.Change   the new map; 409 conflict, 400 refused, 503 no leader
//	POST /v1/cluster/init      body: map      bootstrap a new group here; 409 if initialised
//	GET  /v1/cluster/map?after=E&wait=30s    the map once its epoch is above E, or when wait ends
//
// A member that does not lead forwards apply to the leader's node (once:
// a forwarded call is never forwarded again) and otherwise answers 503
// naming the leader it knows.
const (
	headerForwarded = "X-Kintsugi-Forwarded"
	// MaxWait bounds a map long poll.
	MaxWait = 5 * time.Minute
)

// errorBody is the JSON of an error answer.
type errorBody struct {
	Kind       string `json:"kind"` // Conflict, Exist, NotExist, Invalid, Unavailable, OutcomeUnknown
	Message    string `json:"message"`
	Expected   uint64 `json:"expected,omitempty"`
	Current    uint64 `json:"current,omitempty"`
	Leader     string `json:"leader,omitempty"`
	LeaderAddr string `json:"leader_raft_addr,omitempty"`
}

// Member is one voter or non-voter as ClusterStatus reports it.
type Member struct {
	ID        string `json:"id"`
	Voter     bool   `json:"voter"`
	Reachable bool   `json:"reachable"`
	State     string `json:"state,omitempty"`
	LastIndex uint64 `json:"last_index"`
	Applied   uint64 `json:"applied_index"`
	Epoch     uint64 `json:"epoch"`
	Error     string `json:"error,omitempty"`
}

// ClusterStatus is the group as one member sees it, with each voter's
// own report.
type ClusterStatus struct {
	Self        string   `json:"self"`
	Leader      string   `json:"leader"` // "" when none is known
	Term        uint64   `json:"term"`
	Epoch       uint64   `json:"epoch"` // of the map the answering member applied
	Initialised bool     `json:"initialised"`
	Voters      []string `json:"voters"`
	Nonvoters   []string `json:"nonvoters"`
	Members     []Member `json:"members"` // the voters, in Voters' order
	// Quorum: a leader is known and a majority of the voters answered.
	Quorum bool `json:"quorum"`
}

// Handler serves the API for g. opts signs the calls it makes to other
// nodes (forwarding, status of the voters).
func Handler(g *Group, opts *client.Options) http.Handler {
	base := defaultHTTP
	if opts != nil && opts.HTTPClient != nil {
		base = opts.HTTPClient
	}
	h := &handler{g: g, opts: opts, fwd: forwardHTTP(base)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cluster/status", h.status)
	mux.HandleFunc("POST /v1/cluster/apply", h.apply)
	mux.HandleFunc("POST /v1/cluster/init", h.init)
	mux.HandleFunc("GET /v1/cluster/map", h.watch)
	return mux
}

type handler struct {
	g    *Group
	opts *client.Options
	fwd  *http.Client // forwards only: a fresh connection each
}

// nodeAddr returns the node API address of node id in the current map.
func (h *handler) nodeAddr(id string) (string, bool) {
	m := h.g.Map()
	if m == nil {
		return "", false
	}
	n, ok := m.Node(id)
	return n.Addr, ok
}

func (h *handler) apply(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, client.MaxSignedBody))
	if err != nil {
		writeErr(w, err)
		return
	}
	c, err := placement.ParseChange(body)
	if err != nil {
		writeErr(w, err)
		return
	}
	deadline, wait, err := requestBounds(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	forwarded := r.Header.Get(headerForwarded) != ""
	if forwarded && !deadline.IsZero() && time.Now().After(deadline.Add(deadlineSkew)) {
		writeErr(w, ErrExpired)
		return
	}
	ctx := r.Context()
	if wait > 0 {
		// Answer a little before the caller gives up, so that it hears
		// why rather than a timeout.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait-wait/10)
		defer cancel()
	}
	m, err := h.applyOrForward(ctx, c, forwarded)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, m)
}

// applyOrForward applies c here if this member leads, or forwards it to
// the leader's node (see forward.go). While no leader is known (an
// election), or the leader's address is not (a member just added, before
// it applied the map), or a leader could not be reached, it tries again
// for up to forwardWait or until ctx ends: a change made during a leader
// change then waits for the new leader instead of failing.
func (h *handler) applyOrForward(ctx context.Context, c placement.Change, forwarded bool) (*placement.Map, error) {
	ctx, cancel := context.WithTimeout(ctx, forwardWait)
	defer cancel()
	var (
		unsure    string // the leader an attempt went to with no answer
		unsureErr error
		pinned    bool
	)
	for {
		m, err := h.g.Apply(ctx, c)
		var nl *NotLeaderError
		if !errors.As(err, &nl) || forwarded {
			return m, h.judge(c, err, unsureErr)
		}
		addr, ok := h.nodeAddr(nl.Leader)
		switch {
		case !ok || nl.Leader == "":
		case unsure == nl.Leader:
			// The last attempt may still be with this leader: sending
			// it again could apply the change twice. Wait for another.
		case unsure != "" && pinned:
			// A second attempt with no answer: no more.
		default:
			if unsure != "" {
				// The first attempt reached a leader that no longer
				// leads. Pin the retry to the epoch the map had before
				// it, so that it conflicts if the first one applied.
				pinned = true
			}
			var before *placement.Map
			if unsure == "" {
				before = h.g.Map()
			}
			m, err := h.forward(ctx, addr, c)
			switch {
			case err == nil:
				return m, nil
			case changedNothing(err):
				// Try again, here or at the next leader.
			case unsure != "":
				return nil, h.judge(c, err, unsureErr)
			default:
				var ce *placement.ConflictError
				if errors.Is(err, placement.ErrInvalidChange) || errors.Is(err, ErrNotInitialised) || errors.As(err, &ce) {
					return nil, err
				}
				if ctx.Err() != nil {
					return nil, &OutcomeUnknownError{Change: c.String(), Err: err}
				}
				unsure, unsureErr = nl.Leader, err
				if c.ExpectEpoch == nil && before != nil {
					// Read before the attempt: this member may have
					// applied the attempt's entry since.
					c = c.Expecting(before.Epoch)
				}
			}
		}
		select {
		case <-ctx.Done():
			if unsureErr != nil {
				return nil, &OutcomeUnknownError{Change: c.String(), Err: unsureErr}
			}
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// judge turns the last error of applyOrForward into its answer: after an
// attempt with no answer, a conflict or a failure no longer proves that
// nothing changed.
func (h *handler) judge(c placement.Change, err, unsureErr error) error {
	if err == nil || unsureErr == nil {
		return err
	}
	if errors.Is(err, placement.ErrInvalidChange) || errors.Is(err, ErrNotInitialised) {
		return err
	}
	return &OutcomeUnknownError{Change: c.String(), Err: unsureErr}
}

// forwardWait bounds how long a change waits for a leader it can reach.
const forwardWait = 10 * time.Second

func (h *handler) init(w http.ResponseWriter, r *http.Request) {
	var m placement.Map
	if err := decodeBody(r, &m); err != nil {
		writeErr(w, fmt.Errorf("%w: %v", placement.ErrInvalidMap, err))
		return
	}
	got, err := h.g.Bootstrap(r.Context(), &m)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, got)
}

func (h *handler) watch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after uint64
	var wait time.Duration
	var err error
	if s := q.Get("after"); s != "" {
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			writeErr(w, invalidf("after: %v", err))
			return
		}
	}
	if s := q.Get("wait"); s != "" {
		if wait, err = time.ParseDuration(s); err != nil || wait < 0 {
			writeErr(w, invalidf("wait: %q is not a duration", s))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), min(wait, MaxWait))
	defer cancel()
	m := h.g.Wait(ctx, after)
	if m == nil {
		writeErr(w, ErrNotInitialised)
		return
	}
	writeJSON(w, m)
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	local := h.g.Status()
	if r.URL.Query().Get("local") != "" {
		writeJSON(w, local)
		return
	}
	writeJSON(w, h.clusterStatus(r.Context(), local))
}

// clusterStatus asks every voter for its own view, concurrently.
func (h *handler) clusterStatus(ctx context.Context, local Status) ClusterStatus {
	cs := ClusterStatus{
		Self: local.ID, Leader: local.Leader, Term: local.Term, Epoch: local.Epoch,
		Initialised: h.g.Map() != nil, Voters: local.Voters, Nonvoters: local.Nonvoters,
		Members: make([]Member, len(local.Voters)),
	}
	var wg sync.WaitGroup
	for i, id := range local.Voters {
		cs.Members[i] = Member{ID: id, Voter: true}
		if id == local.ID {
			cs.Members[i] = memberOf(local, true)
			continue
		}
		addr, ok := h.nodeAddr(id)
		if !ok {
			cs.Members[i].Error = "not in the cluster map"
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			st, err := NewClient(addr, h.opts).LocalStatus(cctx)
			if err != nil {
				cs.Members[i].Error = err.Error()
				return
			}
			cs.Members[i] = memberOf(st, true)
		})
	}
	wg.Wait()
	up := 0
	for _, m := range cs.Members {
		if m.Reachable {
			up++
		}
	}
	cs.Quorum = cs.Leader != "" && len(cs.Voters) > 0 && up > len(cs.Voters)/2
	return cs
}

func memberOf(st Status, voter bool) Member {
	return Member{ID: st.ID, Voter: voter, Reachable: true, State: st.State, LastIndex: st.LastIndex, Applied: st.Applied, Epoch: st.Epoch}
}

func decodeBody(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, client.MaxSignedBody))
	if err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// writeErr answers err with its status and an errorBody.
func writeErr(w http.ResponseWriter, err error) {
	body := errorBody{Message: err.Error()}
	status := http.StatusServiceUnavailable
	var ce *placement.ConflictError
	var nl *NotLeaderError
	switch {
	case errors.As(err, &ce):
		status, body.Kind, body.Expected, body.Current = http.StatusConflict, "Conflict", ce.Expected, ce.Current
	case errors.Is(err, ErrInitialised):
		status, body.Kind = http.StatusConflict, "Exist"
	case errors.Is(err, ErrNotInitialised):
		status, body.Kind = http.StatusNotFound, "NotExist"
	case errors.Is(err, placement.ErrInvalidChange), errors.Is(err, placement.ErrInvalidMap):
		status, body.Kind = http.StatusBadRequest, "Invalid"
	case errors.As(err, new(*OutcomeUnknownError)):
		body.Kind = "OutcomeUnknown"
	case errors.As(err, &nl):
		body.Kind, body.Leader, body.LeaderAddr = "Unavailable", nl.Leader, nl.LeaderAddr
	default:
		body.Kind = "Unavailable"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// refused is a change the map's rules refuse, as a client decodes it:
// it matches placement.ErrInvalidChange and reads as the node's reason.
type refused struct{ msg string }

func (e *refused) Error() string        { return e.msg }
func (e *refused) Is(target error) bool { return target == placement.ErrInvalidChange }

func invalidf(format string, args ...any) error {
	return &refused{fmt.Sprintf(format, args...)}
}
