package placement

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func TestPartition(t *testing.T) {
	m := makeMap(6, 0, 4, 2)
	for _, c := range []struct{ bucket, key string }{
		{"", ""}, {"b", ""}, {"", "k"}, {"photos", "2024/06/01/IMG_0001.jpg"},
		{"photos", "2024/06/01/IMG_0002.jpg"}, {"b", "key with spaces/and/ünïcödé"},
	} {
		p := m.Partition(c.bucket, c.key)
		if want := int(xxhash.Sum64String(c.bucket+"\x00"+c.key) % DefaultPartitions); p != want {
			t.Errorf("Partition(%q, %q) = %d, want %d", c.bucket, c.key, p, want)
		}
		if !slices.Equal(ids(m.PlaceKey(c.bucket, c.key)), ids(m.Place(p))) {
			t.Errorf("PlaceKey(%q, %q) differs from Place(Partition(...))", c.bucket, c.key)
		}
		m8 := *m
		m8.Partitions = 8
		if got := m8.Partition(c.bucket, c.key); got != p%8 {
			// 4096 is a multiple of 8: the same hash mod 8.
			t.Errorf("Partition(%q, %q) with 8 partitions = %d, want %d", c.bucket, c.key, got, p%8)
		}
	}
	// The separator keeps the bucket/key boundary in the hash.
	if m.Partition("ab", "c") == m.Partition("a", "bc") {
		t.Errorf(`Partition("ab", "c") == Partition("a", "bc")`)
	}
}

func TestPartitionSpread(t *testing.T) {
	m := &Map{Partitions: 64}
	counts := make([]int, 64)
	const keys = 64 * 200
	for i := range keys {
		counts[m.Partition("bucket", string(rune('a'+i%26))+string(rune(i)))]++
	}
	for p, c := range counts {
		// 200 expected; binomial sd is about 14.
		if c < 140 || c > 260 {
			t.Errorf("partition %d got %d of %d keys, want about 200", p, c, keys)
		}
	}
}

func TestPlaceZoneSpread(t *testing.T) {
	tests := []struct {
		name      string
		zoneSizes []int // nodes per zone
		d, p      int
		maxZone   int   // most slots any zone may hold in one partition
		wantZones []int // if set, the sorted slots per zone every partition has
	}{
		{"6 nodes in 6 zones", []int{1, 1, 1, 1, 1, 1}, 4, 2, 1, []int{1, 1, 1, 1, 1, 1}},
		{"8 nodes in 4 zones", []int{2, 2, 2, 2}, 4, 2, 2, []int{1, 1, 2, 2}},
		{"6 nodes in 1 zone", []int{6}, 4, 2, 6, []int{6}},
		{"12 nodes in 3 zones 8+3", []int{4, 4, 4}, 8, 3, 4, []int{3, 4, 4}},
		{"uneven zones at least n", []int{5, 1, 1, 1, 1, 1}, 4, 2, 1, []int{1, 1, 1, 1, 1, 1}},
		{"uneven zones fewer than n", []int{4, 3, 1}, 4, 2, 3, []int{1, 2, 3}},
		{"one big zone and one node", []int{10, 1}, 4, 2, 5, []int{1, 5}},
		{"more zones than n", []int{2, 2, 2, 2, 2, 2, 2, 2}, 4, 2, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Map{DataShards: tt.d, ParityShards: tt.p}
			for z, size := range tt.zoneSizes {
				for range size {
					n := makeNode(len(m.Nodes), 0)
					n.Zone = string(rune('a' + z))
					m.Nodes = append(m.Nodes, n)
				}
			}
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
			for p, list := range placements(m) {
				checkList(t, p, list, m.N())
				perZone := make(map[string]int)
				for _, n := range list {
					perZone[n.Zone]++
				}
				var got []int
				for _, c := range perZone {
					got = append(got, c)
				}
				slices.Sort(got)
				if got[len(got)-1] > tt.maxZone || (tt.wantZones != nil && !slices.Equal(got, tt.wantZones)) {
					t.Fatalf("partition %d: slots per zone %v (%v), want %v, at most %d per zone",
						p, perZone, ids(list), tt.wantZones, tt.maxZone)
				}
			}
		})
	}
}

func TestPlaceOrderIndependent(t *testing.T) {
	m := makeMap(30, 5, 8, 3)
	for i := range m.Nodes {
		m.Nodes[i].Weight = float64(1 + i%4)
	}
	want := placements(m)
	r := rand.New(rand.NewPCG(1, 2))
	for range 3 {
		s := *m
		s.Nodes = slices.Clone(m.Nodes)
		r.Shuffle(len(s.Nodes), func(i, j int) { s.Nodes[i], s.Nodes[j] = s.Nodes[j], s.Nodes[i] })
		if got := placements(&s); !reflect.DeepEqual(got, want) {
			t.Fatal("placement depends on the order of the nodes")
		}
	}
	// Defaults written out or left zero place alike.
	if got := placements(m.WithDefaults()); !reflect.DeepEqual(ids2(got), ids2(want)) {
		t.Fatal("placement differs between a map and its WithDefaults")
	}
}

func ids2(all [][]Node) [][]string {
	out := make([][]string, len(all))
	for i, l := range all {
		out[i] = ids(l)
	}
	return out
}

func TestPlaceActiveOnly(t *testing.T) {
	m := makeMap(8, 0, 4, 2)
	m.Nodes[1].State = StateDraining
	m.Nodes[4].State = StateRemoved
	for p, list := range placements(m) {
		checkList(t, p, list, 6)
	}

	m.Nodes[6].State = StateDraining
	for p, list := range placements(m) {
		// Five active nodes for six slots: every one of them, once.
		checkList(t, p, list, 5)
	}
	for i := range m.Nodes {
		m.Nodes[i].State = StateDraining
	}
	if got := m.Place(0); len(got) != 0 {
		t.Errorf("Place with no active node = %v, want none", ids(got))
	}
	if got := (&Map{}).Place(0); len(got) != 0 {
		t.Errorf("Place on an empty map = %v, want none", got)
	}
}

func TestPlaceUnvalidatedWeights(t *testing.T) {
	m := makeMap(8, 0, 4, 2)
	m.Nodes[0].Weight = math.NaN()
	m.Nodes[1].Weight = -1
	m.Nodes[2].Weight = math.Inf(1)
	for p, list := range placements(m) {
		checkList(t, p, list, 5)
		for _, n := range list {
			if n.ID == "n00" || n.ID == "n01" || n.ID == "n02" {
				t.Fatalf("partition %d: node %s with weight %v placed", p, n.ID, n.Weight)
			}
		}
	}
}

// TestPlaceBalance checks that equal nodes get equal shares of the slots:
// every node within four standard deviations of the mean, and the whole
// spread within a chi-square bound.
func TestPlaceBalance(t *testing.T) {
	for _, tt := range []struct {
		name               string
		nodes, zones, d, p int
	}{
		{"12 nodes 4 zones 4+2", 12, 4, 4, 2},
		{"15 nodes 3 zones 8+3", 15, 3, 8, 3},
		{"40 nodes 40 zones 4+2", 40, 0, 4, 2},
		{"40 nodes 8 zones 4+2", 40, 8, 4, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := makeMap(tt.nodes, tt.zones, tt.d, tt.p)
			counts := slotCounts(placements(m))
			mean := float64(DefaultPartitions*m.N()) / float64(tt.nodes)
			sd := math.Sqrt(mean)
			chi2 := 0.0
			for _, n := range m.Nodes {
				c := float64(counts[n.ID])
				if math.Abs(c-mean) > 4*sd {
					t.Errorf("node %s holds %.0f slots, want %.0f ± %.0f", n.ID, c, mean, 4*sd)
				}
				chi2 += (c - mean) * (c - mean) / mean
			}
			df := float64(tt.nodes - 1)
			if limit := df + 4*math.Sqrt(2*df); chi2 > limit {
				t.Errorf("chi-square of slots per node %.1f, want at most %.1f", chi2, limit)
			}
		})
	}
}

// TestPlaceWeight checks that weight scales a node's share. The first slot
// is an exact weighted draw. Over all slots a node holds at most one slot
// per partition, so a heavy node falls short of its weight unless n is
// small beside the number of nodes: with 50 nodes for 6 slots the shortfall
// is about 5%.
func TestPlaceWeight(t *testing.T) {
	for _, tt := range []struct {
		name             string
		nodes            int
		firstSlotOnly    bool
		heavyLo, heavyHi float64
		lightLo, lightHi float64
	}{
		{"first slot 20 nodes", 20, true, 1.9, 2.1, 0.45, 0.55},
		{"all slots 50 nodes", 50, false, 1.8, 2.0, 0.47, 0.55},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := makeMap(tt.nodes, 0, 4, 2)
			m.Partitions = 1 << 15 // enough draws that 5% is several sd
			m.Nodes[0].Weight = 2
			m.Nodes[1].Weight = 0.5
			counts := make(map[string]int)
			for _, list := range placements(m) {
				if tt.firstSlotOnly {
					list = list[:1]
				}
				for _, n := range list {
					counts[n.ID]++
				}
			}
			sum := 0
			for _, n := range m.Nodes[2:] {
				sum += counts[n.ID]
			}
			mean := float64(sum) / float64(tt.nodes-2)
			heavy, light := float64(counts["n00"])/mean, float64(counts["n01"])/mean
			t.Logf("weight 2: %.3f, weight 0.5: %.3f", heavy, light)
			if heavy < tt.heavyLo || heavy > tt.heavyHi {
				t.Errorf("weight 2 node holds %.3f times a weight 1 node's slots, want [%v, %v]", heavy, tt.heavyLo, tt.heavyHi)
			}
			if light < tt.lightLo || light > tt.lightHi {
				t.Errorf("weight 0.5 node holds %.3f times a weight 1 node's slots, want [%v, %v]", light, tt.lightLo, tt.lightHi)
			}
		})
	}
}

// movementTopologies are the clusters the movement tests grow and shrink,
// with the most moves allowed per slot the change must move (a slot the new
// node takes, or a slot the removed node held).
//
// Each such slot moves once. Knock-on moves come from the node displaced
// (or the replacement drawn) outscoring the holder of a later slot of the
// same partition, a chance of about 1/(N-slot) per later slot, and, when
// zones at least n are shared by several nodes, from the zone tallies
// shifting. With fewer zones than n the zone of every slot is fixed by the
// zone names, so only the changed zone's slots can move. For comparison, a
// list ordered by a single score per node would move about 3.5 per slot.
var movementTopologies = []struct {
	name   string
	zones  int // 0: every node its own zone
	factor float64
}{
	{"own zones", 0, 1.5},
	{"3 zones", 3, 1.5},
	{"4 zones", 4, 1.5},
	{"8 zones", 8, 2.0},
}

// TestPlaceMovement adds one node to N nodes and counts the (partition,
// shard index) pairs whose node changed.
func TestPlaceMovement(t *testing.T) {
	for _, tt := range movementTopologies {
		for _, N := range []int{10, 20, 50} {
			before := makeMap(N, tt.zones, 4, 2)
			after := makeMap(N+1, tt.zones, 4, 2)
			added := after.Nodes[N]
			oldAll, newAll := placements(before), placements(after)

			moved, received := 0, 0
			for p := range oldAll {
				oldList, newList := oldAll[p], newAll[p]
				took := slices.IndexFunc(newList, func(n Node) bool { return n.ID == added.ID })
				for i := range newList {
					if oldList[i].ID == newList[i].ID {
						continue
					}
					moved++
					// Slots the new node did not take, and slots before
					// it, are decided exactly as before.
					if took < 0 || i < took {
						t.Fatalf("%s N=%d partition %d: slot %d moved %s -> %s though the new node took slot %d",
							tt.name, N, p, i, oldList[i].ID, newList[i].ID, took)
					}
					if tt.zones > 0 && tt.zones < 6 && oldList[i].Zone != added.Zone {
						t.Fatalf("%s N=%d partition %d: slot %d moved %s -> %s in zone %s, the new node is in %s",
							tt.name, N, p, i, oldList[i].ID, newList[i].ID, oldList[i].Zone, added.Zone)
					}
				}
				if took >= 0 {
					received++
				}
			}

			total := float64(DefaultPartitions * 6)
			t.Logf("%s: add to N=%d: moved %.4f of the slots, %.2f per slot the new node took",
				tt.name, N, float64(moved)/total, float64(moved)/float64(received))
			if limit := tt.factor * float64(received); float64(moved) > limit {
				t.Errorf("%s N=%d: adding a node that took %d slots moved %d, want at most %.0f",
					tt.name, N, received, moved, limit)
			}
			if limit := tt.factor * total / float64(N+1); float64(moved) > limit {
				t.Errorf("%s N=%d: adding a node moved %d slots, want at most %.0f",
					tt.name, N, moved, limit)
			}

			// What the new node should receive: with nodes in their own
			// zones, 1/(N+1) of the slots; with fewer zones than n, an
			// equal share of its zone's equal share.
			share := 1 / float64(N+1)
			if tt.zones > 0 && tt.zones < 6 {
				share = 1 / float64(tt.zones) / float64(zoneSize(after, added.Zone))
			}
			if tt.zones < 6 && math.Abs(float64(received)/total-share) > 0.15*share {
				t.Errorf("%s N=%d: new node received %.4f of the slots, want %.4f ± 15%%",
					tt.name, N, float64(received)/total, share)
			}
		}
	}
}

func zoneSize(m *Map, zone string) int {
	n := 0
	for _, nd := range m.Nodes {
		if nd.Zone == zone {
			n++
		}
	}
	return n
}

// TestPlaceRemoval removes one node of N: every slot it held must move,
// nothing before it in a list may, and the knock-on after it is bounded as
// for adding.
func TestPlaceRemoval(t *testing.T) {
	for _, tt := range movementTopologies {
		for _, N := range []int{10, 20, 50} {
			before := makeMap(N, tt.zones, 4, 2)
			after := makeMap(N, tt.zones, 4, 2)
			const gone = 4
			removed := after.Nodes[gone]
			after.Nodes = slices.Delete(after.Nodes, gone, gone+1)
			oldAll, newAll := placements(before), placements(after)

			moved, held := 0, 0
			for p := range oldAll {
				oldList, newList := oldAll[p], newAll[p]
				had := slices.IndexFunc(oldList, func(n Node) bool { return n.ID == removed.ID })
				if had >= 0 {
					held++
				}
				for i := range newList {
					if oldList[i].ID == newList[i].ID {
						continue
					}
					moved++
					if had < 0 || i < had {
						t.Fatalf("%s N=%d partition %d: slot %d moved %s -> %s though the removed node held slot %d",
							tt.name, N, p, i, oldList[i].ID, newList[i].ID, had)
					}
					if tt.zones > 0 && tt.zones < 6 && oldList[i].Zone != removed.Zone {
						t.Fatalf("%s N=%d partition %d: slot %d moved %s -> %s in zone %s, the removed node was in %s",
							tt.name, N, p, i, oldList[i].ID, newList[i].ID, oldList[i].Zone, removed.Zone)
					}
				}
			}
			t.Logf("%s: remove from N=%d: %.2f moves per slot the removed node held", tt.name, N, float64(moved)/float64(held))
			if limit := tt.factor * float64(held); float64(moved) > limit {
				t.Errorf("%s N=%d: removing a node that held %d slots moved %d, want at most %.0f",
					tt.name, N, held, moved, limit)
			}
		}
	}
}

func TestNegLog(t *testing.T) {
	for _, u := range []float64{
		0x1p-53, 1e-10, 0.1, 0.25, 0.5, math.Sqrt2 / 2, 0.70710678, 0.7071068, 0.75, 0.9, 0.99,
		1 - 1e-6, 1 - 1e-12, 1 - 0x1p-53,
	} {
		got, want := negLog(u), -math.Log(u)
		if math.Abs(got-want) > 1e-15*want {
			t.Errorf("negLog(%v) = %v, want %v", u, got, want)
		}
	}
	// Across the whole range, as the scores see it.
	for i := range uint64(100000) {
		u := unit(mix64(i))
		got, want := negLog(u), -math.Log(u)
		if math.Abs(got-want) > 1e-15*want {
			t.Fatalf("negLog(%v) = %v, want %v", u, got, want)
		}
	}
	for _, h := range []uint64{0, 1, 1 << 11, 1<<63 + 12345, math.MaxUint64 - 1<<11, math.MaxUint64} {
		u, v := unit(h), oneMinusU(h)
		if !(u > 0 && u < 1) || u+v != 1 {
			t.Errorf("unit(%#x) = %v, oneMinusU = %v", h, u, v)
		}
	}
}

// TestPlaceExtremeWeights checks that weights at the ends of the float64
// range still give a full, order-independent placement.
func TestPlaceExtremeWeights(t *testing.T) {
	m := makeMap(10, 0, 4, 2)
	m.Nodes[0].Weight = math.MaxFloat64
	m.Nodes[1].Weight = math.MaxFloat64
	m.Nodes[2].Weight = 5e-324
	m.Nodes[3].Weight = 5e-324
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	want := ids2(placements(m))
	slices.Reverse(m.Nodes)
	got := ids2(placements(m))
	for p := range want {
		checkList(t, p, m.Place(p), 6)
		if !slices.Equal(got[p], want[p]) {
			t.Fatalf("partition %d: %v with the nodes reversed, %v before", p, got[p], want[p])
		}
	}
}
