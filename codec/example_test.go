package codec_test

import (
	"bytes"
	"fmt"
	"io"
	"log"

	"github.com/kintsugi-store/kintsugi/codec"
)

func ExampleCodec_Encode() {
	c, err := codec.New(4, 2)
	if err != nil {
		log.Fatal(err)
	}
	object := []byte("Kintsugi: the art of golden repair.")

	// Encode into six shard streams; here they are buffers, in a cluster
	// each goes to its own storage node.
	shards := make([]*bytes.Buffer, c.Data()+c.Parity())
	ws := make([]io.Writer, len(shards))
	for i := range shards {
		shards[i] = new(bytes.Buffer)
		ws[i] = shards[i]
	}
	enc, err := c.Encode(bytes.NewReader(object), ws)
	if err != nil {
		log.Fatal(err)
	}
	l := c.Layout(enc.Size)
	fmt.Printf("%d bytes in %d stripe, shards of %d bytes\n", enc.Size, l.Stripes(), l.ShardSize())

	// Lose a data shard and a parity shard, then read bytes 10..23 back.
	rs := make([]io.Reader, len(shards))
	for i, s := range shards {
		if i != 1 && i != 4 {
			rs[i] = bytes.NewReader(s.Bytes())
		}
	}
	var out bytes.Buffer
	rep, err := c.Decode(&out, rs, enc.Size, 10, 14)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", out.String())
	for _, f := range rep.Failed {
		fmt.Printf("repair shard %d\n", f.Shard)
	}

	// Each shard can be checked where it lies against its root digest.
	fmt.Println(codec.VerifyShard(bytes.NewReader(shards[0].Bytes()), l, 0, enc.Roots[0]))
	// Output:
	// 35 bytes in 1 stripe, shards of 41 bytes
	// "the art of gol"
	// repair shard 1
	// repair shard 4
	// <nil>
}
