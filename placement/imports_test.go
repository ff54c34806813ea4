package placement

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps placement a leaf: the standard library plus the two
// libraries it is built on, and no package of the project.
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"github.com/cespare/xxhash/v2": true,
		"go.yaml.in/yaml/v3":           true,
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
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			// Standard library paths have no dot in their first element.
			if !strings.Contains(strings.Split(path, "/")[0], ".") || allowed[path] {
				continue
			}
			t.Errorf("%s imports %s; placement may import only the standard library, xxhash and yaml", name, path)
		}
	}
}
