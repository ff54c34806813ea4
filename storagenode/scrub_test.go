package storagenode

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/clock"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// waitStatus polls the node's scrub status until cond holds.
func waitStatus(t *testing.T, tn *testNode, within time.Duration, cond func(client.ScrubStatus) bool) client.ScrubStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := tn.c.ScrubStatus(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("scrub status never reached the condition in %v; last %+v", within, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBackgroundVerifier(t *testing.T) {
	dir := t.TempDir()
	// Fill the node with the verifier off, then damage one shard.
	tn := startNode(t, dir, nil)
	o := encode(t, 6*testBlock, 50)
	for i := range 5 {
		tn.put(t, "bk", fmt.Sprint("k", i), ver(i), o, i%6)
	}
	if _, err := tn.c.Commit(context.Background(), client.ObjectMeta{Bucket: "bk", Key: "marker", Version: ver(9), Deleted: true}); err != nil {
		t.Fatal(err)
	}
	tn.stop()
	damage(t, tn.shardPath("bk", "k3", ver(3), 3), func(b []byte) []byte { b[100] ^= 4; return b })

	clk := clock.NewManual(time.Now())
	tn = startNode(t, dir, func(c *Config) {
		c.ScrubRate = 1 << 30
		c.ScrubPeriod = 50 * time.Millisecond
		c.Now, c.After = clk.Now, clk.After
	})
	// One pass at once, then it rests for its period; moved on by all of
	// it, the clock starts the second.
	clk.BlockUntil(1)
	if st, err := tn.c.ScrubStatus(context.Background()); err != nil || st.Pass != 1 || st.Running {
		t.Fatalf("status after the first pass = %+v, %v", st, err)
	}
	clk.Advance(50 * time.Millisecond)
	clk.BlockUntil(1)
	st, err := tn.c.ScrubStatus(context.Background())
	if err != nil || st.Pass != 2 || st.Running {
		t.Fatalf("status after one period = %+v, %v; want two passes done", st, err)
	}
	if st.Corrupt != 1 || st.Quarantined != 1 || st.QuarantinedShards[0].Key != "k3" {
		t.Errorf("status = %+v, want k3 quarantined", st)
	}
	// Each pass counts five shards (the marker has none); the first hashed
	// all five, the second four: the quarantined shard is not hashed again.
	if perShard := st.PassBytes / 4; st.Shards != 10 || st.PassShards != 5 || st.PassBytes%4 != 0 || st.Bytes != 9*perShard || st.Rate != 1<<30 {
		t.Errorf("status = %+v", st)
	}
	hs, err := tn.c.ListHints(context.Background(), 0)
	if err != nil || len(hs) != 1 {
		t.Fatalf("hints = %+v, %v; want one", hs, err)
	}
	if h := hs[0]; h.Key != "k3" || h.Version != ver(3) || h.Shard != 3 || h.NodeID != "node-1" || h.Reason != "corrupt" {
		t.Errorf("hint = %+v", h)
	}
}

func TestVerifierResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	tn := startNode(t, dir, nil)
	o := encode(t, 8*testBlock, 51) // shards of 2 frames, about 8 KiB
	const keys = 40
	for i := range keys {
		tn.put(t, "bk", fmt.Sprintf("k%02d", i), ver(i), o, 0)
	}
	tn.stop()
	shardBytes := int64(len(o.shards[0]))

	// About 20 shards a second: the pass takes two seconds.
	slow := func(c *Config) {
		c.ScrubRate = 20 * shardBytes
		c.ScrubPeriod = time.Hour
	}
	tn = startNode(t, dir, slow)
	before := waitStatus(t, tn, 10*time.Second, func(st client.ScrubStatus) bool { return st.PassShards >= 8 })
	tn.stop()
	saved, err := func() (client.ScrubStatus, error) {
		var st client.ScrubStatus
		n, err := Open(Config{ID: "node-1", Dir: dir, Logger: quietLogger()})
		if err != nil {
			return st, err
		}
		defer n.Close()
		_, err = n.db.LoadState(scrubStateName, &st)
		return st, err
	}()
	if err != nil {
		t.Fatal(err)
	}
	if !saved.Running || saved.Pass != 1 || saved.Position == "" || saved.PassShards < before.PassShards || saved.PassShards >= keys {
		t.Fatalf("checkpoint at stop = %+v (status before stop %+v)", saved, before)
	}

	tn = startNode(t, dir, slow)
	done := waitStatus(t, tn, 20*time.Second, func(st client.ScrubStatus) bool { return !st.LastPassFinished.IsZero() })
	// Same pass, continued: every shard counted once, none twice.
	if done.Pass != 1 || done.PassShards != keys || done.PassBytes != keys*shardBytes || done.Running {
		t.Errorf("finished pass = %+v, want pass 1 with %d shards", done, keys)
	}
	if !done.LastPassStarted.Equal(saved.PassStarted) {
		t.Errorf("pass started %v, but the checkpoint said %v: it started over", done.LastPassStarted, saved.PassStarted)
	}
}
