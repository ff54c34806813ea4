package gateway

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kintsugi-store/kintsugi/gateway/objects"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// fakeBackend is an in-memory Backend for tests, with fault hooks. It
// buffers whole objects, which only a test double may do.
type fakeBackend struct {
	mu      sync.Mutex
	buckets map[string]*fakeBucket
	clock   time.Time

	// Fault hooks, set before use.
	failAfter  int64 // WriteRange fails after writing this many bytes; <0 never
	openErr    error // returned by every OpenObject
	putErr     error // returned by every PutObject after reading the body
	puts       int   // PutObject calls that reached the backend
	lastPutErr error // the error the last PutObject returned

	uploads map[string]*fakeUpload // multipart uploads by id; see fake_multipart_test.go
}

type fakeBucket struct {
	created time.Time
	config  objects.BucketConfig
	objs    map[string]fakeObject
}

type fakeObject struct {
	info objects.ObjectInfo
	data []byte
	fail int64 // see fakeBackend.failAfter
}

func newFake() *fakeBackend {
	return &fakeBackend{
		buckets:   make(map[string]*fakeBucket),
		clock:     time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		failAfter: -1,
	}
}

var (
	_ Backend = (*fakeBackend)(nil)
	_ Backend = (*objects.Store)(nil) // the real store keeps the contract
)

// tick advances the fake clock by a second and returns it; callers hold mu.
func (f *fakeBackend) tick() time.Time {
	f.clock = f.clock.Add(time.Second)
	return f.clock
}

func (f *fakeBackend) bucket(op, name string) (*fakeBucket, error) {
	b, ok := f.buckets[name]
	if !ok {
		return nil, kerr.E(op, kerr.NotExist, objects.ErrNoSuchBucket)
	}
	return b, nil
}

func (f *fakeBackend) CreateBucket(ctx context.Context, name string) error {
	const op = "fake.CreateBucket"
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.buckets[name]; ok {
		return kerr.E(op, kerr.Exist, objects.ErrBucketExists)
	}
	f.buckets[name] = &fakeBucket{created: f.tick(), objs: make(map[string]fakeObject)}
	return nil
}

func (f *fakeBackend) HeadBucket(ctx context.Context, name string) (objects.BucketInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.bucket("fake.HeadBucket", name)
	if err != nil {
		return objects.BucketInfo{}, err
	}
	return objects.BucketInfo{Name: name, Created: b.created, Config: b.config}, nil
}

func (f *fakeBackend) UpdateBucket(ctx context.Context, name string, update func(*objects.BucketConfig)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.bucket("fake.UpdateBucket", name)
	if err != nil {
		return err
	}
	update(&b.config)
	return nil
}

func (f *fakeBackend) DeleteBucket(ctx context.Context, name string) error {
	const op = "fake.DeleteBucket"
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.bucket(op, name)
	if err != nil {
		return err
	}
	if len(b.objs) > 0 {
		return kerr.E(op, kerr.NotEmpty, objects.ErrBucketNotEmpty)
	}
	delete(f.buckets, name)
	return nil
}

func (f *fakeBackend) ListBuckets(ctx context.Context) ([]objects.BucketInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []objects.BucketInfo
	for _, name := range slices.Sorted(maps.Keys(f.buckets)) {
		b := f.buckets[name]
		out = append(out, objects.BucketInfo{Name: name, Created: b.created, Config: b.config})
	}
	return out, nil
}

func (f *fakeBackend) PutObject(ctx context.Context, in objects.PutInput) (info objects.ObjectInfo, err error) {
	const op = "fake.PutObject"
	defer func() { f.mu.Lock(); f.lastPutErr = err; f.mu.Unlock() }()
	f.mu.Lock()
	f.puts++
	_, err = f.bucket(op, in.Bucket)
	putErr := f.putErr
	f.mu.Unlock()
	if err != nil {
		return objects.ObjectInfo{}, err
	}
	// Like the real store, read exactly the declared size and no further.
	var data []byte
	if in.Size >= 0 {
		data = make([]byte, in.Size)
		if _, err := io.ReadFull(in.Body, data); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				err = objects.ErrIncompleteBody
			}
			return objects.ObjectInfo{}, kerr.E(op, kerr.Invalid, err)
		}
	} else if data, err = io.ReadAll(in.Body); err != nil {
		return objects.ObjectInfo{}, kerr.E(op, err)
	}
	if putErr != nil {
		return objects.ObjectInfo{}, kerr.E(op, putErr)
	}
	sum := md5.Sum(data)
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.bucket(op, in.Bucket)
	if err != nil {
		return objects.ObjectInfo{}, err
	}
	info = objects.ObjectInfo{
		Bucket:      in.Bucket,
		Key:         in.Key,
		Version:     fmt.Sprintf("v%d", f.puts),
		Size:        int64(len(data)),
		ETag:        hex.EncodeToString(sum[:]),
		ContentType: in.ContentType,
		UserMeta:    maps.Clone(in.UserMeta),
		Headers:     maps.Clone(in.Headers),
		Tagging:     in.Tagging,
		Modified:    f.tick(),
	}
	if in.Checksums != nil {
		info.Checksums = in.Checksums()
	}
	b.objs[in.Key] = fakeObject{info: info, data: data}
	return info, nil
}

func (f *fakeBackend) object(op, bucket, key string) (fakeObject, error) {
	b, err := f.bucket(op, bucket)
	if err != nil {
		return fakeObject{}, err
	}
	o, ok := b.objs[key]
	if !ok {
		return fakeObject{}, kerr.E(op, kerr.NotExist, objects.ErrNoSuchKey)
	}
	return o, nil
}

func (f *fakeBackend) OpenObject(ctx context.Context, bucket, key string) (objects.Object, error) {
	const op = "fake.OpenObject"
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openErr != nil {
		return nil, kerr.E(op, f.openErr)
	}
	o, err := f.object(op, bucket, key)
	if err != nil {
		return nil, err
	}
	o.fail = f.failAfter
	return o, nil
}

func (f *fakeBackend) StatObject(ctx context.Context, bucket, key string) (objects.ObjectInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, err := f.object("fake.StatObject", bucket, key)
	return o.info, err
}

func (f *fakeBackend) DeleteObject(ctx context.Context, bucket, key string) error {
	const op = "fake.DeleteObject"
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.object(op, bucket, key); err != nil {
		return err
	}
	delete(f.buckets[bucket].objs, key)
	return nil
}

func (f *fakeBackend) ListObjects(ctx context.Context, bucket string, opts objects.ListOptions) (objects.ListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.bucket("fake.ListObjects", bucket)
	if err != nil {
		return objects.ListResult{}, err
	}
	limit := opts.MaxKeys
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var res objects.ListResult
	n := 0
	for _, key := range slices.Sorted(maps.Keys(b.objs)) {
		if !strings.HasPrefix(key, opts.Prefix) || key <= opts.After {
			continue
		}
		entry, prefix := key, false
		if opts.Delimiter != "" {
			if i := strings.Index(key[len(opts.Prefix):], opts.Delimiter); i >= 0 {
				entry, prefix = key[:len(opts.Prefix)+i+len(opts.Delimiter)], true
				// A common prefix at or before After was on an earlier page.
				if entry <= opts.After || (len(res.CommonPrefixes) > 0 && res.CommonPrefixes[len(res.CommonPrefixes)-1] == entry) {
					continue
				}
			}
		}
		if n == limit {
			res.Truncated = true
			break
		}
		n++
		if prefix {
			res.CommonPrefixes = append(res.CommonPrefixes, entry)
		} else {
			res.Objects = append(res.Objects, b.objs[key].info)
		}
		res.NextAfter = entry
	}
	if !res.Truncated {
		res.NextAfter = ""
	}
	return res, nil
}

// put stores an object directly, for tests that only read.
func (f *fakeBackend) put(bucket, key, data string) objects.ObjectInfo {
	if _, err := f.HeadBucket(context.Background(), bucket); err != nil {
		if err := f.CreateBucket(context.Background(), bucket); err != nil {
			panic(err)
		}
	}
	info, err := f.PutObject(context.Background(), objects.PutInput{
		Bucket: bucket, Key: key, Size: int64(len(data)), Body: strings.NewReader(data),
		ContentType: defaultContentType,
	})
	if err != nil {
		panic(err)
	}
	return info
}

// data returns the stored bytes of an object and whether it exists.
func (f *fakeBackend) data(bucket, key string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, err := f.object("fake.data", bucket, key)
	return string(o.data), err == nil
}

func (o fakeObject) Info() objects.ObjectInfo { return o.info }

func (o fakeObject) WriteRange(ctx context.Context, w io.Writer, off, length int64) error {
	if off < 0 || length < 0 || off+length > int64(len(o.data)) {
		return kerr.E("fake.WriteRange", kerr.Invalid, objects.ErrInvalidRange)
	}
	b := o.data[off : off+length]
	if o.fail >= 0 && o.fail < length {
		if _, err := w.Write(b[:o.fail]); err != nil {
			return err
		}
		return kerr.E("fake.WriteRange", kerr.Unavailable, objects.ErrQuorum)
	}
	_, err := w.Write(b)
	return err
}

// SetObjectTags changes the tags of the object in place; the fake keeps
// one version per key, named "" or "null".
func (f *fakeBackend) SetObjectTags(ctx context.Context, bucket, key, id, tagging string) (objects.ObjectInfo, error) {
	const op = "fake.SetObjectTags"
	f.mu.Lock()
	defer f.mu.Unlock()
	o, err := f.object(op, bucket, key)
	if err != nil {
		return objects.ObjectInfo{}, err
	}
	if id != "" && id != "null" {
		return objects.ObjectInfo{}, kerr.E(op, kerr.NotExist, objects.ErrNoSuchVersion)
	}
	o.info.Tagging = tagging
	f.buckets[bucket].objs[key] = o
	return o.info, nil
}
