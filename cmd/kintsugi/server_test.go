package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestServerShards(t *testing.T) {
	for _, c := range []struct {
		n, d, p      int
		wantD, wantP int
		err          bool
	}{
		{6, 0, 0, 4, 2, false},
		{5, 0, 0, 3, 2, false},
		{4, 0, 0, 3, 1, false},
		{2, 0, 0, 1, 1, false},
		{8, 0, 3, 5, 3, false},
		{8, 4, 2, 4, 2, false},
		{6, 5, 2, 0, 0, true},
		{2, 0, 2, 0, 0, true},
	} {
		d, p, err := serverShards(c.n, c.d, c.p)
		if (err != nil) != c.err || d != c.wantD || p != c.wantP {
			t.Errorf("serverShards(%d, %d, %d) = %d, %d, %v; want %d, %d, error %v", c.n, c.d, c.p, d, p, err, c.wantD, c.wantP, c.err)
		}
	}
}

func TestParseDrives(t *testing.T) {
	for _, s := range []string{"", "/a", "/a,,/b", "/a,/b,/a/"} {
		if _, err := parseDrives(s); err == nil {
			t.Errorf("parseDrives(%q): no error", s)
		}
	}
	got, err := parseDrives(" /mnt/d1, /mnt/d2 ")
	if err != nil || !reflect.DeepEqual(got, []string{"/mnt/d1", "/mnt/d2"}) {
		t.Errorf("parseDrives = %q, %v", got, err)
	}
}

// TestDriveNodesKeepIDs: a node's id follows its drive, not the drive's
// place in --drives, and a new drive takes an id no other drive holds.
func TestDriveNodesKeepIDs(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	ids := func(drives ...string) []string {
		t.Helper()
		nodes, err := driveNodes(drives)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for i, n := range nodes {
			if n.dir != filepath.Join(drives[i], "kintsugi") || n.zone != "drive-"+n.id {
				t.Errorf("node %+v on drive %s", n, drives[i])
			}
			out = append(out, n.id)
		}
		return out
	}
	if got := ids(a, b); !reflect.DeepEqual(got, []string{"d1", "d2"}) {
		t.Fatalf("first start: %v", got)
	}
	if got := ids(c, b, a); !reflect.DeepEqual(got, []string{"d3", "d2", "d1"}) {
		t.Fatalf("reordered with a new drive: %v", got)
	}
	if err := os.WriteFile(filepath.Join(c, driveIDFile), []byte("d1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := driveNodes([]string{a, c}); err == nil {
		t.Error("two drives claiming d1: no error")
	}
}
