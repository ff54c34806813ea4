package placement

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata")

// goldenPartitions are the partitions whose placement the golden files pin.
var goldenPartitions = func() []int {
	var ps []int
	for p := range 48 {
		ps = append(ps, p)
	}
	return append(ps, 1000, 1234, 2048, 3071, 4095)
}()

// TestGolden pins Place for the maps in testdata/*.yaml, and Partition for a
// set of keys, so that no change of hashing or algorithm moves data
// unnoticed. Regenerate with go test ./placement -rewrite, and only on
// purpose: every changed line is data that moves.
func TestGolden(t *testing.T) {
	maps, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) == 0 {
		t.Fatal("no maps in testdata")
	}
	for _, path := range maps {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			m, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			fmt.Fprintf(&b, "# Place(partition) for testdata/%s.yaml: partition, then the node of each shard.\n", name)
			fmt.Fprintf(&b, "# Regenerate with: go test ./placement -rewrite\n")
			for _, p := range goldenPartitions {
				list := m.Place(p)
				checkList(t, p, list, m.N())
				fmt.Fprintf(&b, "%d %s\n", p, strings.Join(ids(list), " "))
			}
			checkGolden(t, filepath.Join("testdata", name+".golden"), b.Bytes())
		})
	}
}

func TestGoldenPartition(t *testing.T) {
	keys := []struct{ bucket, key string }{
		{"", ""},
		{"b", "k"},
		{"photos", "2024/06/01/IMG_0001.jpg"},
		{"photos", "2024/06/01/IMG_0002.jpg"},
		{"backups", "db/2024-06-01T00:00:00Z.tar.zst"},
		{"logs", "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z.log"},
		{"unicode", "ключ/キー/🔑"},
		{"ab", "c"},
		{"a", "bc"},
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Partition(bucket, key) with the default %d partitions.\n", DefaultPartitions)
	fmt.Fprintf(&b, "# Regenerate with: go test ./placement -rewrite\n")
	m := &Map{}
	for _, k := range keys {
		fmt.Fprintf(&b, "%q %q %d\n", k.bucket, k.key, m.Partition(k.bucket, k.key))
	}
	checkGolden(t, filepath.Join("testdata", "partition.golden"), b.Bytes())
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *rewrite {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./placement -rewrite to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gotLines, wantLines := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(gotLines), len(wantLines)) {
		var g, w string
		if i < len(gotLines) {
			g = gotLines[i]
		}
		if i < len(wantLines) {
			w = wantLines[i]
		}
		if g != w {
			t.Fatalf("%s:%d differs\n got %q\nwant %q", path, i+1, g, w)
		}
	}
}
