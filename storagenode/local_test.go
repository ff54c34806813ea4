package storagenode_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/testnode"
)

// nodeAPI is the node client's method set, which *client.Client and
// *storagenode.Local both have (TestLocalMethodSet checks all of it).
type nodeAPI interface {
	Stage(ctx context.Context, bucket, key, version string, shard, blockSize int, body io.Reader) (client.StagedRef, error)
	Commit(ctx context.Context, meta client.ObjectMeta) (client.Record, error)
	Abort(ctx context.Context, bucket, key, version string) error
	ReadShard(ctx context.Context, bucket, key, version string, shard int, off, length int64) (io.ReadCloser, error)
	Stat(ctx context.Context, bucket, key string) (client.KeyState, error)
	StatData(ctx context.Context, bucket, key string, max int64, parity bool) (client.KeyState, error)
	List(ctx context.Context, bucket, prefix, after string, limit int) (client.ListPage, error)
	PutBucket(ctx context.Context, b client.BucketRecord) error
	GetBucket(ctx context.Context, name string) (client.BucketRecord, error)
	ListBuckets(ctx context.Context) ([]client.BucketRecord, error)
	AddHints(ctx context.Context, hints []client.Hint) error
	ListHints(ctx context.Context, limit int) ([]client.Hint, error)
	DeleteHints(ctx context.Context, hints []client.Hint) error
	Health(ctx context.Context) (client.Health, error)
	GetMap(ctx context.Context) (*placement.Map, error)
	PutMap(ctx context.Context, m *placement.Map) error
	Verify(ctx context.Context, refs []client.ShardRef) ([]client.VerifyResult, error)
	ScrubStatus(ctx context.Context) (client.ScrubStatus, error)
	DropMarker(ctx context.Context, bucket, key, version string) (bool, error)
	ListStaged(ctx context.Context, limit int) ([]client.StagedShard, error)
	DropShard(ctx context.Context, bucket, key, version string, shard int) (bool, error)
}

var (
	_ nodeAPI = (*client.Client)(nil)
	_ nodeAPI = (*storagenode.Local)(nil)
)

// TestLocalMethodSet checks that Local has every exported method of
// *client.Client with the same signature, so that any interface the
// Client satisfies (the gateway's, the scrubber's) Local satisfies too.
func TestLocalMethodSet(t *testing.T) {
	ct := reflect.TypeFor[*client.Client]()
	lt := reflect.TypeFor[*storagenode.Local]()
	for i := range ct.NumMethod() {
		cm := ct.Method(i)
		lm, ok := lt.MethodByName(cm.Name)
		if !ok {
			t.Errorf("Local has no method %s", cm.Name)
			continue
		}
		// Drop the receivers before comparing.
		if got, want := sig(lm.Type), sig(cm.Type); got != want {
			t.Errorf("Local.%s is %s, Client's is %s", cm.Name, got, want)
		}
	}
}

func sig(f reflect.Type) string {
	var in, out []reflect.Type
	for i := 1; i < f.NumIn(); i++ {
		in = append(in, f.In(i))
	}
	for i := range f.NumOut() {
		out = append(out, f.Out(i))
	}
	return fmt.Sprint(in, out, f.IsVariadic())
}

const block = 4096

func version(i int) string {
	return ulid.MustNew(uint64(1_700_000_000_000+i), bytes.NewReader(make([]byte, 16))).String()
}

// object is a 4+2 object of size bytes, encoded.
type object struct {
	shards [][]byte
	meta   func(bucket, key, version string) client.ObjectMeta
}

func encode(t testing.TB, size int, seed uint64) object {
	t.Helper()
	c, err := codec.New(4, 2, codec.WithBlockSize(block))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	bufs := make([]*bytes.Buffer, 6)
	ws := make([]io.Writer, 6)
	for i := range bufs {
		bufs[i] = new(bytes.Buffer)
		ws[i] = bufs[i]
	}
	enc, err := c.Encode(bytes.NewReader(data), ws)
	if err != nil {
		t.Fatal(err)
	}
	o := object{}
	for _, b := range bufs {
		o.shards = append(o.shards, b.Bytes())
	}
	o.meta = func(bucket, key, version string) client.ObjectMeta {
		m := client.ObjectMeta{
			Bucket: bucket, Key: key, Version: version, Size: int64(size),
			Modified: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
			Data:     4, Parity: 2, BlockSize: block, Format: codec.FormatVersion,
			Nodes: []string{"node-0", "node-1", "node-2", "node-3", "node-4", "node-5"},
		}
		for _, r := range enc.Roots {
			m.Roots = append(m.Roots, r.String())
		}
		return m
	}
	return o
}

// put stages shard 1 of o under version and commits it.
func put(ctx context.Context, c nodeAPI, bucket string, o object, key, version string) error {
	if _, err := c.Stage(ctx, bucket, key, version, 1, block, bytes.NewReader(o.shards[1])); err != nil {
		return err
	}
	_, err := c.Commit(ctx, o.meta(bucket, key, version))
	return err
}

func testMap(epoch uint64) *placement.Map {
	m := &placement.Map{Epoch: epoch, DataShards: 2, ParityShards: 1}
	for i := range 3 {
		m.Nodes = append(m.Nodes, placement.Node{ID: fmt.Sprintf("n%d", i), Addr: fmt.Sprintf("10.0.0.%d:9101", i), Zone: fmt.Sprintf("z%d", i)})
	}
	return m.WithDefaults()
}

// zeroed is v with the times a node stamps itself zeroed (see noTimes).
func zeroed[T any](v T) T {
	zeroTimes(reflect.ValueOf(&v).Elem())
	return v
}

// noTimes zeroes the times a node stamps itself, which differ between two
// nodes given the same calls.
func noTimes[T any](v T, err error) (any, error) {
	return zeroed(v), err
}

func zeroTimes(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			zeroTimes(v.Elem())
		}
	case reflect.Slice:
		for i := range v.Len() {
			zeroTimes(v.Index(i))
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		for i := range v.NumField() {
			if v.Field(i).CanSet() {
				zeroTimes(v.Field(i))
			}
		}
	}
}

// TestLocalMatchesHTTP runs each case on a new node through its HTTP
// client and on another through a Local, and checks that both give the
// same answer and an error of the same kind, sentinel and type, the one
// the case expects.
func TestLocalMatchesHTTP(t *testing.T) {
	o := encode(t, 8*block+400, 1) // shards of 3 frames
	cases := []struct {
		name string
		kind kerr.Kind // of the call's error; Other: none
		// fresh runs the case on nodes of its own: it changes the
		// node's map.
		fresh bool
		is    error // a sentinel the error must match, if not nil
		call  func(ctx context.Context, c nodeAPI, b string) (any, error)
	}{
		{name: "put then stat", call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			if err := put(ctx, c, b, o, "k", version(1)); err != nil {
				return nil, err
			}
			return noTimes(c.Stat(ctx, b, "k"))
		}},
		{name: "stat data", call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			if err := put(ctx, c, b, o, "k", version(1)); err != nil {
				return nil, err
			}
			return noTimes(c.StatData(ctx, b, "k", 1<<20, false))
		}},
		{name: "staged newer than committed", call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			if err := put(ctx, c, b, o, "k", version(1)); err != nil {
				return nil, err
			}
			ref, err := c.Stage(ctx, b, "k", version(2), 1, block, bytes.NewReader(o.shards[1]))
			if err != nil {
				return nil, err
			}
			ks, err := c.Stat(ctx, b, "k")
			return []any{zeroed(ref), zeroed(ks)}, err
		}},
		{name: "read shard range", call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			if err := put(ctx, c, b, o, "k", version(1)); err != nil {
				return nil, err
			}
			rc, err := c.ReadShard(ctx, b, "k", version(1), 1, 10, block)
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(rc)
		}},
		{name: "read wrong shard", kind: kerr.NotExist, is: client.ErrWrongShard, call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			if err := put(ctx, c, b, o, "k", version(1)); err != nil {
				return nil, err
			}
			return c.ReadShard(ctx, b, "k", version(1), 2, 0, -1)
		}},
		{name: "read missing", kind: kerr.NotExist, call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			return c.ReadShard(ctx, b, "k", version(1), 1, 0, -1)
		}},
		{name: "stage corrupt block", kind: kerr.Corrupt, call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			bad := bytes.Clone(o.shards[1])
			bad[codec.DigestSize+5] ^= 1
			return c.Stage(ctx, b, "k", version(1), 1, block, bytes.NewReader(bad))
		}},
		{name: "stage cut in a digest", kind: kerr.Invalid, call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			return c.Stage(ctx, b, "k", version(1), 1, block, bytes.NewReader(o.shards[1][:codec.DigestSize+block+7]))
		}},
		{name: "stage bad block size", kind: kerr.Invalid, call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			return c.Stage(ctx, b, "k", version(1), 1, 1, bytes.NewReader(o.shards[1]))
		}},
		{name: "commit without stage", kind: kerr.NotExist, call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			return c.Commit(ctx, o.meta(b, "k", version(1)))
		}},
		{name: "commit older", kind: kerr.Conflict, call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			if err := put(ctx, c, b, o, "k", version(2)); err != nil {
				return nil, err
			}
			return nil, put(ctx, c, b, o, "k", version(1))
		}},
		{name: "abort then stat", call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			if _, err := c.Stage(ctx, b, "k", version(1), 1, block, bytes.NewReader(o.shards[1])); err != nil {
				return nil, err
			}
			if err := c.Abort(ctx, b, "k", version(1)); err != nil {
				return nil, err
			}
			return c.Stat(ctx, b, "k")
		}},
		{name: "stat bad key", kind: kerr.Invalid, call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			return c.Stat(ctx, b, "")
		}},
		{name: "list", call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			for i, k := range []string{"a", b, "c"} {
				if err := put(ctx, c, b, o, k, version(i)); err != nil {
					return nil, err
				}
			}
			return c.List(ctx, b, "", "a", 1)
		}},
		{name: "buckets", call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			rec := client.BucketRecord{Name: b, Version: version(1), Created: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
			if err := c.PutBucket(ctx, rec); err != nil {
				return nil, err
			}
			got, err := c.GetBucket(ctx, b)
			if err != nil {
				return nil, err
			}
			all, err := c.ListBuckets(ctx)
			return []any{got, all}, err
		}},
		{name: "older bucket", kind: kerr.Conflict, call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			if err := c.PutBucket(ctx, client.BucketRecord{Name: b, Version: version(2)}); err != nil {
				return nil, err
			}
			return nil, c.PutBucket(ctx, client.BucketRecord{Name: b, Version: version(1)})
		}},
		{name: "unknown bucket", kind: kerr.NotExist, call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			return c.GetBucket(ctx, "nope")
		}},
		{name: "hints", call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			hs := []client.Hint{
				{Bucket: b, Key: "k", Version: version(1), Shard: 2, Reason: "missing", Time: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
				{Bucket: b, Key: "j", Version: version(1), Shard: -1, Reason: "stale", Time: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
			}
			if err := c.AddHints(ctx, hs); err != nil {
				return nil, err
			}
			if err := c.DeleteHints(ctx, hs[:1]); err != nil {
				return nil, err
			}
			return c.ListHints(ctx, 0)
		}},
		{name: "verify", call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			if err := put(ctx, c, b, o, "k", version(1)); err != nil {
				return nil, err
			}
			return c.Verify(ctx, []client.ShardRef{
				{Bucket: b, Key: "k", Version: version(1), Shard: 1},
				{Bucket: b, Key: "k", Version: version(1), Shard: 3},
				{Bucket: b, Key: "x", Version: version(1), Shard: 0},
			})
		}},
		{name: "drops", call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			if err := put(ctx, c, b, o, "k", version(1)); err != nil {
				return nil, err
			}
			wrong, err := c.DropShard(ctx, b, "k", version(1), 2)
			if err != nil {
				return nil, err
			}
			right, err := c.DropShard(ctx, b, "k", version(1), 1)
			if err != nil {
				return nil, err
			}
			m := o.meta(b, "m", version(3))
			m.Deleted, m.Roots = true, nil
			if _, err := c.Commit(ctx, m); err != nil {
				return nil, err
			}
			marker, err := c.DropMarker(ctx, b, "m", version(3))
			return []bool{wrong, right, marker}, err
		}},
		{name: "list staged", call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			if _, err := c.Stage(ctx, b, "k", version(1), 1, block, bytes.NewReader(o.shards[1])); err != nil {
				return nil, err
			}
			return noTimes(c.ListStaged(ctx, 0))
		}},
		{name: "maps", fresh: true, call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			if err := c.PutMap(ctx, testMap(3)); err != nil {
				return nil, err
			}
			if err := c.PutMap(ctx, testMap(3)); err != nil {
				return nil, err
			}
			m, err := c.GetMap(ctx)
			if err != nil {
				return nil, err
			}
			h, err := c.Health(ctx)
			return []any{m, h.ID, h.Epoch}, err
		}},
		{name: "map of the same epoch, other content", fresh: true, kind: kerr.Conflict, call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			if err := c.PutMap(ctx, testMap(3)); err != nil {
				return nil, err
			}
			m := testMap(3)
			m.Nodes[0].Zone = "elsewhere"
			return nil, c.PutMap(ctx, m)
		}},
		{name: "no map", fresh: true, kind: kerr.NotExist, call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			return c.GetMap(ctx)
		}},
		{name: "stale epoch", fresh: true, kind: kerr.Conflict, is: client.ErrStaleMap, call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			if err := c.PutMap(ctx, testMap(5)); err != nil {
				return nil, err
			}
			f := client.NewFence(4, nil)
			_, err := c.Stat(client.WithFence(ctx, f), b, "k")
			var stale *client.StaleMapError
			if !errors.As(err, &stale) || stale.Map.Epoch != 5 || stale.Epoch != 4 {
				return nil, fmt.Errorf("want a *StaleMapError from epoch 4 to 5, got %w", err)
			}
			if f.Newer() == nil || f.Newer().Epoch != 5 {
				return nil, fmt.Errorf("the fence learnt %v, want the map of epoch 5 (err %w)", f.Newer(), err)
			}
			return nil, err
		}},
		{name: "stale epoch, shard read unfenced", fresh: true, call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			if err := put(ctx, c, b, o, "k", version(1)); err != nil {
				return nil, err
			}
			if err := c.PutMap(ctx, testMap(5)); err != nil {
				return nil, err
			}
			rc, err := c.ReadShard(client.WithFence(ctx, client.NewFence(4, nil)), b, "k", version(1), 1, 0, 8)
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(rc)
		}},
		{name: "cancelled", kind: kerr.Transient, is: context.Canceled, call: func(ctx context.Context, c nodeAPI, b string) (any, error) {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			return c.Stat(ctx, b, "k")
		}},
	}
	// Nodes are slow to open: the cases share two, each in a bucket of
	// its own, but for those that change the node's map.
	shared := [2]*testnode.Node{testnode.Start(t, storagenode.Config{Secret: []byte("secret")}), testnode.Start(t, storagenode.Config{})}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			viaHTTP, local := shared[0], shared[1]
			if tc.fresh {
				viaHTTP, local = testnode.Start(t, storagenode.Config{Secret: []byte("secret")}), testnode.Start(t, storagenode.Config{})
			}
			b := fmt.Sprintf("bucket%d", i)
			hv, herr := tc.call(ctx, viaHTTP.HTTP, b)
			lv, lerr := tc.call(ctx, local.Local, b)
			for _, r := range []struct {
				via string
				err error
			}{{"http", herr}, {"local", lerr}} {
				if got := kerr.KindOf(r.err); got != tc.kind || (r.err == nil) != (tc.kind == kerr.Other) {
					t.Errorf("%s: error %v, kind %v, want kind %v", r.via, r.err, got, tc.kind)
				}
				if tc.is != nil && !errors.Is(r.err, tc.is) {
					t.Errorf("%s: error %v, want one matching %v", r.via, r.err, tc.is)
				}
			}
			if hn, ln := client.Newer(herr), client.Newer(lerr); hn != ln {
				t.Errorf("conflict names %q over HTTP, %q in process", hn, ln)
			}
			if errors.Is(herr, client.ErrWrongShard) != errors.Is(lerr, client.ErrWrongShard) {
				t.Errorf("wrong shard over HTTP: %v; in process: %v", herr, lerr)
			}
			if herr == nil && !reflect.DeepEqual(hv, lv) {
				t.Errorf("answers differ:\nhttp:  %+v\nlocal: %+v", hv, lv)
			}
		})
	}
}
