package layering

import (
	"bufio"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Patterns name packages. "./x" is package x of the module and "./x/..."
// is x and every package under it ("./..." is the whole module); any other
// pattern is an import path, or with "/..." a tree of them.

// areas is DESIGN.md's package list: every package of the module belongs
// to one, so that the rules below cover it.
var areas = []string{
	"./cmd/...",
	"./gateway/...",
	"./scrubber/...",
	"./bench/...",
	"./storagenode/...",
	"./cluster/...",
	"./placement/...",
	"./codec/...",
	"./internal/...",
}

// rule is one dependency rule. It covers the packages matching from and
// not except. An import of theirs breaks it if it matches deny or, when
// only is set, if it is outside the standard library and matches none of
// only.
type rule struct {
	name     string // short, to grep for
	why      string // the rule as a failure states it
	from     []string
	except   []string
	prodOnly bool // test files may break it
	deny     []string
	only     []string
}

// downTheList is why the layer rules exist.
const downTheList = "dependencies point down the package list: cmd, gateway, scrubber, bench, storagenode, cluster, placement, codec"

// rules are the module's dependency rules. A package may match several:
// each must hold.
var rules = []rule{
	// The layers. placement and codec, the bottom two, are leaves with
	// rules of their own.
	{name: "layers/gateway", why: downTheList, from: []string{"./gateway/..."},
		deny: []string{"./cmd/..."}},
	{name: "layers/scrubber", why: downTheList, from: []string{"./scrubber/..."},
		deny: []string{"./cmd/...", "./gateway/..."}},
	// bench's end-to-end tests start a real cluster; the load generator
	// itself speaks only S3.
	{name: "layers/bench", why: downTheList, from: []string{"./bench/..."}, prodOnly: true,
		deny: []string{"./cmd/...", "./gateway/...", "./scrubber/..."}},
	{name: "layers/storagenode", why: "storagenode builds only on codec, placement and internal helpers",
		from: []string{"./storagenode/..."},
		deny: []string{"./cmd/...", "./gateway/...", "./scrubber/...", "./bench/..."}},
	{name: "layers/internal", why: "internal helpers sit below the services that share them",
		from: []string{"./internal/..."},
		deny: []string{"./cmd/...", "./gateway/...", "./scrubber/...", "./bench/..."}},

	{name: "layers/cluster", why: "cluster holds the map in Raft and reaches nodes only through storagenode/client",
		from: []string{"./cluster/..."},
		deny: []string{"./cmd/...", "./gateway/...", "./scrubber/...", "./bench/...", "./storagenode", "./storagenode/internal/..."}},
	{name: "raft", why: "Raft only in cluster: the map has one keeper",
		from: []string{"./..."}, except: []string{"./cluster/..."},
		deny: []string{"github.com/hashicorp/raft/...", "github.com/hashicorp/raft-boltdb/..."}},

	{name: "codec/leaf", why: "codec is a pure leaf: the standard library, reedsolomon and blake3 only",
		from: []string{"./codec/..."},
		only: []string{"./codec/...", "github.com/klauspost/reedsolomon/...", "github.com/zeebo/blake3/..."}},
	{name: "codec/no-io", why: "codec does no I/O of its own: it composes io.Reader and io.Writer",
		from: []string{"./codec/..."}, prodOnly: true,
		deny: []string{"os/...", "io/fs/...", "path/filepath/...", "net/..."}},
	{name: "placement/leaf", why: "placement is a pure leaf: the standard library, xxhash and yaml only",
		from: []string{"./placement/..."},
		only: []string{"./placement/...", "github.com/cespare/xxhash/v2/...", "go.yaml.in/yaml/v3/..."}},
	{name: "readrule/pure", why: "the read rule decides on node answers and does no I/O: the node API's types and the standard library only",
		from: []string{"./internal/readrule/..."},
		only: []string{"./internal/readrule/...", "./storagenode/client"}},
	{name: "readrule/no-io", why: "the read rule does no I/O, keeps no clock and starts nothing",
		from: []string{"./internal/readrule/..."}, prodOnly: true,
		deny: []string{"os/...", "io/...", "net/...", "time", "sync/...", "context"}},

	{name: "wire/leaf", why: "the node's wire types are a leaf every side of the protocol can share",
		from: []string{"./storagenode/wire/..."},
		only: []string{"./storagenode/wire/...", "github.com/segmentio/encoding/..."}},

	{name: "lifecycle/pure", why: "lifecycle rules are parsed and evaluated without I/O, clocks or goroutines: callers pass the time",
		from: []string{"./internal/lifecycle/..."}, prodOnly: true,
		deny: []string{"os/...", "io/...", "net/...", "sync/...", "context", "./storagenode/...", "./placement/..."}},

	{name: "client/no-server", why: "the node client never imports the node server",
		from: []string{"./storagenode/client/..."},
		deny: []string{"./storagenode", "./storagenode/internal/..."}},
	// Their tests may start real nodes.
	{name: "nodes/via-client", why: "gateway and scrubber reach nodes only through storagenode/client",
		from: []string{"./gateway/...", "./scrubber/..."}, prodOnly: true,
		deny: []string{"./storagenode", "./storagenode/internal/..."}},
	{name: "gateway/backend", why: "the S3 layer reaches data only through its Backend: no files, node index, nodes or codec",
		from: []string{"./gateway"}, prodOnly: true,
		deny: []string{"os/...", "io/fs/...", "path/filepath/...", "github.com/dgraph-io/badger/...", "./storagenode/...", "./codec/..."}},

	// The console shows what the gateway holds and what nodes and the
	// scrubber answer; its tests may check the scrubber's wire format.
	{name: "console/read-only", why: "the console reads the cluster through narrow sources: no S3 layer, object protocol, scrubber or node server",
		from: []string{"./gateway/console"}, prodOnly: true,
		deny: []string{"./gateway", "./gateway/objects/...", "./gateway/sigv4/...", "./scrubber/...", "./storagenode", "./storagenode/internal/..."}},

	{name: "badger", why: "badger only in storagenode/internal/meta (the node index) and scrubber/internal/checkpoint",
		from: []string{"./..."}, except: []string{"./storagenode/internal/meta", "./scrubber/internal/checkpoint"},
		deny: []string{"github.com/dgraph-io/badger/..."}},
	{name: "gin", why: "gin only in gateway",
		from: []string{"./..."}, except: []string{"./gateway/..."},
		deny: []string{"github.com/gin-gonic/..."}},
	{name: "no-cmd", why: "nothing imports cmd",
		from: []string{"./..."}, except: []string{"./cmd/..."},
		deny: []string{"./cmd/..."}},
	// bench's own code is held by layers/bench; its tests may start a gateway.
	{name: "no-gateway", why: "nothing imports gateway but cmd",
		from: []string{"./..."}, except: []string{"./gateway/...", "./cmd/...", "./bench/..."},
		deny: []string{"./gateway/..."}},
	{name: "test-only", why: "the in-process test harnesses (fake node, test cluster) are for tests only",
		from: []string{"./..."}, except: []string{"./internal/testcluster", "./storagenode/nodetest"}, prodOnly: true,
		deny: []string{"./internal/testcluster/...", "./storagenode/nodetest/..."}},
	{name: "no-layering", why: "nothing imports the dependency rules",
		from: []string{"./..."}, except: []string{"./internal/layering"},
		deny: []string{"./internal/layering/..."}},
}

// pkg is one package of the module, its test files included, and what its
// files import.
type pkg struct {
	path    string
	imports []imp
}

// imp is one import of one file.
type imp struct {
	path string // what is imported
	file string // the importing file, slash-separated from the module root
	test bool   // whether file is a _test.go file
}

// violation is one import breaking one rule.
type violation struct {
	file, pkg, imp string
	rule           rule
}

func (v violation) String() string {
	return fmt.Sprintf("%s: package %s imports %s, breaking rule %s: %s", v.file, v.pkg, v.imp, v.rule.name, v.rule.why)
}

// match reports whether pattern names path in module.
func match(module, pattern, path string) bool {
	if rest, ok := strings.CutPrefix(pattern, "./"); ok {
		pattern = module + "/" + rest
	}
	if pattern == module+"/..." {
		return path == module || strings.HasPrefix(path, module+"/")
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

func matchAny(module string, patterns []string, path string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(module, p, path) })
}

// standard reports whether path is in the standard library: its first
// element has no dot, and it is not the module's own.
func standard(module, path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".") && !match(module, "./...", path)
}

// covers reports whether r applies to package path.
func (r rule) covers(module, path string) bool {
	return matchAny(module, r.from, path) && !matchAny(module, r.except, path)
}

// breaks reports whether importing path from a file r covers breaks r.
func (r rule) breaks(module, path string) bool {
	if matchAny(module, r.deny, path) {
		return true
	}
	return r.only != nil && !standard(module, path) && !matchAny(module, r.only, path)
}

// check returns every import of pkgs that breaks one of rules.
func check(module string, pkgs []pkg, rules []rule) []violation {
	var bad []violation
	for _, p := range pkgs {
		for _, r := range rules {
			if !r.covers(module, p.path) {
				continue
			}
			for _, im := range p.imports {
				if im.test && r.prodOnly {
					continue
				}
				if r.breaks(module, im.path) {
					bad = append(bad, violation{file: im.file, pkg: p.path, imp: im.path, rule: r})
				}
			}
		}
	}
	return bad
}

// unplaced returns the packages of pkgs in none of areas.
func unplaced(module string, pkgs []pkg, areas []string) []string {
	var out []string
	for _, p := range pkgs {
		if !matchAny(module, areas, p.path) {
			out = append(out, p.path)
		}
	}
	return out
}

// moduleRoot returns the directory of the go.mod that holds the working
// directory, and the module path it declares.
func moduleRoot() (dir, module string, err error) {
	dir, err = os.Getwd()
	if err != nil {
		return "", "", err
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
					module = strings.TrimSpace(rest)
					if u, err := strconv.Unquote(module); err == nil {
						module = u
					}
					return dir, module, nil
				}
			}
			if err := sc.Err(); err != nil {
				return "", "", err
			}
			return "", "", fmt.Errorf("%s has no module line", f.Name())
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// load reads the imports of every Go file of the module rooted at root,
// whatever its build tags, skipping what the go command skips: testdata,
// vendor, names starting with "." or "_", and nested modules.
func load(root, module string) ([]pkg, error) {
	byDir := map[string]*pkg{}
	var order []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path == root {
				return nil
			}
			if name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		dir := filepath.ToSlash(filepath.Dir(rel))
		p := byDir[dir]
		if p == nil {
			p = &pkg{path: module}
			if dir != "." {
				p.path = module + "/" + dir
			}
			byDir[dir] = p
			order = append(order, dir)
		}
		for _, s := range f.Imports {
			ip, err := strconv.Unquote(s.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: import %s: %v", rel, s.Path.Value, err)
			}
			p.imports = append(p.imports, imp{path: ip, file: rel, test: strings.HasSuffix(name, "_test.go")})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	pkgs := make([]pkg, 0, len(order))
	for _, dir := range order {
		pkgs = append(pkgs, *byDir[dir])
	}
	return pkgs, nil
}

// TestModuleLayering checks every import of the module against the rules.
func TestModuleLayering(t *testing.T) {
	root, module, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := load(root, module)
	if err != nil {
		t.Fatal(err)
	}

	// A rule or area that names no package is stale: the code moved and
	// the rules did not follow.
	has := func(pattern string) bool {
		return slices.ContainsFunc(pkgs, func(p pkg) bool { return match(module, pattern, p.path) })
	}
	for _, a := range areas {
		if !has(a) {
			t.Errorf("area %s has no package", a)
		}
	}
	for _, r := range rules {
		for _, pat := range slices.Concat(r.from, r.except) {
			if !has(pat) {
				t.Errorf("rule %s names %s, which holds no package", r.name, pat)
			}
		}
	}
	// Guard against a loader that finds nothing and so passes everything.
	internal := 0
	for _, p := range pkgs {
		for _, im := range p.imports {
			if match(module, "./...", im.path) {
				internal++
			}
		}
	}
	if internal == 0 {
		t.Fatalf("read %d packages under %s and no import of one package of the module by another", len(pkgs), root)
	}

	for _, path := range unplaced(module, pkgs, areas) {
		t.Errorf("package %s is in no area of the package list; give it a place in DESIGN.md and in this test's areas and rules", path)
	}
	for _, v := range check(module, pkgs, rules) {
		t.Error(v)
	}
}

// TestCheck shows that every rule can fail, and that the exemptions hold:
// each case is a package with one import and the rules it must break.
func TestCheck(t *testing.T) {
	const mod = "example.com/m"
	cases := []struct {
		pkg  string // module-relative
		imp  string // "./x" for package x of the module
		test bool
		want []string // names of the rules broken
	}{
		// The layers.
		{pkg: "gateway", imp: "./cmd/kintsugi", want: []string{"layers/gateway", "no-cmd"}},
		{pkg: "gateway/objects", imp: "./scrubber"},
		{pkg: "scrubber", imp: "./gateway/objects", want: []string{"layers/scrubber", "no-gateway"}},
		{pkg: "scrubber", imp: "./gateway", test: true, want: []string{"layers/scrubber", "no-gateway"}},
		{pkg: "bench", imp: "./scrubber", want: []string{"layers/bench"}},
		{pkg: "bench", imp: "./gateway", want: []string{"layers/bench"}},
		{pkg: "bench", imp: "./gateway", test: true},
		{pkg: "bench", imp: "./storagenode"},
		{pkg: "storagenode", imp: "./bench", want: []string{"layers/storagenode"}},
		{pkg: "storagenode/internal/meta", imp: "./scrubber", test: true, want: []string{"layers/storagenode"}},
		{pkg: "storagenode", imp: "./gateway/objects", want: []string{"layers/storagenode", "no-gateway"}},
		{pkg: "storagenode", imp: "./placement"},
		{pkg: "storagenode", imp: "./internal/kerr"},
		{pkg: "internal/readrule", imp: "./scrubber", want: []string{"layers/internal", "readrule/pure"}},
		{pkg: "internal/readrule", imp: "./storagenode/client"},
		{pkg: "internal/readrule", imp: "./placement", want: []string{"readrule/pure"}},
		{pkg: "internal/readrule", imp: "net/http", want: []string{"readrule/no-io"}},
		{pkg: "internal/readrule", imp: "time", want: []string{"readrule/no-io"}},
		{pkg: "internal/readrule", imp: "time", test: true},
		{pkg: "internal/lifecycle", imp: "os", want: []string{"lifecycle/pure"}},
		{pkg: "internal/lifecycle", imp: "./storagenode/client", want: []string{"lifecycle/pure"}},
		{pkg: "internal/lifecycle", imp: "time"},
		{pkg: "internal/lifecycle", imp: "os", test: true},

		// The leaves.
		{pkg: "codec", imp: "./internal/kerr", want: []string{"codec/leaf"}},
		{pkg: "codec", imp: "./placement", test: true, want: []string{"codec/leaf"}},
		{pkg: "codec", imp: "github.com/oklog/ulid/v2", want: []string{"codec/leaf"}},
		{pkg: "codec", imp: "./codec", test: true},
		{pkg: "codec", imp: "github.com/klauspost/reedsolomon"},
		{pkg: "codec", imp: "github.com/zeebo/blake3"},
		{pkg: "codec", imp: "os", want: []string{"codec/no-io"}},
		{pkg: "codec", imp: "net/http", want: []string{"codec/no-io"}},
		{pkg: "codec", imp: "os", test: true},
		{pkg: "placement", imp: "./codec", want: []string{"placement/leaf"}},
		{pkg: "placement", imp: "./storagenode/client", test: true, want: []string{"placement/leaf"}},
		{pkg: "placement", imp: "github.com/zeebo/blake3", want: []string{"placement/leaf"}},
		{pkg: "placement", imp: "github.com/cespare/xxhash/v2"},
		{pkg: "placement", imp: "go.yaml.in/yaml/v3"},
		{pkg: "placement", imp: "os"},
		{pkg: "storagenode/wire", imp: "./internal/kerr", want: []string{"wire/leaf"}},
		{pkg: "storagenode/wire", imp: "./placement", want: []string{"wire/leaf"}},
		{pkg: "storagenode/wire", imp: "github.com/segmentio/encoding/json"},
		{pkg: "storagenode/wire", imp: "time"},

		// Nodes.
		{pkg: "storagenode/client", imp: "./storagenode", want: []string{"client/no-server"}},
		{pkg: "storagenode/client", imp: "./storagenode/internal/meta", test: true, want: []string{"client/no-server"}},
		{pkg: "storagenode/client", imp: "./codec"},
		{pkg: "gateway/objects", imp: "./storagenode", want: []string{"nodes/via-client"}},
		{pkg: "scrubber", imp: "./storagenode/internal/flush", want: []string{"nodes/via-client"}},
		{pkg: "scrubber", imp: "./storagenode", test: true},
		{pkg: "scrubber", imp: "./storagenode/client"},

		// The S3 layer.
		{pkg: "gateway", imp: "os", want: []string{"gateway/backend"}},
		{pkg: "gateway", imp: "os/exec", want: []string{"gateway/backend"}},
		{pkg: "gateway", imp: "io/fs", want: []string{"gateway/backend"}},
		{pkg: "gateway", imp: "path/filepath", want: []string{"gateway/backend"}},
		{pkg: "gateway", imp: "./codec", want: []string{"gateway/backend"}},
		{pkg: "gateway", imp: "./storagenode/client", want: []string{"gateway/backend"}},
		{pkg: "gateway", imp: "./storagenode", want: []string{"nodes/via-client", "gateway/backend"}},
		{pkg: "gateway", imp: "github.com/dgraph-io/badger/v4", want: []string{"gateway/backend", "badger"}},
		{pkg: "gateway", imp: "os", test: true},
		{pkg: "gateway", imp: "github.com/gin-gonic/gin"},
		{pkg: "gateway/objects", imp: "./codec"},

		// The console.
		{pkg: "gateway/console", imp: "./gateway/objects", want: []string{"console/read-only"}},
		{pkg: "gateway/console", imp: "./scrubber", want: []string{"console/read-only"}},
		{pkg: "gateway/console", imp: "./scrubber", test: true},
		{pkg: "gateway/console", imp: "./storagenode", want: []string{"nodes/via-client", "console/read-only"}},
		{pkg: "gateway/console", imp: "./storagenode/client"},
		{pkg: "gateway/console", imp: "./internal/health"},

		// Libraries and global rules.
		{pkg: "storagenode", imp: "github.com/dgraph-io/badger/v4", want: []string{"badger"}},
		{pkg: "scrubber", imp: "github.com/dgraph-io/badger/v4", test: true, want: []string{"badger"}},
		{pkg: "storagenode/internal/meta", imp: "github.com/dgraph-io/badger/v4"},
		{pkg: "scrubber/internal/checkpoint", imp: "github.com/dgraph-io/badger/v4/options", test: true},
		{pkg: "storagenode", imp: "github.com/gin-gonic/gin", want: []string{"gin"}},
		{pkg: "cmd/kintsugi", imp: "github.com/gin-gonic/gin/binding", test: true, want: []string{"gin"}},
		{pkg: "internal/kerr", imp: "./cmd/kintsugi", test: true, want: []string{"layers/internal", "no-cmd"}},
		{pkg: "cmd/kintsugi", imp: "./cmd/other"},
		{pkg: "internal/health", imp: "./gateway/sigv4", want: []string{"layers/internal", "no-gateway"}},
		{pkg: "cmd/kintsugi", imp: "./gateway"},
		{pkg: "bench", imp: "./internal/layering", test: true, want: []string{"no-layering"}},
		{pkg: "gateway/objects", imp: "./storagenode/nodetest", want: []string{"test-only"}},
		{pkg: "cmd/kintsugi", imp: "./internal/testcluster", want: []string{"test-only"}},
		{pkg: "scrubber", imp: "./internal/testcluster", test: true},
		{pkg: "internal/testcluster", imp: "./storagenode/nodetest"},
		{pkg: "gateway", imp: "./gatewayx"}, // a sibling, not a subpackage

		// The Raft-held map.
		{pkg: "cluster", imp: "./storagenode", want: []string{"layers/cluster"}},
		{pkg: "cluster", imp: "./storagenode/client"},
		{pkg: "cluster", imp: "github.com/hashicorp/raft"},
		{pkg: "storagenode", imp: "github.com/hashicorp/raft", want: []string{"raft"}},
		{pkg: "cmd/kintsugi", imp: "github.com/hashicorp/raft-boltdb/v2", want: []string{"raft"}},
		{pkg: "cmd/kintsugi", imp: "./cluster"},
	}
	broken := map[string]bool{}
	for _, c := range cases {
		ip := c.imp
		if rest, ok := strings.CutPrefix(ip, "./"); ok {
			ip = mod + "/" + rest
		}
		file := c.pkg + "/a.go"
		if c.test {
			file = c.pkg + "/a_test.go"
		}
		pkgs := []pkg{{path: mod + "/" + c.pkg, imports: []imp{{path: ip, file: file, test: c.test}}}}
		var got []string
		for _, v := range check(mod, pkgs, rules) {
			got = append(got, v.rule.name)
			broken[v.rule.name] = true
			if want := fmt.Sprintf("%s: package %s/%s imports %s, breaking rule %s: %s", file, mod, c.pkg, ip, v.rule.name, v.rule.why); v.String() != want {
				t.Errorf("message %q, want %q", v, want)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s (test %v) importing %s breaks %q, want %q", c.pkg, c.test, c.imp, got, c.want)
		}
	}
	for _, r := range rules {
		if !broken[r.name] {
			t.Errorf("no case breaks rule %s", r.name)
		}
	}
}

func TestUnplaced(t *testing.T) {
	const mod = "example.com/m"
	var pkgs []pkg
	for _, p := range []string{"", "admin", "gateway", "gateway/sigv4", "internal/kerr", "codecs", "tools/gen"} {
		path := mod
		if p != "" {
			path += "/" + p
		}
		pkgs = append(pkgs, pkg{path: path})
	}
	got := unplaced(mod, pkgs, areas)
	want := []string{mod, mod + "/admin", mod + "/codecs", mod + "/tools/gen"}
	if !slices.Equal(got, want) {
		t.Errorf("unplaced = %q, want %q", got, want)
	}
}

func TestMatch(t *testing.T) {
	const mod = "example.com/m"
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"./gateway", mod + "/gateway", true},
		{"./gateway", mod + "/gateway/sigv4", false},
		{"./gateway/...", mod + "/gateway", true},
		{"./gateway/...", mod + "/gateway/sigv4", true},
		{"./gateway/...", mod + "/gatewayx", false},
		{"./...", mod, true},
		{"./...", mod + "/codec", true},
		{"./...", "example.com/mx", false},
		{"./...", "os", false},
		{"os/...", "os", true},
		{"os/...", "os/exec", true},
		{"os/...", "osx", false},
		{"os", "os/exec", false},
		{"github.com/dgraph-io/badger/...", "github.com/dgraph-io/badger/v4", true},
		{"github.com/dgraph-io/badger/...", "github.com/dgraph-io/badgerx", false},
	} {
		if got := match(mod, c.pattern, c.path); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
	for _, c := range []struct {
		path string
		want bool
	}{
		{"os", true},
		{"net/http", true},
		{"github.com/zeebo/blake3", false},
		{"go.yaml.in/yaml/v3", false},
		{mod + "/codec", false},
	} {
		if got := standard(mod, c.path); got != c.want {
			t.Errorf("standard(%q) = %v, want %v", c.path, got, c.want)
		}
	}
}
