package objects

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/fanout"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/nodeaccess"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// The internal namespace. Client keys never contain control characters
// (the S3 layer refuses them, and PutObject refuses this prefix), so keys
// starting with NUL can never collide with a client's, and they sort
// before all of them.
//
//	\x00mpu/<upload id>                        record of an upload in progress
//	\x00mpu/<upload id>/<part, 5 digits>.<id>  one upload attempt of a part
const (
	internalPrefix = "\x00"
	internalEnd    = internalPrefix + afterPrefix
	uploadsPrefix  = internalPrefix + "mpu/"
)

func isInternal(key string) bool { return strings.HasPrefix(key, internalPrefix) }

func uploadKey(id string) string { return uploadsPrefix + id }

func partKey(id string, n int, attempt string) string {
	return fmt.Sprintf("%s%s/%05d.%s", uploadsPrefix, id, n, attempt)
}

// parseUploadKey splits an internal upload key into the upload id and, for
// a part, its number (0 for the upload record itself).
func parseUploadKey(key string) (id string, part int, ok bool) {
	rest, ok := strings.CutPrefix(key, uploadsPrefix)
	if !ok {
		return "", 0, false
	}
	id, rest, isPart := strings.Cut(rest, "/")
	if client.CheckVersion(id) != nil {
		return "", 0, false
	}
	if !isPart {
		return id, 0, true
	}
	num, attempt, _ := strings.Cut(rest, ".")
	n, err := strconv.Atoi(num)
	if err != nil || len(num) != 5 || n < 1 || n > MaxPartNum || client.CheckVersion(attempt) != nil {
		return "", 0, false
	}
	return id, n, true
}

// DefaultUploadExpiry is how long an upload may stay in progress before
// SweepUploads aborts it.
const DefaultUploadExpiry = 7 * 24 * time.Hour

// partGrace protects young parts from SweepUploads: a part found without
// its upload record is only freed once it is this old, so that no listing
// hiccup can cost an upload in progress its data.
const partGrace = time.Hour

// SweepOptions tune SweepUploads. A nil *SweepOptions means defaults.
type SweepOptions struct {
	Expiry time.Duration // uploads older than this are aborted; 0 means DefaultUploadExpiry
	// LifecycleDay is the day of the buckets' AbortIncompleteMultipartUpload
	// rules, which abort uploads sooner; 0 means 24h.
	LifecycleDay time.Duration
}

// SweepReport counts what SweepUploads did.
type SweepReport struct {
	Buckets int // buckets swept
	Expired int // stale uploads aborted
	Freed   int // part objects deleted that no object refers to
	Errors  int // uploads or parts skipped after a failure; the next sweep retries them
}

// SweepUploads walks the multipart state of every bucket: it aborts
// uploads older than the expiry and deletes part objects that neither an
// upload in progress nor the live version of their key refers to (parts of
// a multipart object that was overwritten, or whose delete could not free
// them at once). It is idempotent and safe to run from several gateways at
// once, and it never frees a part the live version of its key names.
//
// It returns an error only if the buckets cannot be listed; failures on
// single uploads are counted in the report and logged.
func (s *Store) SweepUploads(ctx context.Context, opts *SweepOptions) (SweepReport, error) {
	const op = "objects.SweepUploads"
	ctx, done := s.fence(ctx)
	defer done()
	expiry := DefaultUploadExpiry
	if opts != nil && opts.Expiry > 0 {
		expiry = opts.Expiry
	}
	day := 24 * time.Hour
	if opts != nil && opts.LifecycleDay > 0 {
		day = opts.LifecycleDay
	}
	buckets, err := s.ListBuckets(ctx)
	if err != nil {
		return SweepReport{}, kerr.E(op, err)
	}
	var rep SweepReport
	for _, b := range buckets {
		if err := s.sweepBucket(ctx, b.Name, expiry, s.uploadRules(ctx, b.Name, day), &rep); err != nil {
			if ctx.Err() != nil {
				return rep, kerr.E(op, kerr.Transient, ctx.Err())
			}
			s.log.Warn("objects: upload sweep of a bucket failed", "bucket", b.Name, "err", err)
			rep.Errors++
			continue
		}
		rep.Buckets++
	}
	return rep, nil
}

// uploadGroup is what a walk found of one upload: its record, if live,
// and its part attempts.
type uploadGroup struct {
	id       string
	record   *client.Record
	attempts []client.Record
}

func (s *Store) sweepBucket(ctx context.Context, bucket string, expiry time.Duration, due uploadDue, rep *SweepReport) error {
	now := s.now()
	var g *uploadGroup
	flush := func() {
		if g != nil {
			s.sweepUpload(ctx, bucket, g, now, expiry, due, rep)
		}
	}
	err := s.walk(ctx, bucket, uploadsPrefix, "", func(rec *client.Record) (string, error) {
		id, n, ok := parseUploadKey(rec.Key)
		if !ok {
			return "", nil
		}
		if g == nil || g.id != id {
			flush()
			g = &uploadGroup{id: id}
		}
		if n == 0 {
			r := *rec
			g.record = &r
		} else {
			g.attempts = append(g.attempts, *rec)
		}
		return "", nil
	})
	if err != nil {
		return err
	}
	flush()
	return nil
}

// sweepUpload applies the sweep's rules to one upload.
func (s *Store) sweepUpload(ctx context.Context, bucket string, g *uploadGroup, now time.Time, expiry time.Duration, due uploadDue, rep *SweepReport) {
	if g.record != nil {
		if now.Sub(g.record.Modified) < expiry && !due(g.record.Target, g.record.Modified, now) {
			return
		}
		if err := s.abortUpload(ctx, bucket, g.record.Target, g.id); err != nil {
			s.log.Warn("objects: could not abort a stale upload", "bucket", bucket, "upload", g.id, "err", err)
			rep.Errors++
			return
		}
		s.log.Info("objects: aborted stale upload", "bucket", bucket, "key", g.record.Target, "upload", g.id,
			"initiated", g.record.Modified)
		rep.Expired++
		return
	}
	// No record: the upload was completed or aborted. Parts the key's
	// live version names stay; the others are garbage.
	if len(g.attempts) == 0 {
		return
	}
	keep, err := s.referencedParts(ctx, bucket, g.attempts[0].Target, g.id)
	if err != nil {
		s.log.Debug("objects: cannot tell whether parts are in use", "bucket", bucket, "upload", g.id, "err", err)
		rep.Errors++
		return
	}
	var garbage []string
	for _, a := range g.attempts {
		if !keep[a.Key] && now.Sub(a.Modified) >= partGrace {
			garbage = append(garbage, a.Key)
		}
	}
	freed, failed := s.deleteKeys(ctx, bucket, garbage)
	rep.Freed += freed
	rep.Errors += failed
}

// abortUpload deletes upload id's record and every part attempt that the
// live version of key does not name (an upload completed whose record
// survived keeps its data).
func (s *Store) abortUpload(ctx context.Context, bucket, key, id string) error {
	const op = "objects.abortUpload"
	// A node of the key that does not answer may hold a manifest naming
	// the upload (a completion that failed below the quorum): the abort
	// still ends the upload, but its parts stay for the sweep, which frees
	// them once every node of the key answers.
	keep, uncertain := s.referencedParts(ctx, bucket, key, id)
	// The record goes first, so that new parts are refused at once; parts
	// that still land are found by the sweep.
	if _, err := s.deleteKey(ctx, bucket, uploadKey(id)); err != nil {
		return kerr.E(op, err)
	}
	if uncertain != nil {
		s.log.Info("objects: aborted an upload; its parts stay until the nodes of its key answer",
			"bucket", bucket, "key", key, "upload", id, "err", uncertain)
		return nil
	}
	_, all, err := s.uploadParts(ctx, bucket, id)
	if err != nil {
		return kerr.E(op, err)
	}
	var garbage []string
	for _, p := range all {
		if !keep[p.Key] {
			garbage = append(garbage, p.Key)
		}
	}
	if _, failed := s.deleteKeys(ctx, bucket, garbage); failed > 0 {
		return kerr.E(op, kerr.Unavailable, fmt.Errorf("%d of %d parts could not be deleted", failed, len(garbage)))
	}
	return nil
}

// abortAllUploads aborts every upload in progress in bucket, best effort.
func (s *Store) abortAllUploads(ctx context.Context, bucket string) {
	type up struct{ key, id string }
	var ups []up
	err := s.walkUploads(ctx, bucket, func(rec *client.Record) error {
		id, _, _ := parseUploadKey(rec.Key)
		ups = append(ups, up{rec.Target, id})
		return nil
	})
	if err != nil {
		s.log.Warn("objects: cannot list the uploads of a deleted bucket", "bucket", bucket, "err", err)
	}
	for _, u := range ups {
		if err := s.abortUpload(ctx, bucket, u.key, u.id); err != nil {
			s.log.Warn("objects: cannot abort an upload of a deleted bucket", "bucket", bucket, "upload", u.id, "err", err)
		}
	}
}

// referencedParts returns the part keys of upload id that a manifest of
// bucket/key could still name when read: parts must outlive every
// manifest that could be served. A manifest is served from any single
// node that holds it and rolled forward from there (by readers and the
// scrubber), even one whose completion failed below the write quorum, so
// what counts is the newest record of every node of the key's placement
// under the current and previous map, not only the version a read would
// serve now. A node that does not answer may hold such a manifest: then
// nothing of the upload may be freed, and the error (ErrQuorum) says so.
func (s *Store) referencedParts(ctx context.Context, bucket, key, id string) (map[string]bool, error) {
	const op = "objects.referencedParts"
	if key == "" {
		return nil, nil
	}
	maps := s.maps.Load()
	nodes := s.members(maps.Cur.PlaceKey(bucket, key))
	if maps.Prev != nil {
		nodes = s.members(maps.Cur.PlaceKey(bucket, key), maps.Prev.PlaceKey(bucket, key))
	}
	states := make([]client.KeyState, len(nodes))
	errs := make([]error, len(nodes))
	each(len(nodes), func(i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		states[i], errs[i] = nodes[i].Client.Stat(cctx, bucket, key)
	})
	keep := make(map[string]bool)
	for i, st := range states {
		if errs[i] != nil {
			return nil, kerr.E(op, kerr.Unavailable, quorumErr("node %s of %s/%s did not answer; it may hold a manifest naming upload %s: %v",
				nodes[i].Node.ID, bucket, key, id, errs[i]))
		}
		if st.Committed == nil {
			continue
		}
		for _, p := range st.Committed.Parts {
			if strings.HasPrefix(p.Key, uploadKey(id)+"/") {
				keep[p.Key] = true
			}
		}
	}
	if err := s.noncurrentParts(ctx, nodes, bucket, key, id, keep); err != nil {
		return nil, kerr.E(op, err)
	}
	return keep, nil
}

// freeParts deletes parts in the background, best effort: they belong to a
// version that was replaced or deleted, and the sweep catches what fails.
func (s *Store) freeParts(ctx context.Context, bucket string, parts []client.PartRef) {
	if len(parts) == 0 {
		return
	}
	keys := make([]string, len(parts))
	for i, p := range parts {
		keys[i] = p.Key
	}
	ctx = context.WithoutCancel(ctx)
	s.bg.Go(func() {
		if _, failed := s.deleteKeys(ctx, bucket, keys); failed > 0 {
			s.log.Debug("objects: some parts could not be freed", "bucket", bucket, "failed", failed, "of", len(keys))
		}
	})
}

// deleteKeys commits delete markers on internal keys, a few at a time,
// and counts the keys it deleted and those it failed on.
func (s *Store) deleteKeys(ctx context.Context, bucket string, keys []string) (deleted, failed int) {
	var mu sync.Mutex
	fanout.Each(len(keys), partConcurrency, func(i int) {
		_, err := s.deleteKey(ctx, bucket, keys[i])
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			s.log.Debug("objects: delete of an internal key failed", "bucket", bucket, "key", keys[i], "err", err)
			failed++
			return
		}
		deleted++
	})
	return deleted, failed
}

// walk calls fn with the newest record of every key of bucket that has
// prefix and sorts after after, in key order, merged from every node as
// ListObjects merges them; keys whose newest record is a delete marker are
// left out. fn may return a prefix to skip. It stops at fn's first error.
func (s *Store) walk(ctx context.Context, bucket, prefix, after string, fn func(rec *client.Record) (skip string, err error)) error {
	m := s.Map()
	ms := s.members(nodeaccess.LiveNodes(m))
	mg := &merger{
		s:      s,
		bucket: bucket,
		prefix: prefix,
		limit:  MaxListKeys,
		need:   max(len(ms)-m.ParityShards, 1),
	}
	for _, c := range ms {
		mg.cursors = append(mg.cursors, &cursor{member: c, after: after, more: true})
	}
	for {
		rec, ok, err := mg.next(ctx)
		if err != nil || !ok {
			return err
		}
		if rec.Deleted || !strings.HasPrefix(rec.Key, prefix) {
			continue
		}
		skip, err := fn(&rec)
		if err != nil {
			return err
		}
		if skip != "" {
			mg.skip(skip)
		}
	}
}

// walkUploads calls fn with the record of every upload in progress in
// bucket, in upload id order, without reading their parts.
func (s *Store) walkUploads(ctx context.Context, bucket string, fn func(rec *client.Record) error) error {
	return s.walk(ctx, bucket, uploadsPrefix, "", func(rec *client.Record) (string, error) {
		id, n, ok := parseUploadKey(rec.Key)
		if !ok || n != 0 {
			return "", nil
		}
		return uploadKey(id) + "/", fn(rec)
	})
}
