package storagenode

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

func TestAuth(t *testing.T) {
	secret := []byte("cluster secret")
	var logs lockedBuffer
	tn := startNode(t, "", func(c *Config) {
		c.Secret = secret
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	ctx := context.Background()
	bucket := client.BucketRecord{Name: "bk", Version: ver(1)}
	o := encode(t, 5000, 21)

	// Clients without the right secret are refused and change nothing.
	for name, c := range map[string]*client.Client{
		"no secret":    client.New(tn.srv.URL, nil),
		"wrong secret": client.New(tn.srv.URL, &client.Options{Secret: []byte("guess")}),
	} {
		wantKind(t, c.PutBucket(ctx, bucket), kerr.Unauthorized)
		_, err := c.Stage(ctx, "bk", "k", ver(1), 0, testBlock, bytes.NewReader(o.shards[0]))
		wantKind(t, err, kerr.Unauthorized)
		_, err = c.Commit(ctx, client.ObjectMeta{Bucket: "bk", Key: "m", Version: ver(1), Deleted: true})
		wantKind(t, err, kerr.Unauthorized)
		_, err = c.Health(ctx)
		if !kerr.Is(kerr.Unauthorized, err) {
			t.Errorf("%s: Health: %v, want Unauthorized", name, err)
		}
	}

	sign := func(method, path string, body []byte, digest string, date time.Time) *http.Request {
		req, err := http.NewRequest(method, tn.srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		client.Sign(req, secret, digest, date)
		return req
	}
	bucketJSON, _ := json.Marshal(bucket)
	otherJSON, _ := json.Marshal(client.BucketRecord{Name: "evil", Version: ver(2)})
	tampered := sign("PUT", "/v1/bucket", bucketJSON, client.BodyDigest(bucketJSON), time.Now())
	tampered.Body = io.NopCloser(bytes.NewReader(otherJSON))
	tampered.ContentLength = int64(len(otherJSON))
	requery := sign("GET", "/v1/bucket?name=bk", nil, client.BodyDigest(nil), time.Now())
	requery.URL.RawQuery = "name=evil"
	unsignedJSON := sign("PUT", "/v1/bucket", bucketJSON, client.UnsignedStream, time.Now())
	badSig := sign("PUT", "/v1/bucket", bucketJSON, client.BodyDigest(bucketJSON), time.Now())
	badSig.Header.Set(client.HeaderSignature, strings.Repeat("ab", 32))
	noHeaders, _ := http.NewRequest("PUT", tn.srv.URL+"/v1/bucket", bytes.NewReader(bucketJSON))

	for name, req := range map[string]*http.Request{
		"no headers":          noHeaders,
		"stale date":          sign("PUT", "/v1/bucket", bucketJSON, client.BodyDigest(bucketJSON), time.Now().Add(-time.Hour)),
		"future date":         sign("PUT", "/v1/bucket", bucketJSON, client.BodyDigest(bucketJSON), time.Now().Add(time.Hour)),
		"body swapped":        tampered,
		"query changed":       requery,
		"unsigned JSON body":  unsignedJSON,
		"bad signature":       badSig,
		"stage with old date": sign("PUT", "/v1/stage?bucket=bk&key=k&version="+ver(1)+"&shard=0&block=4096", o.shards[0], client.UnsignedStream, time.Now().Add(-time.Hour)),
		"stale health probe":  sign("GET", "/v1/health", nil, client.BodyDigest(nil), time.Now().Add(-time.Hour)),
	} {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var eb client.ErrorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || eb.Kind != "unauthorized" {
			t.Errorf("%s: status %d %+v, want 401 unauthorized", name, resp.StatusCode, eb)
		}
	}

	if got := strings.Count(logs.String(), "rejected request"); got < 9 {
		t.Errorf("%d rejected requests logged, want at least 9:\n%s", got, logs.String())
	}

	// Nothing changed.
	good := tn.c
	if _, err := good.GetBucket(ctx, "bk"); !kerr.Is(kerr.NotExist, err) {
		t.Errorf("bucket created by a refused request: %v", err)
	}
	if _, err := good.GetBucket(ctx, "evil"); !kerr.Is(kerr.NotExist, err) {
		t.Errorf("bucket created by a tampered request: %v", err)
	}
	if ks, err := good.Stat(ctx, "bk", "k"); err != nil || len(ks.Staged) != 0 {
		t.Errorf("staged by a refused request: %+v, %v", ks, err)
	}
	if got := files(t, tn.cfg.Dir, stagingDir); len(got) != 0 {
		t.Errorf("staging files from refused requests: %v", got)
	}

	// The right secret works for everything, streams included.
	if err := good.PutBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	tn.put(t, "bk", "k", ver(3), o, 0)
	if got := tn.readAll(t, "bk", "k", ver(3), 0); !bytes.Equal(got, o.shards[0]) {
		t.Error("signed round trip differs")
	}
	raw := sign("PUT", "/v1/bucket", otherJSON, client.BodyDigest(otherJSON), time.Now())
	resp, err := http.DefaultClient.Do(raw)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("correctly signed raw request: status %d", resp.StatusCode)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
