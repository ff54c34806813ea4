package storagenode

import (
	"bytes"
	"context"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

func TestHostileNames(t *testing.T) {
	tn := startNode(t, "", nil)
	ctx := context.Background()
	o := encode(t, 3000, 31)
	keys := []string{
		"../../etc/passwd",
		"%2e%2e/x",
		"a/../../b",
		"/abs/path",
		"..",
		".",
		"a\x00b",
		"back\\slash\\..\\..",
		"new\nline",
		"ünïcödé/ключ/鍵",
		"?query=1&x=#frag",
		strings.Repeat("../", 300) + "x",
		strings.Repeat("k", client.MaxKeyLen),
	}
	for i, k := range keys {
		tn.put(t, "bk", k, ver(i), o, i%6)
	}
	for i, k := range keys {
		if got := tn.readAll(t, "bk", k, ver(i), i%6); !bytes.Equal(got, o.shards[i%6]) {
			t.Errorf("key %q: shard differs", k)
		}
		ks, err := tn.c.Stat(ctx, "bk", k)
		if err != nil || ks.Committed == nil || ks.Committed.Key != k {
			t.Errorf("key %q: Stat = %+v, %v", k, ks, err)
		}
	}
	page, err := tn.c.List(ctx, "bk", "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range page.Records {
		got = append(got, r.Key)
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	for _, bad := range []struct{ bucket, key string }{
		{"../x", "k"}, {"a\x00", "k"}, {"", "k"}, {"bk", ""}, {"bk", strings.Repeat("k", client.MaxKeyLen+1)},
	} {
		_, err := tn.c.Stage(ctx, bad.bucket, bad.key, ver(1), 0, testBlock, bytes.NewReader(o.shards[0]))
		wantKind(t, err, kerr.Invalid)
	}
	// Leave a staged shard too, so staging/ is checked as well.
	if _, err := tn.c.Stage(ctx, "bk", "../../../staged", ver(99), 0, testBlock, bytes.NewReader(o.shards[0])); err != nil {
		t.Fatal(err)
	}
	assertTidyDir(t, tn.cfg.Dir)
}

var (
	shardName   = regexp.MustCompile(`^shards/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})\.([0-9]|1[0-9]|2[0-3])$`)
	stagingName = regexp.MustCompile(`^staging/([0-9a-f]{64})\.([0-9]|1[0-9]|2[0-3])\.[0-9a-f]{16}$`)
	packName    = regexp.MustCompile(`^packs/[0-9]{8}\.pack$`)
	// badger's own files.
	metaName = regexp.MustCompile(`^meta/([0-9]{5,6}\.(sst|vlog|mem)|MANIFEST|KEYREGISTRY|DISCARD|LOCK)$`)
)

// assertTidyDir checks that every file under dir is inside it and named by
// the node's scheme, never by a client's name.
func assertTidyDir(t *testing.T, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("%s is outside %s", p, dir)
			return nil
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			return nil
		}
		n++
		switch {
		case strings.HasPrefix(rel, "meta/"):
			if !metaName.MatchString(rel) {
				t.Errorf("unexpected index file %s", rel)
			}
		case stagingName.MatchString(rel):
		case packName.MatchString(rel):
		case shardName.MatchString(rel):
			m := shardName.FindStringSubmatch(rel)
			if m[1] != m[3][:2] || m[2] != m[3][2:4] {
				t.Errorf("%s is not in its fan-out directory", rel)
			}
		default:
			t.Errorf("unexpected file %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("no files at all")
	}
}
