package objects

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/nodetest"
)

// TestReadWithCutNode: a node cut off from the network mid-read (every
// call to it hangs until its deadline, as behind a link that drops
// packets) while heartbeats open its breaker. A read the other answers
// settle does not wait for it at all; one they do not settle waits for it
// once, its call timeout, and never a second time through the breaker
// that opened meanwhile. Going through it again made such a read take two
// call timeouts, past a client's patience.
func TestReadWithCutNode(t *testing.T) {
	const callTimeout = 4 * time.Second
	for _, tc := range []struct {
		name string
		// unsettle leaves the key in a state the answers without the cut
		// node cannot settle.
		unsettle bool
		want     error // nil: the written data
		within   time.Duration
	}{
		{name: "settled", within: callTimeout / 2},
		// Two call timeouts would be 2*callTimeout.
		{name: "unsettled", unsettle: true, want: ErrQuorum, within: callTimeout * 3 / 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newHealthCluster(t, 6, 4, 2, func(cfg *Config) { cfg.CallTimeout = callTimeout })
			c.heartbeats()
			data := payload(3*4*testBlock+5, 9)
			c.put("k", data)
			if tc.unsettle {
				// Shards 0 and 1 keep the first version, the other
				// nodes commit a second: the first was acknowledged and
				// two of its shards are left, and the second is seen on
				// too few nodes to have been acknowledged unless the
				// cut node, silent, holds it.
				keep := map[int]*nodetest.Key{}
				for i := range 2 {
					c.shardNode("k", i).Edit(func(st *nodetest.State) { keep[i] = cloneKey(st.Keys[nodetest.KeyID(testBucket, "k")]) })
				}
				c.put("k", payload(len(data), 10))
				for i, k := range keep {
					c.shardNode("k", i).Edit(func(st *nodetest.State) { st.Keys[nodetest.KeyID(testBucket, "k")] = k })
				}
			}
			cut := c.shardNode("k", 5)
			cut.SetStall("*", true)
			start := time.Now()
			got, err := c.get("k")
			took := time.Since(start)
			switch {
			case tc.want == nil && (err != nil || !bytes.Equal(got, data)):
				t.Fatalf("get: %d bytes, %v; want the %d written", len(got), err, len(data))
			case tc.want != nil:
				wantErr(t, err, tc.want, kerr.Unavailable)
			}
			if took > tc.within {
				t.Fatalf("get took %v with node %s cut off (call timeout %v), want at most %v", took, cut.ID(), callTimeout, tc.within)
			}
		})
	}
}

// cloneKey copies what a fake node holds of a key.
func cloneKey(k *nodetest.Key) *nodetest.Key {
	c := *k
	rec := *k.Committed
	c.Committed = &rec
	c.Shard = slices.Clone(k.Shard)
	c.Staged = slices.Clone(k.Staged)
	return &c
}
