package objects

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// listAll pages through a listing and returns every entry, objects as keys
// and common prefixes as they are, in order, plus the number of pages.
func listAll(t *testing.T, s *Store, opts ListOptions) ([]string, int) {
	t.Helper()
	var out []string
	for pages := 1; ; pages++ {
		res, err := s.ListObjects(context.Background(), testBucket, opts)
		if err != nil {
			t.Fatal(err)
		}
		n := len(res.Objects) + len(res.CommonPrefixes)
		if max := opts.MaxKeys; max > 0 && n > max {
			t.Fatalf("page of %d entries, MaxKeys %d", n, max)
		}
		out = append(out, merge(res)...)
		if !res.Truncated {
			if res.NextAfter != "" {
				t.Fatalf("NextAfter %q on the last page", res.NextAfter)
			}
			return out, pages
		}
		if n == 0 || res.NextAfter != out[len(out)-1] {
			t.Fatalf("truncated page of %d entries with NextAfter %q", n, res.NextAfter)
		}
		opts.After = res.NextAfter
	}
}

// merge returns a page's objects and common prefixes in key order.
func merge(res ListResult) []string {
	var out []string
	for _, o := range res.Objects {
		out = append(out, o.Key)
	}
	out = append(out, res.CommonPrefixes...)
	slices.Sort(out)
	return out
}

func TestList(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	keys := []string{"a", "b/1", "b/2", "b/c/3", "b/c/4", "b/d", "c", "d/x/y", "d/z", "e"}
	for _, k := range keys {
		c.put(k, []byte(k))
	}
	c.put("gone", []byte("x"))
	c.put("b/c/gone", []byte("x"))
	c.put("f/gone", []byte("x"))
	for _, k := range []string{"gone", "b/c/gone", "f/gone"} {
		if err := c.s.DeleteObject(context.Background(), testBucket, k); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		opts ListOptions
		want []string
	}{
		{ListOptions{}, keys},
		{ListOptions{Prefix: "b/"}, []string{"b/1", "b/2", "b/c/3", "b/c/4", "b/d"}},
		{ListOptions{Prefix: "b/c"}, []string{"b/c/3", "b/c/4"}},
		{ListOptions{Prefix: "zz"}, nil},
		{ListOptions{Delimiter: "/"}, []string{"a", "b/", "c", "d/", "e"}},
		{ListOptions{Prefix: "b/", Delimiter: "/"}, []string{"b/1", "b/2", "b/c/", "b/d"}},
		{ListOptions{Prefix: "b", Delimiter: "/"}, []string{"b/"}},
		{ListOptions{Prefix: "d/", Delimiter: "/"}, []string{"d/x/", "d/z"}},
		{ListOptions{Delimiter: "/c/"}, []string{"a", "b/1", "b/2", "b/c/", "b/d", "c", "d/x/y", "d/z", "e"}},
		{ListOptions{After: "b/c/3"}, []string{"b/c/4", "b/d", "c", "d/x/y", "d/z", "e"}},
		{ListOptions{After: "b/", Delimiter: "/"}, []string{"c", "d/", "e"}},
		{ListOptions{After: "b/1", Delimiter: "/"}, []string{"b/", "c", "d/", "e"}},
		{ListOptions{After: "zzz"}, nil},
	}
	for _, tt := range tests {
		for _, max := range []int{0, 1, 2, 3} {
			t.Run(fmt.Sprintf("%+v/max%d", tt.opts, max), func(t *testing.T) {
				opts := tt.opts
				opts.MaxKeys = max
				got, _ := listAll(t, c.s, opts)
				if !slices.Equal(got, tt.want) {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			})
		}
	}

	res, err := c.s.ListObjects(context.Background(), testBucket, ListOptions{Prefix: "b/", Delimiter: "/", MaxKeys: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Truncated || res.NextAfter != "b/2" || len(res.Objects) != 2 || len(res.CommonPrefixes) != 0 {
		t.Fatalf("first page %+v", res)
	}
	if o := res.Objects[0]; o.Key != "b/1" || o.Size != 3 || o.ETag != md5hex([]byte("b/1")) {
		t.Fatalf("object %+v", o)
	}
}

func TestListPagination(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	var keys []string
	for i := range 60 {
		k := fmt.Sprintf("k%03d", i)
		keys = append(keys, k)
		c.put(k, []byte{byte(i)})
	}
	// Delete every fifth key: deleted keys never take a slot in a page.
	var live []string
	for i, k := range keys {
		if i%5 == 0 {
			if err := c.s.DeleteObject(context.Background(), testBucket, k); err != nil {
				t.Fatal(err)
			}
			continue
		}
		live = append(live, k)
	}
	for _, max := range []int{1, 7, 47, 48, 49, 1000} {
		got, pages := listAll(t, c.s, ListOptions{MaxKeys: max})
		if !slices.Equal(got, live) {
			t.Fatalf("max %d: got %q", max, got)
		}
		if want := (len(live) + max - 1) / max; pages != want {
			t.Fatalf("max %d: %d pages, want %d", max, pages, want)
		}
	}
	// Many common prefixes, paged.
	for i := range 12 {
		for j := range 3 {
			c.put(fmt.Sprintf("p%02d/x%d", i, j), nil)
		}
	}
	got, _ := listAll(t, c.s, ListOptions{Prefix: "p", Delimiter: "/", MaxKeys: 5})
	var want []string
	for i := range 12 {
		want = append(want, fmt.Sprintf("p%02d/", i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// Nodes disagree when one missed writes; the newest version of each key
// wins, delete markers included.
func TestListMergesNewest(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	ctx := context.Background()
	c.put("over", []byte("v1"))
	c.put("del", []byte("v1"))
	c.put("same", []byte("v1"))
	lagging := c.list[2]
	lagging.SetDown("*", true)
	i2 := c.put("over", []byte("version two"))
	if err := c.s.DeleteObject(ctx, testBucket, "del"); err != nil {
		t.Fatal(err)
	}
	c.put("new", []byte("only on five"))
	lagging.SetDown("*", false)

	res, err := c.s.ListObjects(ctx, testBucket, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := merge(res); !slices.Equal(got, []string{"new", "over", "same"}) {
		t.Fatalf("keys %q", got)
	}
	if o := res.Objects[1]; o.Version != i2.Version || o.Size != int64(len("version two")) {
		t.Fatalf("over listed as %+v, want version %s", o, i2.Version)
	}
	// GET agrees with the listing.
	for _, o := range res.Objects {
		st, err := c.s.StatObject(ctx, testBucket, o.Key)
		if err != nil || !equalInfo(st, o) {
			t.Fatalf("stat %s: %+v, %v; listed %+v", o.Key, st, err, o)
		}
	}
	_, err = c.s.StatObject(ctx, testBucket, "del")
	wantErr(t, err, ErrNoSuchKey, kerr.NotExist)
}

func TestListQuorum(t *testing.T) {
	c := newCluster(t, 6, 4, 2)
	for i := range 5 {
		c.put(fmt.Sprint("k", i), nil)
	}
	c.list[0].SetDown("list", true)
	c.list[4].SetDown("list", true)
	got, _ := listAll(t, c.s, ListOptions{MaxKeys: 2})
	if !slices.Equal(got, []string{"k0", "k1", "k2", "k3", "k4"}) {
		t.Fatalf("with two nodes down: %q", got)
	}
	c.list[5].SetDown("list", true)
	_, err := c.s.ListObjects(context.Background(), testBucket, ListOptions{})
	wantErr(t, err, ErrQuorum, kerr.Unavailable)
	if !strings.Contains(err.Error(), "3 of 6") {
		t.Fatalf("error %q does not say how many answered", err)
	}
}
