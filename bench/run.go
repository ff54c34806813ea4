package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// Workloads.
const (
	WorkloadPut    = "put"    // write new objects, numbered after any the prefix holds
	WorkloadGet    = "get"    // read and verify existing objects
	WorkloadMixed  = "mixed"  // Config.Mix of put, get, delete and list
	WorkloadList   = "list"   // page through the prefix
	WorkloadDelete = "delete" // delete existing objects until none is left
)

// Defaults.
const (
	DefaultRegion      = "us-east-1"
	DefaultBucket      = "kintsugi-bench"
	DefaultPrefix      = "bench/"
	DefaultConcurrency = 8
	DefaultDuration    = 20 * time.Second
	DefaultPageSize    = 1000
	DefaultSeed        = 1
)

// Config describes one run of the load generator. Zero values of optional
// fields take the defaults above.
type Config struct {
	Endpoint  string // S3 endpoint URL, e.g. http://127.0.0.1:9000; required
	Region    string
	AccessKey string // empty: anonymous requests
	SecretKey string
	Bucket    string // created if missing
	Prefix    string // every key the run touches starts with it

	Workload string   // one of the Workload constants; required
	Mix      Mix      // weights for WorkloadMixed
	Size     SizeDist // sizes of the objects written (the zero value: empty objects)
	// MatchSize restricts get, delete and mixed to existing objects whose
	// size is within Size; otherwise they use every object under Prefix.
	MatchSize bool

	Concurrency int // requests in flight
	// Duration bounds the measured phase; Count bounds it by number of
	// operations. With both, the first reached ends the run; with neither,
	// Duration is DefaultDuration.
	Duration time.Duration
	Count    int64
	// Warmup runs the workload this long before measuring; what happens
	// during the warm-up is not reported.
	Warmup time.Duration
	// Objects is how many objects get, list, delete and mixed write first
	// when the prefix holds none; 0 means max(16, 4*Concurrency), and at
	// least Count for delete.
	Objects int
	// Seed determines the content of every object. A run verifies GETs
	// against the content its own seed generates, so reading objects
	// written with another seed reports verify failures.
	Seed     uint64
	PageSize int // keys per list request

	SignPayload bool         // send SHA-256 payload hashes instead of UNSIGNED-PAYLOAD
	Insecure    bool         // skip TLS certificate verification
	HTTPClient  *http.Client // nil: a client tuned for Concurrency

	// Progress, if set, is called about once a second from its own
	// goroutine while the run measures (and warms up).
	Progress func(Progress)
	Logger   *slog.Logger // nil: discard
}

// validate fills in defaults and checks c.
func (c *Config) validate() error {
	const op = "bench.Config"
	if c.Endpoint == "" {
		return kerr.E(op, kerr.Invalid, "no endpoint")
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return kerr.E(op, kerr.Invalid, fmt.Errorf("endpoint %q: want http://host:port or https://host:port", c.Endpoint))
	}
	switch c.Workload {
	case WorkloadPut, WorkloadGet, WorkloadList, WorkloadDelete:
	case WorkloadMixed:
		if c.Mix == (Mix{}) {
			return kerr.E(op, kerr.Invalid, "mixed workload without a mix")
		}
	default:
		return kerr.E(op, kerr.Invalid, fmt.Errorf("unknown workload %q", c.Workload))
	}
	if c.Size.Min < 0 || c.Size.Max < c.Size.Min {
		return kerr.E(op, kerr.Invalid, fmt.Errorf("bad size distribution %d-%d", c.Size.Min, c.Size.Max))
	}
	if c.Concurrency < 0 || c.Count < 0 || c.Duration < 0 || c.Warmup < 0 || c.Objects < 0 || c.PageSize < 0 {
		return kerr.E(op, kerr.Invalid, "negative concurrency, count, duration, warm-up, objects or page size")
	}
	if c.AccessKey != "" && c.SecretKey == "" {
		return kerr.E(op, kerr.Invalid, "access key without a secret key")
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Duration == 0 && c.Count == 0 {
		c.Duration = DefaultDuration
	}
	if c.Objects == 0 {
		c.Objects = max(16, 4*c.Concurrency)
		if c.Workload == WorkloadDelete {
			c.Objects = max(c.Objects, int(min(c.Count, 1<<30)))
		}
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Run runs the workload of cfg against its endpoint and reports what it
// measured. An error means the run could not be set up (bad config,
// unreachable endpoint, no bucket, the objects to read could not be
// written); failures of measured requests are counted in the Report, which
// is also returned, marked Interrupted, when ctx ends early.
//
// Every workload starts by listing the prefix. Puts number their objects
// on from the highest number found there, so a run adds to what earlier
// runs left and never overwrites it. Runs writing to the same prefix at
// the same time may still pick the same numbers: give each its own prefix.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	const op = "bench.Run"
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, s3: newS3Client(&cfg), src: NewSource(cfg.Seed), pool: newObjectPool()}
	if err := ensureBucket(ctx, r.s3, cfg.Bucket); err != nil {
		return nil, kerr.E(op, err)
	}
	keys, err := r.scan(ctx)
	if err != nil {
		return nil, kerr.E(op, err)
	}
	if cfg.Workload != WorkloadPut {
		if err := r.prepare(ctx, keys); err != nil {
			return nil, kerr.E(op, err)
		}
	}
	rep := &Report{
		Workload:    cfg.Workload,
		Endpoint:    cfg.Endpoint,
		Bucket:      cfg.Bucket,
		Prefix:      cfg.Prefix,
		Concurrency: cfg.Concurrency,
		Size:        cfg.Size,
		Seed:        cfg.Seed,
		Warmup:      cfg.Warmup,
	}
	if cfg.Workload == WorkloadMixed {
		rep.Mix = cfg.Mix
	}
	if cfg.Workload == WorkloadGet || cfg.Workload == WorkloadDelete {
		// They work on what they found: report those sizes.
		rep.Size = r.pool.sizes()
	}
	r.measure(ctx).report(rep)
	rep.Interrupted = ctx.Err() != nil
	return rep, nil
}

// runner is the state of one Run.
type runner struct {
	cfg   Config
	s3    *s3.Client
	src   *Source
	pool  *objectPool   // objects known to exist (not used by put)
	nextN atomic.Uint64 // number of the next object to put: past every one found under the prefix
}

// scan lists the prefix once before the run. It sets nextN past the
// highest object number found, whatever its size, so that a put never
// overwrites an object an earlier run left, and, for every workload but
// put, fills the pool with the objects to work on. It returns how many keys
// of any naming are under the prefix.
func (r *runner) scan(ctx context.Context) (keys int, err error) {
	const op = "bench.scan"
	var nextN uint64
	p := s3.NewListObjectsV2Paginator(r.s3, &s3.ListObjectsV2Input{
		Bucket: aws.String(r.cfg.Bucket),
		Prefix: aws.String(r.cfg.Prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, kerr.E(op, err)
		}
		for _, o := range page.Contents {
			keys++
			n, size, ok := ParseObjectKey(r.cfg.Prefix, aws.ToString(o.Key))
			if !ok {
				continue // not ours: never read, verified or deleted, and no number to skip
			}
			if n == math.MaxUint64 {
				return 0, kerr.E(op, kerr.Invalid, fmt.Errorf("object %q leaves no number for new objects; use another prefix", aws.ToString(o.Key)))
			}
			nextN = max(nextN, n+1)
			if r.cfg.Workload == WorkloadPut {
				continue // put only needs the numbers; keep no pool
			}
			if r.cfg.MatchSize && (size < r.cfg.Size.Min || size > r.cfg.Size.Max) {
				continue
			}
			r.pool.add(entry{key: aws.ToString(o.Key), size: size})
		}
	}
	r.nextN.Store(nextN)
	if nextN > 0 {
		r.cfg.Logger.Info("numbering after existing objects", "bucket", r.cfg.Bucket, "prefix", r.cfg.Prefix, "next", nextN)
	}
	return keys, nil
}

// prepare makes sure get, list, delete and mixed have objects to work on:
// the ones scan found (keys under the prefix, of which the pool holds
// those of our naming and size), or else ones it writes now.
func (r *runner) prepare(ctx context.Context, keys int) error {
	const op = "bench.prepare"
	if matching := r.pool.len(); matching > 0 {
		r.cfg.Logger.Info("using existing objects", "bucket", r.cfg.Bucket, "prefix", r.cfg.Prefix, "objects", matching)
		return nil
	}
	if r.cfg.Workload == WorkloadList && keys > 0 {
		return nil // listing whatever is there is the point
	}
	r.cfg.Logger.Info("writing objects first", "bucket", r.cfg.Bucket, "prefix", r.cfg.Prefix,
		"objects", r.cfg.Objects, "size", r.cfg.Size.String())
	var (
		wg       sync.WaitGroup
		left     atomic.Int64
		errOnce  sync.Once
		firstErr error
	)
	left.Store(int64(r.cfg.Objects))
	for i := range min(r.cfg.Concurrency, r.cfg.Objects) {
		wg.Go(func() {
			w := r.newWorker(i)
			for left.Add(-1) >= 0 && ctx.Err() == nil {
				if o := r.put(ctx, w); o.err != nil {
					errOnce.Do(func() { firstErr = o.err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return kerr.E(op, fmt.Errorf("writing the objects to work on: %w", firstErr))
	}
	return nil
}

// worker is the private state of one request loop.
type worker struct {
	rng   *rand.Rand
	token *string // list continuation
}

func (r *runner) newWorker(i int) *worker {
	return &worker{rng: rand.New(rand.NewPCG(r.cfg.Seed, uint64(i)+1))}
}

// measure runs the request loops through the warm-up and the measured
// phase and returns what they recorded.
func (r *runner) measure(ctx context.Context) *recorder {
	begin := time.Now()
	start := begin.Add(r.cfg.Warmup)
	var deadline time.Time
	if r.cfg.Duration > 0 {
		deadline = start.Add(r.cfg.Duration)
	}
	rec := newRecorder(start)
	done := make(chan struct{})
	var progress sync.WaitGroup
	if r.cfg.Progress != nil {
		progress.Go(func() { r.progress(rec, done) })
	}
	var issued atomic.Int64
	var wg sync.WaitGroup
	for i := range r.cfg.Concurrency {
		wg.Go(func() {
			w := r.newWorker(i)
			for ctx.Err() == nil {
				now := time.Now()
				if !now.Before(start) {
					if !deadline.IsZero() && !now.Before(deadline) {
						return
					}
					if r.cfg.Count > 0 && issued.Add(1) > r.cfg.Count {
						return
					}
				}
				o, ok := r.do(ctx, w)
				if !ok {
					return // nothing left to work on
				}
				if o.err != nil && ctx.Err() != nil {
					return // interrupted, not failed
				}
				if !o.start.IsZero() {
					rec.add(o)
				}
			}
		})
	}
	wg.Wait()
	close(done)
	progress.Wait() // no callback may run after Run returns
	return rec
}

// progress calls cfg.Progress once a second until done is closed.
func (r *runner) progress(rec *recorder, done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			p := rec.snapshot(now)
			p.Warmup = now.Before(rec.start)
			r.cfg.Progress(p)
		}
	}
}

// do runs one operation of the workload. ok false means the workload has
// nothing left to do (delete ran out of objects). An outcome with a zero
// start is not to be recorded.
func (r *runner) do(ctx context.Context, w *worker) (o outcome, ok bool) {
	switch r.cfg.Workload {
	case WorkloadPut:
		return r.put(ctx, w), true
	case WorkloadGet:
		e, ok := r.pool.next()
		if !ok {
			return outcome{}, false
		}
		return r.get(ctx, e), true
	case WorkloadDelete:
		e, ok := r.pool.takeLast()
		if !ok {
			return outcome{}, false
		}
		return r.delete(ctx, e), true
	case WorkloadList:
		return r.list(ctx, w), true
	}
	// Mixed: reads and deletes fall back to a write when there is nothing
	// to read or delete.
	switch r.cfg.Mix.Pick(w.rng) {
	case OpGet:
		// A key being read is never picked for deletion meanwhile: a GET
		// racing a DELETE of its key measures the race, not the store.
		if e, ok := r.pool.acquire(w.rng); ok {
			defer r.pool.release(e.key)
			return r.get(ctx, e), true
		}
	case OpDelete:
		if e, ok := r.pool.take(w.rng); ok {
			return r.delete(ctx, e), true
		}
	case OpList:
		return r.list(ctx, w), true
	}
	return r.put(ctx, w), true
}

func (r *runner) put(ctx context.Context, w *worker) outcome {
	n := r.nextN.Add(1) - 1
	size := r.cfg.Size.Pick(w.rng)
	key := ObjectKey(r.cfg.Prefix, n, size)
	obj := r.src.Object(key, size)
	o := outcome{op: OpPut, start: time.Now()}
	_, o.err = r.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(r.cfg.Bucket),
		Key:           aws.String(key),
		Body:          obj.Reader(),
		ContentLength: aws.Int64(size),
	})
	o.end = time.Now()
	if o.err == nil {
		o.bytes = size
		if r.cfg.Workload != WorkloadPut {
			r.pool.add(entry{key: key, size: size})
		}
	}
	return o
}

func (r *runner) get(ctx context.Context, e entry) outcome {
	o := outcome{op: OpGet, start: time.Now()}
	out, err := r.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.cfg.Bucket), Key: aws.String(e.key)})
	if err != nil {
		o.end, o.err = time.Now(), err
		return o
	}
	n, err := r.src.Object(e.key, e.size).Verify(out.Body)
	out.Body.Close()
	o.end = time.Now()
	switch {
	case errors.Is(err, ErrMismatch):
		o.err, o.corrupt = err, true
	case err != nil:
		o.err = err
	default:
		o.bytes = n
	}
	return o
}

func (r *runner) delete(ctx context.Context, e entry) outcome {
	o := outcome{op: OpDelete, start: time.Now()}
	_, o.err = r.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(r.cfg.Bucket), Key: aws.String(e.key)})
	o.end = time.Now()
	return o
}

// list requests the next page of the prefix; each worker walks the listing
// from the start again when it reaches the end.
func (r *runner) list(ctx context.Context, w *worker) outcome {
	o := outcome{op: OpList, start: time.Now()}
	out, err := r.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket:            aws.String(r.cfg.Bucket),
		Prefix:            aws.String(r.cfg.Prefix),
		MaxKeys:           aws.Int32(int32(min(r.cfg.PageSize, 1<<31-1))),
		ContinuationToken: w.token,
	})
	o.end = time.Now()
	if err != nil {
		o.err = err
		w.token = nil
		return o
	}
	o.keys = int64(len(out.Contents))
	w.token = nil
	if aws.ToBool(out.IsTruncated) {
		w.token = out.NextContinuationToken
	}
	return o
}

// entry is an object known to exist.
type entry struct {
	key  string
	size int64
}

// objectPool is the set of objects a run reads and deletes.
type objectPool struct {
	mu     sync.Mutex
	list   []entry
	index  map[string]int // key -> position in list
	busy   map[string]int // key -> GETs in flight (mixed workload)
	cursor int
}

func newObjectPool() *objectPool {
	return &objectPool{index: make(map[string]int), busy: make(map[string]int)}
}

func (p *objectPool) add(e entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.index[e.key]; ok {
		return
	}
	p.index[e.key] = len(p.list)
	p.list = append(p.list, e)
}

func (p *objectPool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.list)
}

// acquire returns a random object and marks it busy until release, so
// that take passes it over.
func (p *objectPool) acquire(rng *rand.Rand) (entry, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.list) == 0 {
		return entry{}, false
	}
	e := p.list[rng.IntN(len(p.list))]
	p.busy[e.key]++
	return e, true
}

func (p *objectPool) release(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy[key]--; p.busy[key] <= 0 {
		delete(p.busy, key)
	}
}

// sizes returns the range of the sizes of the objects in the pool.
func (p *objectPool) sizes() SizeDist {
	p.mu.Lock()
	defer p.mu.Unlock()
	var d SizeDist
	for i, e := range p.list {
		if i == 0 || e.size < d.Min {
			d.Min = e.size
		}
		d.Max = max(d.Max, e.size)
	}
	return d
}

// next returns the objects round robin, so that a get run reads all of
// them evenly and a small set stays hot in no particular cache.
func (p *objectPool) next() (entry, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.list) == 0 {
		return entry{}, false
	}
	p.cursor = (p.cursor + 1) % len(p.list)
	return p.list[p.cursor], true
}

// take removes and returns a random object that is not busy. It gives up
// after a few draws when most are, and reports false.
func (p *objectPool) take(rng *rand.Rand) (entry, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range 8 {
		if len(p.list) == 0 {
			return entry{}, false
		}
		i := rng.IntN(len(p.list))
		if p.busy[p.list[i].key] == 0 {
			return p.remove(i), true
		}
	}
	return entry{}, false
}

// takeLast removes and returns the newest object.
func (p *objectPool) takeLast() (entry, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.list) == 0 {
		return entry{}, false
	}
	return p.remove(len(p.list) - 1), true
}

// remove deletes list[i] by moving the last entry into its place.
// REQUIRES: p.mu held.
func (p *objectPool) remove(i int) entry {
	e := p.list[i]
	last := len(p.list) - 1
	p.list[i] = p.list[last]
	p.index[p.list[i].key] = i
	p.list = p.list[:last]
	delete(p.index, e.key)
	return e
}
