package placement

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// exampleYAML is the map from the package contract: 4+2 over six nodes in
// three zones.
const exampleYAML = `
data_shards: 4
parity_shards: 2
nodes:
  - {id: n1, addr: 127.0.0.1:9101, zone: z1}
  - {id: n2, addr: 127.0.0.1:9102, zone: z1}
  - {id: n3, addr: 127.0.0.1:9103, zone: z2}
  - {id: n4, addr: 127.0.0.1:9104, zone: z2}
  - {id: n5, addr: 127.0.0.1:9105, zone: z3}
  - {id: n6, addr: 127.0.0.1:9106, zone: z3}
`

// withNode returns a 4+2 map of six valid nodes in which node i's fields
// are replaced by node (a flow mapping), and header is prepended.
func withNode(header string, i int, node string) string {
	var b strings.Builder
	b.WriteString(header)
	if !strings.Contains(header, "data_shards") {
		b.WriteString("data_shards: 4\n")
	}
	if !strings.Contains(header, "parity_shards") {
		b.WriteString("parity_shards: 2\n")
	}
	b.WriteString("nodes:\n")
	for j := range 6 {
		if j == i {
			fmt.Fprintf(&b, "  - %s\n", node)
			continue
		}
		fmt.Fprintf(&b, "  - {id: n%d, addr: 127.0.0.1:91%02d, zone: z%d}\n", j, j, j)
	}
	return b.String()
}

func TestParseErrors(t *testing.T) {
	const prefix = "placement.Parse: invalid cluster map: "
	tests := []struct {
		name string
		yaml string
		want string // after prefix
	}{
		{"duplicate id", withNode("", 3, "{id: n1, addr: 127.0.0.1:9199}"),
			`nodes[3].id: duplicate id "n1" (also nodes[1])`},
		{"duplicate addr", withNode("", 4, "{id: x, addr: 127.0.0.1:9100}"),
			`nodes[4].addr: duplicate addr "127.0.0.1:9100" (also nodes[0])`},
		{"empty id", withNode("", 0, "{addr: 127.0.0.1:9199}"),
			`nodes[0].id: empty`},
		{"empty addr", withNode("", 2, "{id: x}"),
			`nodes[2].addr: empty`},
		{"addr without port", withNode("", 1, "{id: x, addr: localhost}"),
			`nodes[1].addr: "localhost" is not host:port`},
		{"addr empty port", withNode("", 1, "{id: x, addr: 'localhost:'}"),
			`nodes[1].addr: "localhost:" is not host:port`},
		{"addr without host", withNode("", 1, "{id: x, addr: ':9101'}"),
			`nodes[1].addr: ":9101" is not host:port`},
		{"addr named port", withNode("", 1, "{id: x, addr: 'localhost:http'}"),
			`nodes[1].addr: "localhost:http" is not host:port`},
		{"addr port too big", withNode("", 1, "{id: x, addr: 'localhost:65536'}"),
			`nodes[1].addr: "localhost:65536" is not host:port`},
		{"addr port zero", withNode("", 1, "{id: x, addr: 'localhost:0'}"),
			`nodes[1].addr: "localhost:0" is not host:port`},
		{"addr bare ipv6", withNode("", 1, "{id: x, addr: '::1:9101'}"),
			`nodes[1].addr: "::1:9101" is not host:port`},
		{"addr with another scheme", withNode("", 1, "{id: x, addr: 'ftp://h:9101'}"),
			`nodes[1].addr: "ftp://h:9101" is not host:port`},
		{"https addr without port", withNode("", 1, "{id: x, addr: 'https://h'}"),
			`nodes[1].addr: "https://h" is not host:port`},
		{"negative weight", withNode("", 5, "{id: x, addr: 'h:1', weight: -1}"),
			`nodes[5].weight: negative weight -1`},
		{"nan weight", withNode("", 5, "{id: x, addr: 'h:1', weight: .nan}"),
			`nodes[5].weight: invalid weight NaN`},
		{"infinite weight", withNode("", 5, "{id: x, addr: 'h:1', weight: .inf}"),
			`nodes[5].weight: invalid weight +Inf`},
		{"unknown state", withNode("", 2, "{id: x, addr: 'h:1', state: dead}"),
			`nodes[2].state: unknown state "dead" (want active, draining or removed)`},
		{"state is case sensitive", withNode("", 2, "{id: x, addr: 'h:1', state: Active}"),
			`nodes[2].state: unknown state "Active" (want active, draining or removed)`},
		{"data_shards zero", withNode("data_shards: 0\n", -1, ""),
			`data_shards: 0 out of range [1, 16]`},
		{"data_shards missing", "parity_shards: 2\nnodes: []\n",
			`data_shards: 0 out of range [1, 16]`},
		{"data_shards too many", withNode("data_shards: 17\n", -1, ""),
			`data_shards: 17 out of range [1, 16]`},
		{"parity_shards negative", withNode("parity_shards: -1\n", -1, ""),
			`parity_shards: -1 out of range [0, 8]`},
		{"parity_shards too many", withNode("parity_shards: 9\n", -1, ""),
			`parity_shards: 9 out of range [0, 8]`},
		{"too few active nodes", withNode("", 5, "{id: x, addr: 'h:1', state: draining}"),
			`nodes: 5 active nodes, fewer than n = data_shards + parity_shards = 6`},
		{"too few nodes", withNode("data_shards: 6\n", -1, ""),
			`nodes: 6 active nodes, fewer than n = data_shards + parity_shards = 8`},
		{"write_quorum below d", withNode("write_quorum: 3\n", -1, ""),
			`write_quorum: 3 out of range [4, 6] (at least d, and more than half of n)`},
		{"write_quorum above n", withNode("write_quorum: 7\n", -1, ""),
			`write_quorum: 7 out of range [4, 6] (at least d, and more than half of n)`},
		// Two writes acknowledged by 3 of 6 nodes each need not share a
		// node, and nothing would order them.
		{"write_quorum not a majority", withNode("data_shards: 2\nparity_shards: 4\nwrite_quorum: 3\n", -1, ""),
			`write_quorum: 3 out of range [4, 6] (at least d, and more than half of n)`},
		{"partitions negative", withNode("partitions: -1\n", -1, ""),
			`partitions: -1 is less than 1`},
		{"block_size too small", withNode("block_size: 4095\n", -1, ""),
			`block_size: 4095 out of range [4096, 16777216]`},
		{"block_size too big", withNode("block_size: 16777217\n", -1, ""),
			`block_size: 16777217 out of range [4096, 16777216]`},
		{"several problems", withNode("block_size: 1\npartitions: -5\n", 0, "{id: '', addr: 'x', state: gone}"),
			`partitions: -5 is less than 1; block_size: 1 out of range [4096, 16777216]; ` +
				`nodes[0].id: empty; nodes[0].addr: "x" is not host:port; ` +
				`nodes[0].state: unknown state "gone" (want active, draining or removed)`},
		{"problems are capped", "data_shards: 1\nnodes: [{}, {}, {}, {}, {}, {}]\n",
			`nodes[0].id: empty; nodes[0].addr: empty; nodes[1].id: empty; nodes[1].addr: empty; ` +
				`nodes[2].id: empty; nodes[2].addr: empty; nodes[3].id: empty; nodes[3].addr: empty; ` +
				`nodes[4].id: empty; nodes[4].addr: empty; and 2 more`},
		{"not yaml", "data_shards: [4\n",
			`yaml: line 1: did not find expected ',' or ']'`},
		{"wrong type", "data_shards: four\n",
			"yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `four` into int"},
		{"empty", "", `data_shards: 0 out of range [1, 16]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse = %+v, want error %q", m, tt.want)
			}
			if got := err.Error(); got != prefix+tt.want {
				t.Errorf("Parse error\n got %q\nwant %q", got, prefix+tt.want)
			}
			if !errors.Is(err, ErrInvalidMap) {
				t.Errorf("Parse error %v does not wrap ErrInvalidMap", err)
			}
		})
	}
}

func TestParseExample(t *testing.T) {
	m, err := Parse([]byte(exampleYAML))
	if err != nil {
		t.Fatal(err)
	}
	want := &Map{
		DataShards:   4,
		ParityShards: 2,
		Partitions:   DefaultPartitions,
		BlockSize:    256 << 10,
		WriteQuorum:  5,
	}
	for i := 1; i <= 6; i++ {
		want.Nodes = append(want.Nodes, Node{
			ID:     fmt.Sprintf("n%d", i),
			Addr:   fmt.Sprintf("127.0.0.1:910%d", i),
			Zone:   fmt.Sprintf("z%d", (i+1)/2),
			Weight: 1,
			State:  StateActive,
		})
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", m, want)
	}
	if m.N() != 6 {
		t.Errorf("N = %d, want 6", m.N())
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		input string
		check func(*Map) error
	}{
		{"unknown fields", `
owner: storage-team
data_shards: 4
parity_shards: 2
placement_policy: {kind: rendezvous, version: 2}
nodes:
  - {id: n1, addr: 127.0.0.1:9101, zone: z1, rack: r1, disks: [sda, sdb]}
  - {id: n2, addr: 127.0.0.1:9102, zone: z1}
  - {id: n3, addr: 127.0.0.1:9103, zone: z2}
  - {id: n4, addr: 127.0.0.1:9104, zone: z2}
  - {id: n5, addr: 127.0.0.1:9105, zone: z3}
  - {id: n6, addr: 127.0.0.1:9106, zone: z3}
`, func(m *Map) error {
			if len(m.Nodes) != 6 || m.Nodes[0].ID != "n1" {
				return fmt.Errorf("nodes = %+v", m.Nodes)
			}
			return nil
		}},
		{"json", `{"epoch": 7, "data_shards": 1, "parity_shards": 0,
			"nodes": [{"id": "a", "addr": "[::1]:9101", "zone": "z", "weight": 2.5, "extra": null}]}`,
			func(m *Map) error {
				want := Node{ID: "a", Addr: "[::1]:9101", Zone: "z", Weight: 2.5, State: StateActive}
				if m.Epoch != 7 || m.WriteQuorum != 1 || m.Nodes[0] != want {
					return fmt.Errorf("got %+v", m)
				}
				return nil
			}},
		{"explicit values kept", withNode("epoch: 3\npartitions: 256\nblock_size: 1048576\nwrite_quorum: 6\n", 0,
			"{id: x, addr: 'h:1', weight: 3, state: active}"), func(m *Map) error {
			if m.Epoch != 3 || m.Partitions != 256 || m.BlockSize != 1<<20 || m.WriteQuorum != 6 || m.Nodes[0].Weight != 3 {
				return fmt.Errorf("got %+v", m)
			}
			return nil
		}},
		{"draining and removed beyond n", withNode("", 0,
			"{id: x, addr: 'h:1', state: removed}") + "  - {id: y, addr: 'h:2', state: draining}\n  - {id: z, addr: 'h:3'}\n",
			func(m *Map) error {
				if m.Nodes[0].State != StateRemoved || m.Nodes[6].State != StateDraining || m.Nodes[7].State != StateActive {
					return fmt.Errorf("got %+v", m.Nodes)
				}
				return nil
			}},
		{"removed node may share an addr", withNode("", 0,
			"{id: old, addr: '127.0.0.1:9101', state: removed}") + "  - {id: n6, addr: 'h:6'}\n", nil},
		{"no parity", withNode("data_shards: 6\nparity_shards: 0\n", -1, ""), func(m *Map) error {
			if m.WriteQuorum != 6 {
				return fmt.Errorf("write_quorum = %d, want 6 (d+1 capped at n)", m.WriteQuorum)
			}
			return nil
		}},
		{"limits", withNode("data_shards: 1\nparity_shards: 0\nblock_size: 4096\npartitions: 1\n", -1, ""), nil},
		{"upper limits", withNode("data_shards: 2\nparity_shards: 4\nblock_size: 16777216\n", -1, ""), func(m *Map) error {
			if m.WriteQuorum != 4 {
				return fmt.Errorf("write_quorum = %d, want 4 (a majority of 6, above d+1)", m.WriteQuorum)
			}
			return nil
		}},
		{"zero weight means one", withNode("", 0, "{id: x, addr: 'h:1', weight: 0}"), func(m *Map) error {
			if m.Nodes[0].Weight != 1 {
				return fmt.Errorf("weight = %v", m.Nodes[0].Weight)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				if err := tt.check(m); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	m := &Map{DataShards: 4, ParityShards: 2, Nodes: []Node{{ID: "a", Addr: "h:1"}, {ID: "b", Addr: "h:2", Weight: 2, State: StateDraining}}}
	d := m.WithDefaults()
	want := &Map{DataShards: 4, ParityShards: 2, Partitions: 4096, BlockSize: 256 << 10, WriteQuorum: 5, Nodes: []Node{
		{ID: "a", Addr: "h:1", Weight: 1, State: StateActive},
		{ID: "b", Addr: "h:2", Weight: 2, State: StateDraining},
	}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("WithDefaults =\n%+v\nwant\n%+v", d, want)
	}
	if m.Partitions != 0 || m.Nodes[0].Weight != 0 || m.Nodes[0].State != "" {
		t.Errorf("WithDefaults modified its receiver: %+v", m)
	}
	if !reflect.DeepEqual(d.WithDefaults(), d) {
		t.Error("WithDefaults is not idempotent")
	}
}

func TestValidateZeroMeansDefault(t *testing.T) {
	m := makeMap(6, 3, 4, 2)
	if err := m.Validate(); err != nil {
		t.Errorf("Validate of a map without defaults: %v", err)
	}
	m.Nodes[5].State = StateDraining
	err := m.Validate()
	const want = "invalid cluster map: nodes: 5 active nodes, fewer than n = data_shards + parity_shards = 6"
	if err == nil || err.Error() != want {
		t.Errorf("Validate = %v, want %q", err, want)
	}
}

func TestMarshal(t *testing.T) {
	m := &Map{
		Epoch:        2,
		DataShards:   2,
		ParityShards: 1,
		Partitions:   64,
		BlockSize:    4096,
		WriteQuorum:  3,
		Nodes: []Node{
			{ID: "a", Addr: "10.0.0.1:9100", Zone: "z1", Weight: 1, State: StateActive},
			{ID: "b", Addr: "10.0.0.2:9100", Zone: "z2", Weight: 1.5, State: StateActive},
			{ID: "c", Addr: "[fd00::3]:9100", Zone: "z3", Weight: 1, State: StateDraining},
			{ID: "d", Addr: "10.0.0.4:9100", Zone: "z3", Weight: 1, State: StateActive},
		},
	}
	got, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	const want = `epoch: 2
data_shards: 2
parity_shards: 1
partitions: 64
block_size: 4096
write_quorum: 3
nodes:
  - id: a
    addr: 10.0.0.1:9100
    zone: z1
    weight: 1
    state: active
  - id: b
    addr: 10.0.0.2:9100
    zone: z2
    weight: 1.5
    state: active
  - id: c
    addr: '[fd00::3]:9100'
    zone: z3
    weight: 1
    state: draining
  - id: d
    addr: 10.0.0.4:9100
    zone: z3
    weight: 1
    state: active
`
	if string(got) != want {
		t.Errorf("Marshal =\n%s\nwant\n%s", got, want)
	}
	back, err := Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("Parse(Marshal(m)) =\n%+v\nwant\n%+v", back, m)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "map.yaml")
	if err := os.WriteFile(good, []byte(exampleYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Parse([]byte(exampleYAML))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("Load = %+v, want %+v", m, want)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("data_shards: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	wantMsg := "placement.Load " + bad + ": invalid cluster map: data_shards: 0 out of range [1, 16]"
	if err == nil || err.Error() != wantMsg || !errors.Is(err, ErrInvalidMap) {
		t.Errorf("Load(bad) = %v, want %q wrapping ErrInvalidMap", err, wantMsg)
	}

	missing := filepath.Join(dir, "missing.yaml")
	_, err = Load(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing) = %v, want a not-exist error naming the file", err)
	}
}

func TestNode(t *testing.T) {
	m, err := Parse([]byte(withNode("", 2, "{id: gone, addr: 'h:1', state: removed}") + "  - {id: spare, addr: 'h:2'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id   string
		want Node
		ok   bool
	}{
		{"n0", Node{ID: "n0", Addr: "127.0.0.1:9100", Zone: "z0", Weight: 1, State: StateActive}, true},
		{"gone", Node{ID: "gone", Addr: "h:1", Weight: 1, State: StateRemoved}, true},
		{"spare", Node{ID: "spare", Addr: "h:2", Weight: 1, State: StateActive}, true},
		{"n2", Node{}, false},
		{"", Node{}, false},
	}
	for _, tt := range tests {
		got, ok := m.Node(tt.id)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Node(%q) = %+v, %v; want %+v, %v", tt.id, got, ok, tt.want, tt.ok)
		}
	}
}
