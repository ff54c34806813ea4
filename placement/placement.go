package placement

// Node states.
const (
	StateActive   = "active"   // takes new shards
	StateDraining = "draining" // keeps serving, gets no new placements
	StateRemoved  = "removed"  // kept only so old epochs can be resolved
)

// Node is one storage node in the map.
type Node struct {
	ID     string  `yaml:"id" json:"id"`
	Addr   string  `yaml:"addr" json:"addr"` // host:port, or https://host:port for a node serving TLS
	Zone   string  `yaml:"zone" json:"zone"`
	Weight float64 `yaml:"weight,omitempty" json:"weight,omitempty"` // 0 means 1
	State  string  `yaml:"state,omitempty" json:"state,omitempty"`   // "" means active
}

// Map is the cluster map. Zero values of optional fields mean defaults;
// Parse/Load fill them in.
type Map struct {
	Epoch        uint64 `yaml:"epoch" json:"epoch"`
	DataShards   int    `yaml:"data_shards" json:"data_shards"`
	ParityShards int    `yaml:"parity_shards" json:"parity_shards"`
	Partitions   int    `yaml:"partitions,omitempty" json:"partitions,omitempty"`     // default 4096
	BlockSize    int    `yaml:"block_size,omitempty" json:"block_size,omitempty"`     // default 256 KiB
	WriteQuorum  int    `yaml:"write_quorum,omitempty" json:"write_quorum,omitempty"` // default min(max(d+1, n/2+1), n); 2·WriteQuorum > n
	Nodes        []Node `yaml:"nodes" json:"nodes"`
}

// Defaults and limits of the map's fields.
const (
	DefaultPartitions = 4096
	DefaultBlockSize  = 256 << 10

	MinDataShards, MaxDataShards     = 1, 16
	MinParityShards, MaxParityShards = 0, 8
	MinBlockSize, MaxBlockSize       = 4 << 10, 16 << 20
)
