package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

const v1 = "01JD0000000000000000000000"

func TestNewAddr(t *testing.T) {
	for _, tc := range []struct{ addr, base string }{
		{"127.0.0.1:9101", "http://127.0.0.1:9101"},
		{"http://127.0.0.1:9101", "http://127.0.0.1:9101"},
		{"https://node-3:9101/", "https://node-3:9101"},
	} {
		c := New(tc.addr, nil)
		if c.base != tc.base || c.Addr() != tc.addr || c.timeout != DefaultTimeout || c.hc != sharedHTTPClient() {
			t.Errorf("New(%q): base %q addr %q timeout %v", tc.addr, c.base, c.Addr(), c.timeout)
		}
	}
	hc := &http.Client{}
	c := New("h:1", &Options{HTTPClient: hc, Timeout: time.Second, Secret: []byte("s")})
	if c.hc != hc || c.timeout != time.Second || string(c.secret) != "s" {
		t.Errorf("options not applied: %+v", c)
	}
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   kerr.Kind
	}{
		{404, `{"kind":"not exist","message":"no such version"}`, kerr.NotExist},
		{400, `{"kind":"invalid","message":"bad shard"}`, kerr.Invalid},
		{401, `{"kind":"unauthorized","message":"signature mismatch"}`, kerr.Unauthorized},
		{409, `{"kind":"conflict","message":"x"}`, kerr.Conflict},
		{409, `{"kind":"exists","message":"x"}`, kerr.Exist},
		{422, `{"kind":"corrupt","message":"block 3"}`, kerr.Corrupt},
		{507, `{"kind":"too large","message":"disk full"}`, kerr.TooLarge},
		{500, `{"kind":"internal","message":"disk error"}`, kerr.Unavailable},
		{503, `{"kind":"transient","message":"busy"}`, kerr.Transient},
		{503, `{"kind":"unavailable","message":"needs a restart"}`, kerr.Unavailable},
		{502, `bad gateway`, kerr.Transient},
		{404, `404 page not found`, kerr.NotExist},
		{405, `method not allowed`, kerr.Invalid},
		{599, ``, kerr.Unavailable},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.body)
		}))
		c := New(srv.URL, nil)
		_, err := c.Stat(context.Background(), "bk", "k")
		if got := kerr.KindOf(err); got != tc.want {
			t.Errorf("status %d %s: kind %v, want %v (%v)", tc.status, tc.body, got, tc.want, err)
		}
		if err != nil && !strings.Contains(err.Error(), c.Addr()) {
			t.Errorf("error %q does not name the node", err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "client.Stat: ") {
			t.Errorf("error %q does not start with its op", err)
		}
		srv.Close()
	}
}

func TestTransportErrors(t *testing.T) {
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = New(addr, nil).Health(context.Background())
	if !kerr.Is(kerr.Unavailable, err) || !strings.Contains(err.Error(), addr) {
		t.Errorf("refused connection: %v, want Unavailable naming %s", err, addr)
	}

	stall := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(stall)
	c := New(srv.URL, &Options{Timeout: 50 * time.Millisecond})
	_, err = c.Health(context.Background())
	if !kerr.Is(kerr.Transient, err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stalled node with default timeout: %v, want Transient deadline", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Health(ctx)
	if !kerr.Is(kerr.Transient, err) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v, want Transient wrapping context.Canceled", err)
	}
}

func TestClientRejectsBadArgs(t *testing.T) {
	// No server: every call below must fail before sending anything.
	c := New("127.0.0.1:1", nil)
	ctx := context.Background()
	body := bytes.NewReader(nil)
	for name, err := range map[string]error{
		"stage bad version":  second(c.Stage(ctx, "bk", "k", "v1", 0, 4096, body)),
		"stage bad shard":    second(c.Stage(ctx, "bk", "k", v1, 24, 4096, body)),
		"stage bad block":    second(c.Stage(ctx, "bk", "k", v1, 0, 100, body)),
		"stage empty key":    second(c.Stage(ctx, "bk", "", v1, 0, 4096, body)),
		"stage slash bucket": second(c.Stage(ctx, "b/k", "k", v1, 0, 4096, body)),
		"commit no version":  second(c.Commit(ctx, ObjectMeta{Bucket: "bk", Key: "k"})),
		"abort bad version":  c.Abort(ctx, "bk", "k", strings.ToLower(v1)),
		"read bad range":     second(c.ReadShard(ctx, "bk", "k", v1, 0, 0, -2)),
		"read negative off":  second(c.ReadShard(ctx, "bk", "k", v1, 0, -1, 1)),
		"read no shard":      second(c.ReadShard(ctx, "bk", "k", v1, -1, 0, -1)),
		"stat long key":      second(c.Stat(ctx, "bk", strings.Repeat("k", MaxKeyLen+1))),
		"list no bucket":     second(c.List(ctx, "", "", "", 0)),
		"put bucket version": c.PutBucket(ctx, BucketRecord{Name: "bk", Version: "x"}),
		"get bucket empty":   second(c.GetBucket(ctx, "")),
		"hint bad shard":     c.AddHints(ctx, []Hint{{Bucket: "bk", Key: "k", Version: v1, Shard: 99}}),
		"delete hint":        c.DeleteHints(ctx, []Hint{{Bucket: "bk", Key: "k", Version: ""}}),
	} {
		if !kerr.Is(kerr.Invalid, err) {
			t.Errorf("%s: %v, want Invalid", name, err)
		}
	}
	if err := c.AddHints(ctx, make([]Hint, MaxHints+1)); !kerr.Is(kerr.TooLarge, err) {
		t.Errorf("too many hints: %v", err)
	}
	if err := c.AddHints(ctx, nil); err != nil {
		t.Errorf("no hints: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		ok   bool
	}{
		{"version", CheckVersion(v1), true},
		{"version lower case", CheckVersion(strings.ToLower(v1)), false},
		{"version short", CheckVersion(v1[:25]), false},
		{"version overflow", CheckVersion("8" + v1[1:]), false},
		{"key max", CheckKey("b", strings.Repeat("k", MaxKeyLen)), true},
		{"key NUL", CheckKey("b", "a\x00b"), true},
		{"bucket NUL", CheckBucket("a\x00"), false},
		{"shard 23", CheckShard(23), true},
		{"shard -1", CheckShard(-1), false},
		{"hint whole version", CheckHints([]Hint{{Bucket: "b", Key: "k", Version: v1, Shard: -1}}), true},
	} {
		if (tc.err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.name, tc.err, tc.ok)
		}
	}
	for n, want := range map[int]int{-5: DefaultListLen, 0: DefaultListLen, 1: 1, MaxListLen: MaxListLen, MaxListLen + 1: MaxListLen} {
		if got := ListLimit(n); got != want {
			t.Errorf("ListLimit(%d) = %d, want %d", n, got, want)
		}
	}
	for k := kerr.Other + 1; k <= kerr.TooLarge; k++ {
		if got, ok := kindByName(k.String()); !ok || got != k {
			t.Errorf("kindByName(%q) = %v, %v", k.String(), got, ok)
		}
	}
	if _, ok := kindByName("unknown"); ok {
		t.Error("kindByName(unknown) succeeded")
	}
}
