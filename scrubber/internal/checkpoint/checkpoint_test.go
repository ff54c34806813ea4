package checkpoint

import (
	"slices"
	"testing"
)

func TestValuesQueueSets(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	type pos struct{ Bucket, Key string }
	var got pos
	if found, err := s.Get("pass", &got); found || err != nil {
		t.Fatalf("Get of nothing = %v, %v", found, err)
	}
	if err := s.Put("pass", pos{"b", "k/1"}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		prio int
		id   string
	}{{5, "bk/z"}, {4, "bk/y"}, {5, "bk/a"}, {-3, "low"}, {MaxPrio + 7, "high"}, {4, "bk/y"}} {
		if err := s.Push(e.prio, e.id, e.id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Mark("hinted", "bk/k\x00odd"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Everything survives a reopen.
	s, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if found, err := s.Get("pass", &got); !found || err != nil || got != (pos{"b", "k/1"}) {
		t.Errorf("Get after reopen = %+v, %v, %v", got, found, err)
	}
	entries, err := s.Peek(10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.ID)
		if want := `"` + e.ID + `"`; string(e.Value) != want {
			t.Errorf("entry %s value %s, want %s", e.ID, e.Value, want)
		}
	}
	if want := []string{"low", "bk/y", "bk/a", "bk/z", "high"}; !slices.Equal(ids, want) {
		t.Errorf("queue order %q, want %q", ids, want)
	}
	if entries[0].Prio != 0 || entries[4].Prio != MaxPrio {
		t.Errorf("priorities not clamped: %+v", entries)
	}
	if n, _ := s.Len(); n != 5 {
		t.Errorf("Len = %d", n)
	}
	if err := s.Remove(4, "bk/y"); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.Peek(2); len(e) != 2 || e[1].ID != "bk/a" {
		t.Errorf("Peek(2) after Remove = %+v", e)
	}
	for id, want := range map[string]bool{"bk/k\x00odd": true, "bk/k": false} {
		if got, err := s.Marked("hinted", id); got != want || err != nil {
			t.Errorf("Marked(%q) = %v, %v", id, got, err)
		}
	}
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Len(); n != 0 {
		t.Errorf("Len after Reset = %d", n)
	}
	if m, _ := s.Marked("hinted", "bk/k\x00odd"); m {
		t.Error("set survived Reset")
	}
	if found, _ := s.Get("pass", &got); !found {
		t.Error("Reset dropped a named value")
	}
	if err := s.Delete("pass"); err != nil {
		t.Fatal(err)
	}
	if found, _ := s.Get("pass", &got); found {
		t.Error("Delete left the value")
	}
}

func TestLockAndMemory(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s2, err := Open(dir, nil); err == nil {
		s2.Close()
		t.Fatal("a second Open of a locked state succeeded")
	}
	m, err := Open("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Put("x", 1); err != nil {
		t.Fatal(err)
	}
	m.Close()
	m, err = Open("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var v int
	if found, _ := m.Get("x", &v); found {
		t.Error("in-memory state survived Close")
	}
}
