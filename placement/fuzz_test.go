package placement

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, fail only
// with ErrInvalidMap, and any map it accepts must place every partition on
// N distinct active nodes and survive a Marshal/Parse round trip.
func FuzzParse(f *testing.F) {
	f.Add([]byte(exampleYAML))
	f.Add([]byte(withNode("partitions: 7\nwrite_quorum: 6\n", 2, "{id: x, addr: 'h:1', weight: 3.5, zone: z1}")))
	f.Add([]byte(`{"data_shards": 2, "parity_shards": 1, "partitions": 3, "nodes": [` +
		`{"id": "a", "addr": "a:1"}, {"id": "b", "addr": "b:1", "weight": 1e-300}, {"id": "c", "addr": "c:1", "weight": 1e300}]}`))
	f.Add([]byte("data_shards: 1\nparity_shards: 0\nnodes: [{id: a, addr: 'a:1', state: draining}, {id: b, addr: 'b:1'}]\n"))
	f.Add([]byte("data_shards: [4\n"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidMap) {
				t.Fatalf("Parse error %v does not wrap ErrInvalidMap", err)
			}
			return
		}
		parts := []int{0, m.Partitions - 1, m.Partition("bucket", "key"), m.Partition("", "")}
		for _, p := range parts {
			checkList(t, p, m.Place(p), m.N())
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a valid map: %v", err)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(m)): %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, m) {
			t.Fatalf("Parse(Marshal(m)) = %+v, want %+v", back, m)
		}
	})
}
