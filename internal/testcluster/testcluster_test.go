package testcluster

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// TestHooks: each fault hook does to a fake node what it does to a real
// one, and undoing it restores the node.
func TestHooks(t *testing.T) {
	for _, real := range []bool{false, true} {
		name := map[bool]string{false: "fake", true: "real"}[real]
		t.Run(name, func(t *testing.T) {
			c := New(t, Options{Nodes: 3, Data: 2, Parity: 1, Real: real})
			if len(c.Map.Nodes) != 3 || c.Map.Nodes[2].ID != "n2" || c.Map.Nodes[2].Zone != "z2" {
				t.Fatalf("map nodes %+v", c.Map.Nodes)
			}
			c.CreateBucket("b", "01HF7YAT010000000000000000")
			n := c.Node("n1")
			get := func(timeout time.Duration) error {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				_, err := n.API().GetBucket(ctx, "b")
				return err
			}
			up := n.Down()
			// A fake fails at once as unavailable; a real node's 503
			// reaches its client as transient.
			if err := get(5 * time.Second); kerr.KindOf(err) != kerr.Unavailable && kerr.KindOf(err) != kerr.Transient {
				t.Errorf("down: %v (kind %v), want unavailable or transient", err, kerr.KindOf(err))
			}
			up()
			if err := get(5 * time.Second); err != nil {
				t.Fatalf("back up: %v", err)
			}
			var calls atomic.Int64
			up = n.Hang(func() { calls.Add(1) })
			if err := get(50 * time.Millisecond); err == nil {
				t.Error("a hung node answered")
			}
			up()
			if real && calls.Load() != 1 {
				t.Errorf("hang counted %d calls, want 1", calls.Load())
			}
			fast := n.Slow(50 * time.Millisecond)
			start := time.Now()
			if err := get(5 * time.Second); err != nil || time.Since(start) < 50*time.Millisecond {
				t.Errorf("slow: %v after %v", err, time.Since(start))
			}
			fast()
			n.Wipe()
			if err := get(5 * time.Second); kerr.KindOf(err) != kerr.NotExist {
				t.Errorf("wiped: %v, want not exist", err)
			}
			c.Node("n2").Stop()
			if _, err := c.API("n2").GetBucket(context.Background(), "b"); err == nil {
				t.Error("a stopped node answered")
			}
		})
	}
}
