package objects

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/nodeaccess"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// bucketEntry is a cached positive answer about a bucket.
type bucketEntry struct {
	info    BucketInfo
	expires time.Time // by s.now, so that a test's clock drives the TTL
}

// CreateBucket creates a bucket on every node of the map. It fails with
// ErrBucketExists if the bucket is live and ErrQuorum without acks from a
// majority of the nodes.
func (s *Store) CreateBucket(ctx context.Context, name string) error {
	const op = "objects.CreateBucket"
	ctx, done := s.fence(ctx) // not run again: a half-made bucket would then exist
	defer done()
	if err := validName(op, name, "", false); err != nil {
		return err
	}
	rec, found, err := s.readBucket(ctx, name)
	if err != nil {
		return kerr.E(op, err)
	}
	if found && !rec.Deleted {
		return kerr.E(op, kerr.Exist, fmt.Errorf("%w: %s", ErrBucketExists, name))
	}
	rec = client.BucketRecord{Name: name, Version: s.newVersion(), Created: s.now().UTC()}
	if err := s.writeBucket(ctx, rec); err != nil {
		return kerr.E(op, err)
	}
	s.cacheBucket(bucketInfo(rec))
	return nil
}

// HeadBucket reports whether a bucket exists: ErrNoSuchBucket if not.
func (s *Store) HeadBucket(ctx context.Context, name string) (BucketInfo, error) {
	return fenced(ctx, s, func(ctx context.Context) (BucketInfo, error) { return s.headBucket(ctx, name) })
}

// headBucket is HeadBucket under one map.
func (s *Store) headBucket(ctx context.Context, name string) (BucketInfo, error) {
	const op = "objects.HeadBucket"
	if err := validName(op, name, "", false); err != nil {
		return BucketInfo{}, err
	}
	info, fresh, cached := s.cachedBucket(name)
	if fresh {
		return info, nil
	}
	lctx := ctx
	if cached {
		// A lookup that nodes cut off leave short of its majority asks
		// them again through their breakers and waits out their call
		// deadlines; with a record seen a moment ago the request waits
		// staleBucketWait at most, while the lookup goes on for the
		// next one. A chaos run's PUT, written again after nodes of a
		// gateway cut off from half of them failed its stage, spent
		// five seconds here and ran out of its client's time.
		var cancel context.CancelFunc
		lctx, cancel = context.WithTimeout(ctx, staleBucketWait)
		defer cancel()
	}
	rec, found, err := s.sharedReadBucket(lctx, name)
	if err != nil && cached && (kerr.Is(kerr.Unavailable, err) || kerr.Is(kerr.Transient, err)) {
		// Nodes too busy (or too few) to answer in time: a bucket seen
		// a moment ago is still there far more likely than not, and
		// failing every request to it would turn load into errors.
		s.log.Debug("objects: bucket lookup failed, using the cached record", "bucket", name, "err", err)
		return info, nil
	}
	if err != nil {
		return BucketInfo{}, kerr.E(op, err)
	}
	if !found || rec.Deleted {
		return BucketInfo{}, kerr.E(op, kerr.NotExist, fmt.Errorf("%w: %s", ErrNoSuchBucket, name))
	}
	info = bucketInfo(rec)
	s.cacheBucket(info)
	return info, nil
}

// DeleteBucket deletes an empty bucket by writing a tombstone newer than its
// record to every node. It fails with ErrNoSuchBucket, ErrBucketNotEmpty or
// ErrQuorum.
//
// A PUT racing with the delete may land in the bucket after the emptiness
// check; its object stays invisible until the bucket is created again.
func (s *Store) DeleteBucket(ctx context.Context, name string) error {
	const op = "objects.DeleteBucket"
	ctx, done := s.fence(ctx)
	defer done()
	if err := validName(op, name, "", false); err != nil {
		return err
	}
	s.uncacheBucket(name)
	rec, found, err := s.readBucket(ctx, name)
	if err != nil {
		return kerr.E(op, err)
	}
	if !found || rec.Deleted {
		return kerr.E(op, kerr.NotExist, fmt.Errorf("%w: %s", ErrNoSuchBucket, name))
	}
	page, err := s.ListObjects(ctx, name, ListOptions{MaxKeys: 1})
	if err != nil {
		return kerr.E(op, err)
	}
	if len(page.Objects) > 0 || len(page.CommonPrefixes) > 0 {
		return kerr.E(op, kerr.NotEmpty, fmt.Errorf("%w: %s", ErrBucketNotEmpty, name))
	}
	if err := s.checkNoVersions(ctx, name); err != nil {
		return kerr.E(op, err)
	}
	// Uploads in progress do not keep a bucket alive, as in S3; their
	// parts would otherwise outlive it.
	s.abortAllUploads(ctx, name)
	tomb := client.BucketRecord{Name: name, Version: s.newVersion(), Created: rec.Created, Deleted: true}
	// The listing above cached the bucket again.
	s.uncacheBucket(name)
	if err := s.writeBucket(ctx, tomb); err != nil {
		return kerr.E(op, err)
	}
	return nil
}

// ListBuckets returns the live buckets in name order, merged from a
// majority of the nodes.
func (s *Store) ListBuckets(ctx context.Context) ([]BucketInfo, error) {
	return fenced(ctx, s, s.listBuckets)
}

// listBuckets is ListBuckets under one map.
func (s *Store) listBuckets(ctx context.Context) ([]BucketInfo, error) {
	const op = "objects.ListBuckets"
	ms := s.members(nodeaccess.LiveNodes(s.Map()))
	pages := make([][]client.BucketRecord, len(ms))
	errs := make([]error, len(ms))
	s.gather(ctx, ms, func(ctx context.Context, i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		pages[i], errs[i] = ms[i].Client.ListBuckets(cctx)
	}, answeredBy(majority, errs, nil))
	if err := ctx.Err(); err != nil {
		return nil, kerr.E(op, kerr.Transient, err)
	}
	newest := make(map[string]client.BucketRecord)
	answered := 0
	for i, page := range pages {
		if errs[i] != nil {
			s.log.Debug("objects: list buckets failed", "node", ms[i].Node.ID, "err", errs[i])
			continue
		}
		answered++
		for _, r := range page {
			if old, ok := newest[r.Name]; !ok || r.Version > old.Version {
				newest[r.Name] = r
			}
		}
	}
	if need := majority(len(ms)); answered < need {
		return nil, kerr.E(op, kerr.Unavailable, quorumErr("%d of %d nodes answered, need %d", answered, len(ms), need))
	}
	var out []BucketInfo
	for _, r := range newest {
		if !r.Deleted {
			out = append(out, bucketInfo(r))
		}
	}
	slices.SortFunc(out, func(a, b BucketInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// checkBucket returns ErrNoSuchBucket (wrapped) unless bucket exists.
func (s *Store) checkBucket(ctx context.Context, bucket string) error {
	_, err := s.HeadBucket(ctx, bucket)
	return err
}

// sharedReadBucket is readBucket shared with the concurrent callers that
// ask about the same bucket. The lookup runs without the first caller's
// cancellation, so that one client hanging up does not fail the others
// (its node calls have their own deadlines); each caller still stops
// waiting when its own ctx is done.
func (s *Store) sharedReadBucket(ctx context.Context, name string) (client.BucketRecord, bool, error) {
	type answer struct {
		rec   client.BucketRecord
		found bool
	}
	ch := s.bucketLookups.DoChan(name, func() (any, error) {
		rec, found, err := s.readBucket(context.WithoutCancel(ctx), name)
		return answer{rec, found}, err
	})
	select {
	case <-ctx.Done():
		return client.BucketRecord{}, false, kerr.E("objects.readBucket", kerr.Transient, ctx.Err())
	case r := <-ch:
		a, _ := r.Val.(answer)
		return a.rec, a.found, r.Err
	}
}

// readBucket asks every node for the bucket's record and returns the newest
// one among a majority of answers; found is false if no node has seen it.
// Like resolve, it asks once more through the open breakers that refused
// a call before giving up, and not the nodes whose calls failed.
func (s *Store) readBucket(ctx context.Context, name string) (rec client.BucketRecord, found bool, err error) {
	rec, found, _, err = s.readBucketBy(ctx, name, majority)
	return rec, found, err
}

// readBucketBy is readBucket needing quorum(n) of the n nodes to answer;
// it also returns how many did.
func (s *Store) readBucketBy(ctx context.Context, name string, quorum func(n int) int) (rec client.BucketRecord, found bool, answered int, err error) {
	actx, first := nodeaccess.WithAttempt(ctx)
	rec, found, answered, err = s.readBucketOnce(actx, name, quorum)
	if err != nil && kerr.Is(kerr.Unavailable, err) && first.Refused() {
		rec, found, answered, err = s.readBucketOnce(first.Again(ctx), name, quorum)
	}
	return rec, found, answered, err
}

func (s *Store) readBucketOnce(ctx context.Context, name string, quorum func(n int) int) (rec client.BucketRecord, found bool, answered int, err error) {
	ms := s.members(nodeaccess.LiveNodes(s.Map()))
	recs := make([]client.BucketRecord, len(ms))
	errs := make([]error, len(ms))
	s.gather(ctx, ms, func(ctx context.Context, i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		recs[i], errs[i] = ms[i].Client.GetBucket(cctx, name)
	}, answeredBy(quorum, errs, func(err error) bool { return kerr.Is(kerr.NotExist, err) }))
	if err := ctx.Err(); err != nil {
		return rec, false, 0, kerr.E("objects.readBucket", kerr.Transient, err)
	}
	for i, r := range recs {
		switch {
		case errs[i] == nil:
			answered++
			// A bucket write after this read is named above it.
			s.clock.observe(r.Version)
			if !found || r.Version > rec.Version {
				rec, found = r, true
			}
		case kerr.Is(kerr.NotExist, errs[i]):
			answered++
		default:
			s.log.Debug("objects: get bucket failed", "node", ms[i].Node.ID, "err", errs[i])
		}
	}
	if need := quorum(len(ms)); answered < need {
		return rec, false, answered, kerr.E("objects.readBucket", kerr.Unavailable,
			quorumErr("%d of %d nodes answered for bucket %s, need %d", answered, len(ms), name, need))
	}
	return rec, found, answered, nil
}

// writeBucket writes rec to every node and needs a majority of acks. A
// node holding a newer record refuses and does not count; if that costs
// the majority and no node may hold rec, the record is written once more
// under a version above the refusals, as object commits are
// (commitWrite). One that a node may hold is not: a reader can serve it
// from there, and a version above a record acknowledged since would
// bring it back (docs/ordering.md, "Running a write again").
func (s *Store) writeBucket(ctx context.Context, rec client.BucketRecord) error {
	ms := s.members(nodeaccess.LiveNodes(s.Map()))
	put := s.putBucketAll(ctx, ms, rec)
	if need := majority(len(ms)); put.acks < need && put.refused && !put.mayApply() {
		rec.Version = s.newVersion()
		put = s.putBucketAll(ctx, ms, rec)
	}
	acks := put.acks
	if need := majority(len(ms)); acks < need {
		return kerr.E("objects.writeBucket", kerr.Unavailable,
			quorumErr("%d of %d nodes stored bucket %s, need %d", acks, len(ms), rec.Name, need))
	}
	return nil
}

// bucketPut is what writing a bucket record to the nodes did.
type bucketPut struct {
	acks    int  // nodes that stored it
	refused bool // a node refused it for a newer record (fed to the clock)
	unsure  bool // a node's call failed without a clear answer
}

// mayApply says whether a node may hold the record.
func (p bucketPut) mayApply() bool { return p.acks > 0 || p.unsure }

// putBucketAll writes rec to every member.
func (s *Store) putBucketAll(ctx context.Context, ms []member, rec client.BucketRecord) bucketPut {
	errs := make([]error, len(ms))
	s.gather(ctx, ms, func(ctx context.Context, i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		errs[i] = ms[i].Client.PutBucket(cctx, rec)
	}, answeredBy(majority, errs, nil))
	var out bucketPut
	for i, err := range errs {
		switch v := client.Newer(err); {
		case err == nil:
			out.acks++
			continue
		case v != "":
			s.clock.observe(v)
			out.refused = true
		case !errors.Is(err, health.ErrOpen) && !errors.Is(err, client.ErrStaleMap):
			out.unsure = true
		}
		s.log.Debug("objects: put bucket failed", "node", ms[i].Node.ID, "err", err)
	}
	return out
}

func majority(n int) int { return n/2 + 1 }

// answeredBy is a gather condition: quorum(n) of the n calls returned
// without error, or with one that answer accepts as an answer. Bucket
// records go to every node, so once enough have answered, a straggler
// is not worth waiting for beyond its grace.
func answeredBy(quorum func(n int) int, errs []error, answer func(error) bool) func(done []bool) bool {
	return func(done []bool) bool {
		n := 0
		for i, d := range done {
			if d && (errs[i] == nil || answer != nil && answer(errs[i])) {
				n++
			}
		}
		return n >= quorum(len(done))
	}
}

// cachedBucket returns the cached record of bucket name: fresh while its
// TTL runs, still cached (stale) for bucketStaleFor after.
func (s *Store) cachedBucket(name string) (info BucketInfo, fresh, cached bool) {
	s.bucketMu.Lock()
	defer s.bucketMu.Unlock()
	e, ok := s.buckets[name]
	now := s.now()
	switch {
	case !ok:
		return BucketInfo{}, false, false
	case now.After(e.expires.Add(bucketStaleFor)):
		delete(s.buckets, name)
		return BucketInfo{}, false, false
	}
	return e.info, !now.After(e.expires), true
}

func (s *Store) cacheBucket(info BucketInfo) {
	if s.bucketTTL < 0 {
		return
	}
	s.bucketMu.Lock()
	defer s.bucketMu.Unlock()
	s.buckets[info.Name] = bucketEntry{info: info, expires: s.now().Add(s.bucketTTL)}
}

func (s *Store) uncacheBucket(name string) {
	s.bucketMu.Lock()
	defer s.bucketMu.Unlock()
	delete(s.buckets, name)
}
