package placement_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/kintsugi-store/kintsugi/placement"
)

func Example() {
	m, err := placement.Parse([]byte(`
data_shards: 4
parity_shards: 2
nodes:
  - {id: n1, addr: 127.0.0.1:9101, zone: z1}
  - {id: n2, addr: 127.0.0.1:9102, zone: z1}
  - {id: n3, addr: 127.0.0.1:9103, zone: z2}
  - {id: n4, addr: 127.0.0.1:9104, zone: z2}
  - {id: n5, addr: 127.0.0.1:9105, zone: z3}
  - {id: n6, addr: 127.0.0.1:9106, zone: z3}
`))
	if err != nil {
		log.Fatal(err)
	}
	p := m.Partition("photos", "cat.jpg")
	fmt.Println("partition", p, "of", m.Partitions, "write quorum", m.WriteQuorum)
	for i, n := range m.Place(p) {
		fmt.Printf("shard %d on %s (%s, %s)\n", i, n.ID, n.Addr, n.Zone)
	}
	// Output:
	// partition 3516 of 4096 write quorum 5
	// shard 0 on n5 (127.0.0.1:9105, z3)
	// shard 1 on n4 (127.0.0.1:9104, z2)
	// shard 2 on n1 (127.0.0.1:9101, z1)
	// shard 3 on n2 (127.0.0.1:9102, z1)
	// shard 4 on n6 (127.0.0.1:9106, z3)
	// shard 5 on n3 (127.0.0.1:9103, z2)
}

// A change is a value applied to whatever map is current: here one
// prepared at epoch 1 applies once, and again it conflicts, because the
// first application moved the map on.
func ExampleMap_Apply() {
	m, err := placement.Parse([]byte(`
epoch: 1
data_shards: 2
parity_shards: 1
nodes:
  - {id: n1, addr: 127.0.0.1:9101, zone: z1}
  - {id: n2, addr: 127.0.0.1:9102, zone: z2}
  - {id: n3, addr: 127.0.0.1:9103, zone: z3}
  - {id: n4, addr: 127.0.0.1:9104, zone: z4}
`))
	if err != nil {
		log.Fatal(err)
	}
	c := placement.DrainNode("n2").Expecting(1)
	enc, _ := c.Marshal()
	fmt.Printf("%s\n", enc)

	next, err := m.Apply(c)
	if err != nil {
		log.Fatal(err)
	}
	n2, _ := next.Node("n2")
	fmt.Println(c, "-> epoch", next.Epoch, "n2", n2.State)

	_, err = next.Apply(c)
	fmt.Println(errors.Is(err, placement.ErrConflict), err)
	_, err = next.Apply(placement.DrainNode("n3"))
	fmt.Println(errors.Is(err, placement.ErrInvalidMap))
	// Output:
	// {"op":"drain","id":"n2","expect_epoch":1}
	// drain n2 -> epoch 2 n2 draining
	// true map epoch is 2, not the expected 1
	// true
}
