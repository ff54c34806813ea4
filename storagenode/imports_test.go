package storagenode

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package boundaries: badger only in internal/meta,
// and the client free of the server and of badger.
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
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			switch {
			case strings.HasPrefix(p, "github.com/dgraph-io/badger") && dir != "internal/meta":
				t.Errorf("%s imports badger; only internal/meta may", path)
			case dir == "client" && (p == mod+"storagenode" || strings.HasPrefix(p, mod+"storagenode/internal")):
				t.Errorf("%s: the client imports the server (%s)", path, p)
			case strings.HasPrefix(p, "github.com/gin-gonic/"):
				t.Errorf("%s imports gin", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
