package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name     string
		old      []byte // nil: no file before
		oldPerm  os.FileMode
		perm     os.FileMode
		wantPerm os.FileMode
	}{
		{"replaces and keeps the old mode", []byte("old"), 0o600, 0o644, 0o600},
		{"creates with perm", nil, 0, 0o640, 0o640},
		{"shorter than before", []byte("a much longer old content"), 0o644, 0o600, 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.yaml")
			if tt.old != nil {
				if err := os.WriteFile(path, tt.old, tt.oldPerm); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, []byte("new contents"), tt.perm); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil || string(b) != "new contents" {
				t.Fatalf("read %q, %v", b, err)
			}
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Perm() != tt.wantPerm {
				t.Fatalf("mode %v, %v; want %v", fi.Mode().Perm(), err, tt.wantPerm)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Fatalf("temporary files left: %v", ents)
			}
		})
	}
}

func TestWriteFileFails(t *testing.T) {
	dir := t.TempDir()
	// The target is a directory that is not empty: the rename fails, and
	// neither it nor a temporary file is left changed.
	path := filepath.Join(dir, "d")
	if err := os.MkdirAll(filepath.Join(path, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("data"), 0o644); err == nil {
		t.Fatal("WriteFile over a non-empty directory succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || !ents[0].IsDir() {
		t.Fatalf("left behind: %v", ents)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "f"), nil, 0o644); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteFile in a missing directory: %v, want ErrNotExist", err)
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("SyncDir of a missing directory: %v", err)
	}
}
