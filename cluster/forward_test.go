package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/placement"
)

// holdProxy relays TCP connections to a backend, or, while holding,
// accepts them and keeps what the client sends without relaying it: a
// link that a partition has cut, with the request queued on the way.
// Release delivers the queued requests, as a healed link would.
type holdProxy struct {
	t       *testing.T
	ln      net.Listener
	backend string
	mu      sync.Mutex
	hold    bool
	queued  [][]byte
	conns   []net.Conn
}

func newHoldProxy(t *testing.T, backend string) *holdProxy {
	p := &holdProxy{t: t, ln: mustListen(t), backend: backend}
	go p.serve()
	t.Cleanup(func() {
		p.ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

func (p *holdProxy) addr() string { return p.ln.Addr().String() }

func (p *holdProxy) setHold(on bool) {
	p.mu.Lock()
	p.hold = on
	p.mu.Unlock()
}

func (p *holdProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		hold := p.hold
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		go func() {
			defer c.Close()
			if hold {
				// Keep the bytes until the client gives up.
				b, _ := io.ReadAll(c)
				p.mu.Lock()
				p.queued = append(p.queued, b)
				p.mu.Unlock()
				return
			}
			b, err := net.Dial("tcp", p.backend)
			if err != nil {
				return
			}
			defer b.Close()
			go io.Copy(b, c)
			io.Copy(c, b)
		}()
	}
}

// release delivers the queued requests to the backend and returns the
// status line of each answer.
func (p *holdProxy) release() []string {
	p.mu.Lock()
	q := p.queued
	p.queued = nil
	p.mu.Unlock()
	var out []string
	for _, req := range q {
		if len(req) == 0 {
			continue
		}
		c, err := net.Dial("tcp", p.backend)
		if err != nil {
			p.t.Fatal(err)
		}
		c.Write(req)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			out = append(out, "error: "+err.Error())
		} else {
			body, _ := io.ReadAll(resp.Body)
			out = append(out, resp.Status+" "+strings.TrimSpace(string(body)))
		}
		c.Close()
	}
	return out
}

// bootProxied starts a 3-member group whose map names a holdProxy in
// front of each node's server.
func bootProxied(t *testing.T) (*testCluster, map[string]*Client, map[string]*holdProxy, *placement.Map) {
	proxies := map[string]*holdProxy{}
	tc, clients, m := bootHTTPVia(t, func(id, addr string) string {
		p := newHoldProxy(t, addr)
		proxies[id] = p
		return p.addr()
	})
	return tc, clients, proxies, m
}

// A forward whose link to the leader is cut fails as an unknown outcome,
// and the queued request, delivered once the link is back, is refused by
// the leader: the change never applies after its caller gave up.
func TestForwardCutLinkNeverAppliesLate(t *testing.T) {
	tc, clients, proxies, m := bootProxied(t)
	l := tc.leader(5 * time.Second)
	var f string
	for id := range clients {
		if id != l.ID() {
			f = id
		}
	}
	proxies[l.ID()].setHold(true)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	start := time.Now()
	_, err := clients[f].Apply(ctx, placement.AddNode(placement.Node{ID: "d", Addr: "127.0.0.1:1", Zone: "zd"}))
	took := time.Since(start)
	var ou *OutcomeUnknownError
	if !errors.As(err, &ou) || !strings.Contains(err.Error(), "outcome unknown") || !strings.Contains(err.Error(), "map show") {
		t.Fatalf("apply through %s with the leader's link cut: err = %v after %v; want an unknown outcome naming map show", f, err, took)
	}
	if took > 4*time.Second {
		t.Fatalf("the node answered after %v, past the caller's 4s", took)
	}
	// Heal once the attempt's deadline and the allowed skew have passed.
	time.Sleep(time.Until(start.Add(forwardAttempt + deadlineSkew + 200*time.Millisecond)))
	proxies[l.ID()].setHold(false)
	got := proxies[l.ID()].release()
	if len(got) != 1 || !strings.HasPrefix(got[0], "503") || !strings.Contains(got[0], "after its sender gave up") {
		t.Fatalf("the queued forward, delivered after the heal, was answered %q; want one 503 refusal", got)
	}
	time.Sleep(500 * time.Millisecond)
	for _, g := range tc.live() {
		if e := g.Map().Epoch; e != m.Epoch {
			t.Fatalf("member %s at epoch %d after the heal, want %d: the change applied late", g.ID(), e, m.Epoch)
		}
	}
}

// A follower whose forward got no answer from a leader that then lost
// its leadership sends the change once more, to the new leader, and the
// change applies exactly once.
func TestForwardRetriesNewLeader(t *testing.T) {
	tc, clients, proxies, m := bootProxied(t)
	l := tc.leader(5 * time.Second)
	var f string
	for id := range clients {
		if id != l.ID() {
			f = id
		}
	}
	proxies[l.ID()].setHold(true)
	go func() {
		time.Sleep(time.Second)
		l.raft.LeadershipTransfer()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	got, err := clients[f].Apply(ctx, placement.AddNode(placement.Node{ID: "d", Addr: "127.0.0.1:1", Zone: "zd"}))
	if err != nil {
		t.Fatalf("apply through %s after the leader changed: %v", f, err)
	}
	if got.Epoch != m.Epoch+1 {
		t.Fatalf("epoch %d, want %d", got.Epoch, m.Epoch+1)
	}
	if nl := tc.leader(5 * time.Second); nl.ID() == l.ID() {
		t.Fatalf("leadership stayed with %s", l.ID())
	}
	proxies[l.ID()].setHold(false)
	late := proxies[l.ID()].release()
	if len(late) != 1 || !strings.HasPrefix(late[0], "503") {
		t.Fatalf("the first attempt, delivered late, was answered %q; want one 503", late)
	}
	tc.converged(got.Epoch, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	for _, g := range tc.live() {
		if e := g.Map().Epoch; e != got.Epoch {
			t.Fatalf("member %s at epoch %d, want %d: the change applied twice", g.ID(), e, got.Epoch)
		}
	}
}

// TestForwardDialCutShortSentNothing: when the caller's time runs out
// while the forward is still connecting (a leader cut off drops SYNs),
// net/http answers with the context's error, not the dial's; the forward
// must still know that nothing was sent, so that the change is reported
// as not applied rather than "outcome unknown". A forward that connected
// and got no answer must not be taken for one that never left.
func TestForwardDialCutShortSentNothing(t *testing.T) {
	blocking := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	h := &handler{fwd: forwardHTTP(&http.Client{Transport: blocking})}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := h.forward(ctx, "127.0.0.1:1", placement.DrainNode("n2"))
	if err == nil || !neverSent(err) || !changedNothing(err) {
		t.Fatalf("forward whose dial was cut short: %v; want an error that says nothing was sent", err)
	}

	// A node that accepts and never answers: the request left.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held sync.WaitGroup
	held.Add(1)
	go func() {
		defer held.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(io.Discard, c)
	}()
	h = &handler{fwd: forwardHTTP(&http.Client{Transport: &http.Transport{}})}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	_, err = h.forward(ctx2, ln.Addr().String(), placement.DrainNode("n2"))
	if err == nil || neverSent(err) || changedNothing(err) {
		t.Fatalf("forward to a node that never answers: %v; want an error that does not claim nothing was sent", err)
	}
	ln.Close()
	held.Wait()
}

// TestForwardClosedConnection: a leader's node that closes the connection
// without answering. If it did so during the TLS handshake, no byte of
// the request had been written, so the change did not apply and may be
// sent again; if it did after reading the request (a node killed while it
// applied the change), the forward gets the same EOF, but the change may
// have committed: its outcome is unknown.
func TestForwardClosedConnection(t *testing.T) {
	tests := []struct {
		name    string
		scheme  string
		serve   func(c net.Conn) // then the connection is closed
		nothing bool             // the error proves nothing was applied
	}{
		{name: "during the TLS handshake", scheme: "https://", nothing: true, serve: func(c net.Conn) {
			c.Read(make([]byte, 64<<10)) // the ClientHello
		}},
		{name: "after reading the request", scheme: "http://", serve: func(c net.Conn) {
			if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				io.Copy(io.Discard, req.Body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := mustListen(t)
			defer ln.Close()
			var served sync.WaitGroup
			served.Go(func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				tt.serve(c)
			})
			base := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			h := &handler{fwd: forwardHTTP(base)}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := h.forward(ctx, tt.scheme+ln.Addr().String(), placement.DrainNode("n2"))
			served.Wait()
			if err == nil || !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("forward: err = %v, want the connection's EOF or reset", err)
			}
			if changedNothing(err) != tt.nothing {
				t.Fatalf("forward: err = %v; changedNothing = %v, want %v", err, !tt.nothing, tt.nothing)
			}
		})
	}
}

// TestOutcomeUnknownSaidOnce: a leader that cannot commit says why; the
// member or admin that wraps its answer says once that the outcome is
// unknown and how to learn it.
func TestOutcomeUnknownSaidOnce(t *testing.T) {
	tc, _ := boot(t, "a", "b", "c")
	l := tc.leader(5 * time.Second)
	for _, g := range tc.live() {
		if g != l {
			tc.kill(g.ID())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c := placement.DrainNode("b")
	_, err := l.Apply(ctx, c)
	if err == nil {
		t.Fatal("a leader without a quorum committed a change")
	}
	// As the leader's node answers it and a member forwarding to it (or
	// the admin) reports it.
	w := httptest.NewRecorder()
	writeErr(w, err)
	got := (&OutcomeUnknownError{Change: c.String(), Err: decodeErr("n1", w.Code, w.Body.Bytes())}).Error()
	for _, s := range []string{"outcome unknown", "applied everywhere or nowhere", "map show"} {
		if n := strings.Count(got, s); n != 1 {
			t.Errorf("%q said %d times, want once: %s", s, n, got)
		}
	}
	if !strings.Contains(got, "quorum") {
		t.Errorf("the reason is lost: %s", got)
	}
}

// TestRefusalsRoundTrip: a leader's refusals that changed nothing still
// prove it once a forwarding member has decoded them, so that it tries
// again rather than report an unknown outcome.
func TestRefusalsRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want NotLeaderError
	}{
		{name: "handing over", err: &NotLeaderError{Handover: true}, want: NotLeaderError{Handover: true}},
		{name: "no leader", err: &NotLeaderError{}, want: NotLeaderError{}},
		{name: "another leader", err: &NotLeaderError{Leader: "b", LeaderAddr: "127.0.0.1:9"}, want: NotLeaderError{Leader: "b", LeaderAddr: "127.0.0.1:9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			writeErr(w, tt.err)
			err := decodeErr("n1", w.Code, w.Body.Bytes())
			var nl *NotLeaderError
			if !errors.As(err, &nl) || *nl != tt.want || !changedNothing(err) {
				t.Fatalf("decoded %q as %#v, want %#v, which changed nothing", w.Body.String(), err, tt.want)
			}
		})
	}
}
