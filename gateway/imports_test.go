package gateway

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestForbiddenImports keeps the S3 layer away from storage: it reaches
// data only through its Backend, so it must not read files, open the node
// index or talk to nodes itself.
func TestForbiddenImports(t *testing.T) {
	forbidden := []string{
		"os",
		"io/fs",
		"path/filepath",
		"github.com/dgraph-io/badger",
		"github.com/kintsugi-store/kintsugi/storagenode",
		"github.com/kintsugi-store/kintsugi/codec",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					t.Errorf("%s imports %s", name, path)
				}
			}
		}
	}
}
