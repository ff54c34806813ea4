package scrubber

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the scrubber's boundaries: it reaches nodes only
// through their client, never the node server, the gateway or gin, and
// badger only inside internal/checkpoint. Tests may start real nodes.
func TestImports(t *testing.T) {
	const mod = "github.com/kintsugi-store/kintsugi/"
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		test := strings.HasSuffix(path, "_test.go")
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			switch {
			case strings.HasPrefix(p, "github.com/dgraph-io/badger") && dir != "internal/checkpoint":
				t.Errorf("%s imports badger; only internal/checkpoint may", path)
			case strings.HasPrefix(p, mod+"gateway"), strings.HasPrefix(p, mod+"cmd"), strings.HasPrefix(p, "github.com/gin-gonic/"):
				t.Errorf("%s imports %s", path, p)
			case !test && (p == mod+"storagenode" || strings.HasPrefix(p, mod+"storagenode/internal")):
				t.Errorf("%s imports the node server (%s); use storagenode/client", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
