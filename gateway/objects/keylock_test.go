package objects

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

func TestKeyLocksOrderOneKeyOnly(t *testing.T) {
	var l keyLocks
	unlock := l.lock("b", "k")

	// Another key is not held up.
	done := make(chan struct{})
	go func() {
		l.lock("b", "other")()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("lock of another key waited for b/k")
	}

	// The same key waits until it is unlocked.
	got := make(chan struct{})
	go func() {
		l.lock("b", "k")()
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("second lock of b/k did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	unlock()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("second lock of b/k not granted after unlock")
	}
	if len(l.held) != 0 {
		t.Fatalf("%d entries left after every unlock, want 0", len(l.held))
	}
}

func TestKeyLocksExclusive(t *testing.T) {
	var l keyLocks
	var wg sync.WaitGroup
	in := 0
	for range 8 {
		wg.Go(func() {
			for range 100 {
				unlock := l.lock("b", "k")
				in++
				if in != 1 {
					t.Errorf("%d holders of b/k at once", in)
				}
				in--
				unlock()
			}
		})
	}
	wg.Wait()
	if len(l.held) != 0 {
		t.Fatalf("%d entries left after every unlock, want 0", len(l.held))
	}
}

// TestSameGatewayWritesDoNotRace: a write of a key whose commit is held up
// on half its nodes is not overtaken there by a later write of the key
// through the same gateway; both are acknowledged and the later wins.
// Without the key's lock the later write reaches those nodes first, they
// refuse the earlier one, and it fails.
func TestSameGatewayWritesDoNotRace(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	first, second := payload(5000, 1), payload(6000, 2)
	release := make(chan struct{})
	held := make(chan struct{}, 6)
	for i, n := range c.list {
		n.Edit(func(st *nodetest.State) {
			st.BeforeCommit = func(meta client.ObjectMeta) {
				if i%2 == 0 && meta.Size == int64(len(first)) {
					held <- struct{}{}
					<-release
				}
			}
		})
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: int64(len(first)), Body: bytes.NewReader(first)})
		done <- err
	}()
	<-held // the first write's commit has begun
	later := make(chan error, 1)
	go func() {
		_, err := c.s.PutObject(context.Background(), PutInput{Bucket: testBucket, Key: "k", Size: int64(len(second)), Body: bytes.NewReader(second)})
		later <- err
	}()
	time.Sleep(100 * time.Millisecond) // time for the second to overtake, were it let
	close(release)
	if err := <-done; err != nil {
		t.Errorf("first write: %v", err)
	}
	if err := <-later; err != nil {
		t.Errorf("second write: %v", err)
	}
	c.mustGet("k", second)
}
