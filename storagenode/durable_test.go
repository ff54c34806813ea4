package storagenode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// TestReaderNeverSeesCommitBeforeSync blocks the index sync of a commit
// and reads the key meanwhile: Stat, List and ReadShard must not show the
// new version until the sync has returned, since a crash before it would
// lose the commit that a reader had already served or rolled forward.
func TestReaderNeverSeesCommitBeforeSync(t *testing.T) {
	tn := startNode(t, "", nil)
	var armed atomic.Bool
	entered, release := make(chan struct{}), make(chan struct{})
	tn.db.SetSyncHook(func() error {
		if armed.CompareAndSwap(true, false) {
			close(entered)
			<-release
		}
		return nil
	})
	ctx := context.Background()
	o1, o2 := encode(t, 3*testBlock, 1), encode(t, 3*testBlock, 2)
	tn.put(t, "bk", "k", ver(1), o1, 0)
	if _, err := tn.c.Stage(ctx, "bk", "k", ver(2), 0, testBlock, bytes.NewReader(o2.shards[0])); err != nil {
		t.Fatal(err)
	}

	armed.Store(true)
	committed := make(chan error, 1)
	go func() {
		_, err := tn.c.Commit(ctx, o2.meta("bk", "k", ver(2)))
		committed <- err
	}()
	<-entered // the commit's transaction is written; its sync has not returned

	type seen struct {
		what    string
		version string // "" when the read did not see ver(2)
		err     error
	}
	reads := make(chan seen, 3)
	go func() {
		ks, err := tn.c.Stat(ctx, "bk", "k")
		v := ""
		if err == nil && ks.Committed != nil && ks.Committed.Version == ver(2) {
			v = ver(2)
		}
		reads <- seen{"Stat", v, err}
	}()
	go func() {
		page, err := tn.c.List(ctx, "bk", "", "", 0)
		v := ""
		for _, r := range page.Records {
			if r.Version == ver(2) {
				v = ver(2)
			}
		}
		reads <- seen{"List", v, err}
	}()
	go func() {
		rc, err := tn.c.ReadShard(ctx, "bk", "k", ver(2), 0, 0, -1)
		v := ""
		if err == nil {
			rc.Close()
			v = ver(2)
		}
		reads <- seen{"ReadShard", v, err}
	}()
	// Readers may wait for the sync or answer with the old state; none may
	// answer with the new one. Give them time to answer wrongly.
	got := 0
	deadline := time.After(300 * time.Millisecond)
wait:
	for got < 3 {
		select {
		case s := <-reads:
			got++
			if s.version != "" {
				t.Errorf("%s showed version 2 while its commit's sync had not returned", s.what)
			}
		case <-deadline:
			break wait
		}
	}
	close(release)
	if err := <-committed; err != nil {
		t.Fatalf("Commit: %v", err)
	}
	for ; got < 3; got++ {
		if s := <-reads; s.err != nil || s.version != ver(2) {
			t.Errorf("%s after the sync: version %q, err %v; want version 2", s.what, s.version, s.err)
		}
	}
}

// TestFailedFsyncStopsNode fails one fsync (of a staged shard file, of a
// directory, of the index) on one of two nodes sharing the process: that
// node must refuse every later call, health checks included, with 503 and
// an Unavailable error saying it needs a restart, even though later fsyncs
// would succeed; the other node must keep serving.
func TestFailedFsyncStopsNode(t *testing.T) {
	errFsync := errors.New("injected fsync failure")
	failFile := func(n *Node, fail *atomic.Bool) {
		n.fsyncHook = func(f *os.File) error {
			if fi, err := f.Stat(); err == nil && !fi.IsDir() && fail.CompareAndSwap(true, false) {
				return errFsync
			}
			return f.Sync()
		}
	}
	tests := []struct {
		name    string
		packMax int64 // 0: every shard in a file of its own
		inject  func(n *Node, fail *atomic.Bool)
	}{
		{"pack file", DefaultPackMax, failFile},
		{"shard file", 0, failFile},
		{"directory", 0, func(n *Node, fail *atomic.Bool) {
			n.fsyncHook = func(f *os.File) error {
				if fi, err := f.Stat(); err == nil && fi.IsDir() && fail.CompareAndSwap(true, false) {
					return errFsync
				}
				return f.Sync()
			}
		}},
		{"index", 0, func(n *Node, fail *atomic.Bool) {
			n.db.SetSyncHook(func() error {
				if fail.CompareAndSwap(true, false) {
					return errFsync
				}
				return nil
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			a := startNode(t, "", func(c *Config) { c.PackMax = tt.packMax })
			b := startNode(t, "", func(c *Config) { c.ID = "node-2" })
			var fail atomic.Bool
			tt.inject(a.Node, &fail)
			o := encode(t, 3*testBlock, 7)
			a.put(t, "bk", "k", ver(1), o, 0)

			fail.Store(true)
			if _, err := a.c.Stage(ctx, "bk", "k", ver(2), 0, testBlock, bytes.NewReader(o.shards[0])); err == nil {
				t.Fatal("Stage succeeded through a failed fsync")
			}
			if fail.Load() {
				t.Fatal("the stage did not reach the injected fsync")
			}

			calls := map[string]func() error{
				"Stat": func() error { _, err := a.c.Stat(ctx, "bk", "k"); return err },
				"ReadShard": func() error {
					rc, err := a.c.ReadShard(ctx, "bk", "k", ver(1), 0, 0, -1)
					if err == nil {
						rc.Close()
					}
					return err
				},
				"Stage": func() error {
					_, err := a.c.Stage(ctx, "bk", "k2", ver(3), 0, testBlock, bytes.NewReader(o.shards[0]))
					return err
				},
				"Commit": func() error { _, err := a.c.Commit(ctx, o.meta("bk", "k", ver(2))); return err },
				"List":   func() error { _, err := a.c.List(ctx, "bk", "", "", 0); return err },
				"Health": func() error { _, err := a.c.Health(ctx); return err },
			}
			// In process as over HTTP.
			local := NewLocal(a.Node, nil)
			calls["Local.Stat"] = func() error { _, err := local.Stat(ctx, "bk", "k"); return err }
			calls["Local.Stage"] = func() error {
				_, err := local.Stage(ctx, "bk", "k2", ver(3), 0, testBlock, bytes.NewReader(o.shards[0]))
				return err
			}
			calls["Local.ReadShard"] = func() error {
				rc, err := local.ReadShard(ctx, "bk", "k", ver(1), 0, 0, -1)
				if err == nil {
					rc.Close()
				}
				return err
			}
			calls["Local.Health"] = func() error { _, err := local.Health(ctx); return err }
			for name, call := range calls {
				if err := call(); kerr.KindOf(err) != kerr.Unavailable {
					t.Errorf("%s after a failed fsync: err %v (kind %v), want Unavailable", name, err, kerr.KindOf(err))
				}
			}
			resp, err := http.Get(a.srv.URL + "/v1/health")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var eb client.ErrorBody
			if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &eb) != nil ||
				eb.Kind != kerr.Unavailable.String() || !strings.Contains(eb.Message, "restart") {
				t.Errorf("health after a failed fsync: %d %s, want 503, kind unavailable, saying it needs a restart", resp.StatusCode, body)
			}

			// The other node of the process is untouched.
			b.put(t, "bk", "k", ver(1), o, 1)
			if got := b.readAll(t, "bk", "k", ver(1), 1); !bytes.Equal(got, o.shards[1]) {
				t.Error("the healthy node's shard differs")
			}
			if _, err := b.c.Health(ctx); err != nil {
				t.Errorf("healthy node's health: %v", err)
			}
		})
	}
}
