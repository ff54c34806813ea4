package storagenode

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// nodeRoutes returns every "METHOD /path" the node registers, read from
// its sources, so that a route added later is covered without editing the
// test.
func nodeRoutes(t *testing.T) []string {
	t.Helper()
	re := regexp.MustCompile(`"((?:GET|PUT|POST|DELETE) /v1/[^"]*)"`)
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(src, -1) {
			routes = append(routes, string(m[1]))
		}
	}
	return routes
}

// nodeState is everything a refused request could have changed.
type nodeState struct {
	Bucket  client.BucketRecord
	Buckets []client.BucketRecord
	Key     client.KeyState
	Shard   []byte
	Hints   []client.Hint
	Shards  []string
	Staging []string
}

func snapshot(t *testing.T, tn *testNode) nodeState {
	t.Helper()
	ctx := context.Background()
	var s nodeState
	var err error
	if s.Bucket, err = tn.c.GetBucket(ctx, "bk"); err != nil {
		t.Fatal(err)
	}
	if s.Buckets, err = tn.c.ListBuckets(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Key, err = tn.c.Stat(ctx, "bk", "k"); err != nil {
		t.Fatal(err)
	}
	s.Shard = tn.readAll(t, "bk", "k", ver(2), 1)
	if s.Hints, err = tn.c.ListHints(ctx, 100); err != nil {
		t.Fatal(err)
	}
	s.Shards = files(t, tn.cfg.Dir, shardsDir)
	s.Staging = files(t, tn.cfg.Dir, stagingDir)
	return s
}

// TestEveryRouteNeedsClusterProof sends every route of the node API a
// request that would change something, without a signature and signed
// with the wrong secret: each is refused with 401 and the node's state is
// exactly what it was.
func TestEveryRouteNeedsClusterProof(t *testing.T) {
	secret := []byte("the cluster secret")
	tn := startNode(t, "", func(c *Config) { c.Secret = secret })
	ctx := context.Background()
	if err := tn.c.PutBucket(ctx, client.BucketRecord{Name: "bk", Version: ver(1)}); err != nil {
		t.Fatal(err)
	}
	o := encode(t, 9000, 5)
	tn.put(t, "bk", "k", ver(2), o, 1)
	if err := tn.c.AddHints(ctx, []client.Hint{{Bucket: "bk", Key: "k", Version: ver(2), Shard: 0, Reason: "missing", Time: time.Unix(1700000000, 0).UTC()}}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, tn)

	routes := nodeRoutes(t)
	if len(routes) < 15 {
		t.Fatalf("found only %d routes: %q", len(routes), routes)
	}
	marker, _ := json.Marshal(client.ObjectMeta{Bucket: "bk", Key: "k", Version: ver(3), Deleted: true})
	tomb, _ := json.Marshal(client.BucketRecord{Name: "bk", Version: ver(4), Deleted: true})
	hints, _ := json.Marshal(before.Hints)
	query := "?bucket=bk&key=k&version=" + ver(2) + "&shard=0&block=4096&name=bk&off=0&len=-1&limit=10"
	bodyFor := func(route string) []byte {
		switch {
		case strings.HasSuffix(route, "/v1/stage"):
			return o.shards[0]
		case strings.Contains(route, "/v1/bucket"):
			return tomb
		case strings.Contains(route, "/v1/hints"):
			return hints
		case strings.HasPrefix(route, "GET "):
			return nil
		}
		return marker
	}
	for _, route := range append(routes, "GET /v1/no-such-route") {
		method, path, _ := strings.Cut(route, " ")
		for _, who := range []string{"unsigned", "wrong secret", "signed for another path"} {
			body := bodyFor(route)
			req, err := http.NewRequest(method, tn.srv.URL+path+query, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			switch who {
			case "wrong secret":
				client.Sign(req, []byte("not the secret"), client.BodyDigest(body), time.Now())
			case "signed for another path":
				other, _ := http.NewRequest(method, tn.srv.URL+"/v1/health", nil)
				client.Sign(other, secret, client.BodyDigest(body), time.Now())
				for k, v := range other.Header {
					req.Header[k] = v
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var eb client.ErrorBody
			json.NewDecoder(resp.Body).Decode(&eb)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || eb.Kind != "unauthorized" {
				t.Errorf("%s, %s: %d %+v, want 401 unauthorized", route, who, resp.StatusCode, eb)
			}
		}
	}
	if after := snapshot(t, tn); !reflect.DeepEqual(before, after) {
		t.Errorf("refused requests changed the node:\nbefore %+v\nafter  %+v", before, after)
	}
}
