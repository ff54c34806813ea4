package storagenode

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// TestLocalTrustFrames checks what LocalOptions.TrustFrames changes: the
// blocks are not checked against their digests (so a flipped byte goes
// through, which a verifying stage refuses), while the root, the size and
// the checks of the frame layout stay those of a verifying stage, for
// shards kept in the index (packed) and in files of their own.
func TestLocalTrustFrames(t *testing.T) {
	for _, packMax := range []int64{0, DefaultPackMax} {
		tn := startNode(t, "", func(c *Config) { c.PackMax = packMax })
		ctx := context.Background()
		checked := NewLocal(tn.Node, nil)
		trusted := NewLocal(tn.Node, &LocalOptions{TrustFrames: true})
		o := encode(t, 10*testBlock+123, 3)
		shard := o.shards[1]

		want, err := checked.Stage(ctx, "b", "checked", ver(1), 1, testBlock, bytes.NewReader(shard))
		if err != nil {
			t.Fatalf("pack max %d: checked stage: %v", packMax, err)
		}
		got, err := trusted.Stage(ctx, "b", "trusted", ver(1), 1, testBlock, bytes.NewReader(shard))
		if err != nil {
			t.Fatalf("pack max %d: trusted stage: %v", packMax, err)
		}
		if got.Root != want.Root || got.Size != want.Size || got.Root != o.roots[1].String() {
			t.Errorf("pack max %d: trusted stage %s/%d, checked %s/%d, encoder's root %s", packMax, got.Root, got.Size, want.Root, want.Size, o.roots[1])
		}
		if _, err := trusted.Commit(ctx, o.meta("b", "trusted", ver(1))); err != nil {
			t.Fatalf("pack max %d: committing the trusted stage: %v", packMax, err)
		}
		if b := tn.readAll(t, "b", "trusted", ver(1), 1); !bytes.Equal(b, shard) {
			t.Errorf("pack max %d: the trusted stage stored other bytes", packMax)
		}
		// Read back in process too, from a pack or a file of its own.
		rc, err := checked.ReadShard(ctx, "b", "trusted", ver(1), 1, 100, 5000)
		if err != nil {
			t.Fatalf("pack max %d: Local.ReadShard: %v", packMax, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(b, shard[100:5100]) {
			t.Errorf("pack max %d: Local.ReadShard read %d bytes (%v), not the shard's range", packMax, len(b), err)
		}

		flipped := bytes.Clone(shard)
		flipped[codec.DigestSize+testBlock+codec.DigestSize+9] ^= 1 // in the second block
		if _, err := checked.Stage(ctx, "b", "flip", ver(2), 1, testBlock, bytes.NewReader(flipped)); !kerr.Is(kerr.Corrupt, err) {
			t.Errorf("pack max %d: checked stage of a flipped block: %v, want Corrupt", packMax, err)
		}
		if ref, err := trusted.Stage(ctx, "b", "flip", ver(2), 1, testBlock, bytes.NewReader(flipped)); err != nil || ref.Root != want.Root {
			t.Errorf("pack max %d: trusted stage of a flipped block: %+v, %v; want it staged unchecked with root %s", packMax, ref, err, want.Root)
		}

		for _, cut := range []struct {
			name string
			n    int
		}{
			{"inside a digest", codec.DigestSize + testBlock + 5},
			{"digest without a block", codec.DigestSize + testBlock + codec.DigestSize},
		} {
			for _, l := range []*Local{checked, trusted} {
				_, err := l.Stage(ctx, "b", "cut", ver(3), 1, testBlock, bytes.NewReader(shard[:cut.n]))
				if !kerr.Is(kerr.Invalid, err) {
					t.Errorf("pack max %d, trust %v: stream cut %s: %v, want Invalid", packMax, l.opts.TrustFrames, cut.name, err)
				}
			}
		}
	}
}
