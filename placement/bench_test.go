package placement

import "testing"

func BenchmarkPlace(b *testing.B) {
	cases := []struct {
		name               string
		nodes, zones, d, p int
		weighted           bool
	}{
		{"200nodes20zones4+2", 200, 20, 4, 2, false},
		{"200nodes200zones4+2", 200, 0, 4, 2, false},
		{"200nodes20zones4+2weighted", 200, 20, 4, 2, true},
		{"200nodes3zones8+3weighted", 200, 3, 8, 3, true},
		{"6nodes1zone4+2", 6, 1, 4, 2, false},
	}
	for _, c := range cases {
		m := makeMap(c.nodes, c.zones, c.d, c.p)
		if c.weighted {
			for i := range m.Nodes {
				m.Nodes[i].Weight = float64(1 + i%3)
			}
		}
		m = m.WithDefaults()
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			p := 0
			for b.Loop() {
				m.Place(p % m.Partitions)
				p++
			}
		})
	}
}

func BenchmarkPartition(b *testing.B) {
	m := makeMap(6, 0, 4, 2).WithDefaults()
	b.ReportAllocs()
	for b.Loop() {
		m.Partition("photos", "2024/06/01/IMG_0001.jpg")
	}
}
