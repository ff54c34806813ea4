package placement

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrInvalidMap is wrapped by every error that reports a malformed or
// inconsistent cluster map.
var ErrInvalidMap = errors.New("invalid cluster map")

// maxProblems bounds how many problems one Validate error lists, so that a
// badly broken map of many nodes still gives a readable message.
const maxProblems = 10

// Parse decodes a cluster map from YAML (JSON is YAML), fills in defaults
// and validates it. Fields it does not know are ignored, so a newer map can
// carry more. Errors wrap ErrInvalidMap.
func Parse(data []byte) (*Map, error) {
	m, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("placement.Parse: %w", err)
	}
	return m, nil
}

// Load reads the cluster map in the file at path and parses it like Parse.
// Errors name the file.
func Load(path string) (*Map, error) {
	const op = "placement.Load"
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	m, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, path, err)
	}
	return m, nil
}

func parse(data []byte) (*Map, error) {
	var m Map
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMap, err)
	}
	d := m.WithDefaults()
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// Marshal encodes the map as YAML. Parse reads the YAML of a valid map with
// its defaults filled in back to an equal map.
func (m *Map) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("placement.Marshal: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("placement.Marshal: %w", err)
	}
	return b.Bytes(), nil
}

// WithDefaults returns a copy of m whose optional fields are filled in:
// Partitions, BlockSize, WriteQuorum (d+1, or a majority of n if that is
// more, at most n), and each node's
// Weight (1) and State (active). m is not modified.
func (m *Map) WithDefaults() *Map {
	c := *m
	c.Nodes = make([]Node, len(m.Nodes))
	copy(c.Nodes, m.Nodes)
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.BlockSize == 0 {
		c.BlockSize = DefaultBlockSize
	}
	if c.WriteQuorum == 0 {
		c.WriteQuorum = min(max(c.DataShards+1, c.N()/2+1), c.N())
	}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if n.Weight == 0 {
			n.Weight = 1
		}
		if n.State == "" {
			n.State = StateActive
		}
	}
	return &c
}

// Validate reports every problem of the map (up to a bound), each naming
// the field, as one error wrapping ErrInvalidMap; nil if the map is usable.
// Zero optional fields count as their defaults, so Validate gives the same
// answer for m and m.WithDefaults().
func (m *Map) Validate() error {
	var v validator
	m = m.WithDefaults()
	d, p := m.DataShards, m.ParityShards
	shardsOK := true
	if d < MinDataShards || d > MaxDataShards {
		v.addf("data_shards: %d out of range [%d, %d]", d, MinDataShards, MaxDataShards)
		shardsOK = false
	}
	if p < MinParityShards || p > MaxParityShards {
		v.addf("parity_shards: %d out of range [%d, %d]", p, MinParityShards, MaxParityShards)
		shardsOK = false
	}
	if m.Partitions < 1 {
		v.addf("partitions: %d is less than 1", m.Partitions)
	}
	if m.BlockSize < MinBlockSize || m.BlockSize > MaxBlockSize {
		v.addf("block_size: %d out of range [%d, %d]", m.BlockSize, MinBlockSize, MaxBlockSize)
	}
	// Every two acknowledged writes of a key must have committed on a
	// common node, which refuses the older one after the newer: that,
	// not any clock, is what orders writes (docs/ordering.md). So a
	// write quorum is more than half of the object's n nodes.
	if lo := max(d, m.N()/2+1); shardsOK && (m.WriteQuorum < lo || m.WriteQuorum > m.N()) {
		v.addf("write_quorum: %d out of range [%d, %d] (at least d, and more than half of n)", m.WriteQuorum, lo, m.N())
	}

	ids := make(map[string]int, len(m.Nodes))
	addrs := make(map[string]int, len(m.Nodes))
	active, unknownState := 0, false
	for i, n := range m.Nodes {
		switch {
		case n.ID == "":
			v.addf("nodes[%d].id: empty", i)
		case ids[n.ID] > 0:
			v.addf("nodes[%d].id: duplicate id %q (also nodes[%d])", i, n.ID, ids[n.ID]-1)
		default:
			ids[n.ID] = i + 1
		}
		switch {
		case n.Addr == "":
			v.addf("nodes[%d].addr: empty", i)
		case !validAddr(n.Addr):
			v.addf("nodes[%d].addr: %q is not host:port", i, n.Addr)
		case n.State == StateRemoved:
			// A removed node stays in the map only to resolve older epochs;
			// the node replacing it may take over its address.
		case addrs[n.Addr] > 0:
			v.addf("nodes[%d].addr: duplicate addr %q (also nodes[%d])", i, n.Addr, addrs[n.Addr]-1)
		default:
			addrs[n.Addr] = i + 1
		}
		switch {
		case n.Weight < 0:
			v.addf("nodes[%d].weight: negative weight %v", i, n.Weight)
		case math.IsNaN(n.Weight) || math.IsInf(n.Weight, 0):
			v.addf("nodes[%d].weight: invalid weight %v", i, n.Weight)
		}
		switch n.State {
		case StateActive:
			active++
		case StateDraining, StateRemoved:
		default:
			v.addf("nodes[%d].state: unknown state %q (want %s, %s or %s)",
				i, n.State, StateActive, StateDraining, StateRemoved)
			unknownState = true
		}
	}
	// With a state unknown the count of active nodes means nothing.
	if shardsOK && !unknownState && active < m.N() {
		v.addf("nodes: %d active nodes, fewer than n = data_shards + parity_shards = %d", active, m.N())
	}
	return v.err()
}

// validAddr reports whether addr is host:port with a non-empty host and a
// numeric port in 1..65535, optionally after "http://" or "https://" (a
// node served over TLS): the map's addresses are dialled, not listened on.
func validAddr(addr string) bool {
	if rest, ok := strings.CutPrefix(addr, "https://"); ok {
		addr = rest
	} else if rest, ok := strings.CutPrefix(addr, "http://"); ok {
		addr = rest
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && n > 0
}

type validator struct {
	problems []string
	more     int
}

func (v *validator) addf(format string, args ...any) {
	if len(v.problems) == maxProblems {
		v.more++
		return
	}
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	msg := strings.Join(v.problems, "; ")
	if v.more > 0 {
		msg += fmt.Sprintf("; and %d more", v.more)
	}
	return fmt.Errorf("%w: %s", ErrInvalidMap, msg)
}

// N returns the number of shards per stripe, d+p.
func (m *Map) N() int { return m.DataShards + m.ParityShards }

// RaisedQuorum is the write quorum of a version written with k of its n
// nodes known down and its parity raised by k (see docs/ordering.md):
// max(n/2+1, WriteQuorum-k), never above WriteQuorum. It stays a majority
// of n, so any two acknowledged writes of a key share a node, and with d-k
// data shards it leaves at least as many shards beyond d-k as WriteQuorum
// leaves beyond d.
func (m *Map) RaisedQuorum(k int) int {
	return min(m.WriteQuorum, max(m.N()/2+1, m.WriteQuorum-max(k, 0)))
}

// MinWriteQuorum is the smallest write quorum any version of the map may
// have been acknowledged under: RaisedQuorum(p). Readers take it for
// versions they have not seen, which may have been written while p nodes
// were down.
func (m *Map) MinWriteQuorum() int { return m.RaisedQuorum(m.ParityShards) }

// Node returns the node with the given id, whatever its state.
func (m *Map) Node(id string) (Node, bool) {
	for _, n := range m.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}
