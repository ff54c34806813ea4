package objects

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/nodeaccess"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Versioning. The nodes keep the versions an overwrite or delete
// supersedes when the bucket is versioned; see docs/versioning.md for where
// the bucket's state is decided and why a write acknowledged after
// PutBucketVersioning(Enabled) never discards the version it supersedes.

// Errors of versioned operations.
var (
	ErrNoSuchVersion = errors.New("no such version")
	// ErrDeleteMarker is the answer to a read of a delete marker by its
	// version id (S3: 405 MethodNotAllowed, x-amz-delete-marker: true).
	ErrDeleteMarker = errors.New("the version is a delete marker")
)

// CurrentMarkerError is the error of a read of a key whose current version
// is a delete marker of a versioned bucket: ErrNoSuchKey, naming the
// marker, which S3 names in its answer (x-amz-delete-marker,
// x-amz-version-id).
type CurrentMarkerError struct {
	Marker ObjectInfo
}

func (e *CurrentMarkerError) Error() string {
	return fmt.Sprintf("%v: the current version of %s/%s is delete marker %s", ErrNoSuchKey, e.Marker.Bucket, e.Marker.Key, e.Marker.VersionID)
}

func (e *CurrentMarkerError) Unwrap() error { return ErrNoSuchKey }

// noSuchKey is the error of a read that found no version to serve; marker,
// if not nil, is the key's current delete marker.
func noSuchKey(op, bucket, key string, marker *client.ObjectMeta) error {
	if marker != nil && marker.Deleted && marker.Versioning != "" {
		return kerr.E(op, kerr.NotExist, &CurrentMarkerError{Marker: infoOf(*marker)})
	}
	return kerr.E(op, kerr.NotExist, fmt.Errorf("%w: %s/%s", ErrNoSuchKey, bucket, key))
}

// versionID is the id S3 clients see for m.
func versionID(m client.ObjectMeta) string {
	if m.Versioned {
		return m.Version
	}
	return client.NullVersion
}

// setVersioning marks m as written under state.
func setVersioning(m *client.ObjectMeta, state client.BucketState) {
	m.Versioning, m.VersioningAt = state.Versioning, state.Version
	m.Versioned = state.Versioning == client.VersioningEnabled
}

// newerState returns the newer of a bucket's cached state and one from
// stage answers.
func newerState(info BucketInfo, staged client.BucketState) client.BucketState {
	if staged.Newer(info.VersioningAt) {
		return staged
	}
	return client.BucketState{Versioning: info.Versioning, Version: info.VersioningAt}
}

// freshState reads the bucket's versioning state from the nodes,
// bypassing the cache: every state acknowledged before is among the
// answers. A state is acknowledged once bucketQuorum of the n nodes
// stored it, so stateQuorum answers are enough, fewer than a majority
// when bucketQuorum is more than one: a gateway cut off from half of
// eight nodes still learns the state (a chaos run's DELETE was refused
// with four of eight answering). Those few can tell a state, not that
// the bucket is gone: a bucket no answer holds, or holds deleted, is
// ErrNoSuchBucket only if a majority answered, as a bucket is created
// and deleted on a majority; otherwise the read fails with ErrQuorum.
func (s *Store) freshState(ctx context.Context, bucket string) (client.BucketState, error) {
	const op = "objects.bucketState"
	rec, found, answered, err := s.readBucketBy(ctx, bucket, s.stateQuorum)
	switch {
	case err != nil:
		return client.BucketState{}, err
	case (!found || rec.Deleted) && answered < majority(len(nodeaccess.LiveNodes(s.Map()))):
		return client.BucketState{}, kerr.E(op, kerr.Unavailable,
			quorumErr("bucket %s: %d nodes answered, none with the bucket, too few to tell it is gone", bucket, answered))
	case !found || rec.Deleted:
		return client.BucketState{}, kerr.E(op, kerr.NotExist, fmt.Errorf("%w: %s", ErrNoSuchBucket, bucket))
	}
	s.cacheBucket(bucketInfo(rec))
	return client.BucketState{Versioning: rec.Versioning, Version: rec.Version}, nil
}

// PutBucketVersioning sets the bucket's versioning state: "Enabled" or
// "Suspended" (a bucket once versioned never returns to unversioned, as in
// S3). It returns once enough nodes stored the state that every write's
// stage quorum reaches one of them (see bucketQuorum). Errors:
// ErrNoSuchBucket, ErrInvalidArgument, ErrQuorum.
func (s *Store) PutBucketVersioning(ctx context.Context, bucket, state string) error {
	const op = "objects.PutBucketVersioning"
	if state != client.VersioningEnabled && state != client.VersioningSuspended {
		return kerr.E(op, kerr.Invalid, fmt.Errorf("%w: versioning state %q", ErrInvalidArgument, state))
	}
	return s.updateBucket(ctx, op, bucket, func(rec *client.BucketRecord) { rec.Versioning = state })
}

// GetBucketVersioning returns the bucket's versioning state, as read from
// a majority of the nodes ("" if it was never versioned).
func (s *Store) GetBucketVersioning(ctx context.Context, bucket string) (string, error) {
	return fenced(ctx, s, func(ctx context.Context) (string, error) {
		if err := validName("objects.GetBucketVersioning", bucket, "", false); err != nil {
			return "", err
		}
		st, err := s.freshState(ctx, bucket)
		return st.Versioning, err
	})
}

// updateBucket writes a newer record of bucket, edited by edit, and needs
// bucketQuorum acks.
func (s *Store) updateBucket(ctx context.Context, op, bucket string, edit func(*client.BucketRecord)) error {
	ctx, done := s.fence(ctx)
	defer done()
	if err := validName(op, bucket, "", false); err != nil {
		return err
	}
	s.uncacheBucket(bucket)
	rec, found, err := s.readBucket(ctx, bucket)
	if err != nil {
		return kerr.E(op, err)
	}
	if !found || rec.Deleted {
		return kerr.E(op, kerr.NotExist, fmt.Errorf("%w: %s", ErrNoSuchBucket, bucket))
	}
	edit(&rec)
	rec.Version = s.newVersion()
	ms := s.members(nodeaccess.LiveNodes(s.Map()))
	need := s.bucketQuorum(len(ms))
	// Written again above the refusals only if no node may hold it
	// (see writeBucket).
	put := s.putBucketAll(ctx, ms, rec)
	if put.acks < len(ms) && put.refused && !put.mayApply() {
		rec.Version = s.newVersion()
		put = s.putBucketAll(ctx, ms, rec)
	}
	if acks := put.acks; acks < need {
		return kerr.E(op, kerr.Unavailable, quorumErr("%d of %d nodes stored bucket %s, need %d", acks, len(ms), bucket, need))
	}
	s.uncacheBucket(bucket)
	return nil
}

// bucketQuorum is how many of n nodes must store a bucket state before it
// is acknowledged: a majority, so that fresh reads (a majority) see it,
// and more than n - q, q the smallest write quorum (that of a write with
// raised parity, placement.Map.MinWriteQuorum), so that the stage answers
// every write needs include at least one node holding it.
func (s *Store) bucketQuorum(n int) int {
	return max(majority(n), n-s.Map().MinWriteQuorum()+1)
}

// stateQuorum is how many of n nodes a read of a bucket's state needs to
// meet every set of bucketQuorum(n) of them.
func (s *Store) stateQuorum(n int) int { return n - s.bucketQuorum(n) + 1 }

// keyVersions asks the key's nodes (both maps while one changes) for
// every version they hold.
func (s *Store) keyVersions(ctx context.Context, bucket, key string) ([]nodeVersions, error) {
	maps := s.maps.Load()
	nodes := s.members(maps.Cur.PlaceKey(bucket, key))
	if maps.Prev != nil {
		nodes = s.members(maps.Cur.PlaceKey(bucket, key), maps.Prev.PlaceKey(bucket, key))
	}
	out := make([]nodeVersions, len(nodes))
	each(len(nodes), func(i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		kv, err := versionsOf(nodes[i]).KeyVersions(cctx, bucket, key)
		if kerr.Is(kerr.NotExist, err) {
			kv, err = client.KeyVersions{}, nil
		}
		out[i] = nodeVersions{member: nodes[i], kv: kv, err: err}
	})
	if err := ctx.Err(); err != nil {
		return nil, kerr.E("objects.keyVersions", kerr.Transient, err)
	}
	return out, nil
}

type nodeVersions struct {
	member
	kv  client.KeyVersions
	err error
}

// findVersion picks the version id names among the nodes' answers: a
// Kintsugi version name, or "null" for the key's null version (the
// newest one not Versioned). It returns the version's metadata and, by
// shard index, the nodes holding it. A version any node deleted by
// version is gone.
func findVersion(nvs []nodeVersions, id string) (client.ObjectMeta, []member, bool) {
	purged := map[string]bool{}
	for _, nv := range nvs {
		for _, v := range nv.kv.Purged {
			purged[v] = true
		}
	}
	want := id
	if id == client.NullVersion {
		want = ""
		for _, nv := range nvs {
			for _, r := range nv.kv.Versions {
				if !r.Versioned && !purged[r.Version] && r.Version > want {
					want = r.Version
				}
			}
		}
	}
	if want == "" || purged[want] {
		return client.ObjectMeta{}, nil, false
	}
	var meta client.ObjectMeta
	var holders []member
	found := false
	for _, nv := range nvs {
		for _, r := range nv.kv.Versions {
			if r.Version != want {
				continue
			}
			if !found {
				meta, found = r.ObjectMeta, true
				holders = make([]member, meta.Data+meta.Parity)
			}
			if r.TagsAt > meta.TagsAt {
				// A tag update reaches a write quorum, not every node.
				meta.Tagging, meta.TagsAt = r.Tagging, r.TagsAt
			}
			if r.Shard >= 0 && r.Shard < len(holders) {
				holders[r.Shard] = nv.member
			}
		}
	}
	return meta, holders, found
}

// openVersion resolves version id of bucket/key ready to read.
func (s *Store) openVersion(ctx context.Context, op, bucket, key, id string) (*object, error) {
	if err := validName(op, bucket, key, true); err != nil {
		return nil, err
	}
	if id != client.NullVersion && client.CheckVersion(id) != nil {
		return nil, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: version id %q", ErrInvalidArgument, id))
	}
	if err := s.checkBucket(ctx, bucket); err != nil {
		return nil, kerr.E(op, err)
	}
	nvs, err := s.keyVersions(ctx, bucket, key)
	if err != nil {
		return nil, kerr.E(op, err)
	}
	if answeredVersions(nvs) < len(nvs) && s.anyOpen() {
		if again, err := s.keyVersions(nodeaccess.WithBypass(ctx), bucket, key); err == nil && answeredVersions(again) > answeredVersions(nvs) {
			nvs = again
		}
	}
	meta, holders, ok := findVersion(nvs, id)
	if !ok {
		failed := 0
		for _, nv := range nvs {
			if nv.err != nil {
				failed++
			}
		}
		// Nodes that did not answer may hold it: too many, and the
		// answer cannot be "no such version".
		if wq := s.Map().WriteQuorum; len(nvs)-failed < wq {
			return nil, kerr.E(op, kerr.Unavailable, quorumErr("%d of %d nodes answered for %s/%s, need %d", len(nvs)-failed, len(nvs), bucket, key, wq))
		}
		return nil, kerr.E(op, kerr.NotExist, fmt.Errorf("%w: %s/%s version %s", ErrNoSuchVersion, bucket, key, id))
	}
	if meta.Deleted {
		return &object{s: s, meta: meta}, kerr.E(op, kerr.NotExist, fmt.Errorf("%w: %s/%s version %s", ErrDeleteMarker, bucket, key, id))
	}
	if len(meta.Parts) == 0 {
		held := 0
		for _, h := range holders {
			if h.Client != nil {
				held++
			}
		}
		if held < meta.Data {
			return nil, kerr.E(op, kerr.Unavailable, quorumErr("%s/%s version %s: %d shards found, need %d", bucket, key, id, held, meta.Data))
		}
	}
	return &object{s: s, meta: meta, holders: bypassing(holders)}, nil
}

// OpenObjectVersion is OpenObject of one version, by the id S3 clients see
// (ObjectInfo.VersionID). Errors: ErrNoSuchBucket, ErrNoSuchVersion,
// ErrDeleteMarker (with the marker's Info), ErrQuorum.
func (s *Store) OpenObjectVersion(ctx context.Context, bucket, key, id string) (Object, error) {
	return fenced(ctx, s, func(ctx context.Context) (Object, error) {
		o, err := s.openVersion(ctx, "objects.OpenObjectVersion", bucket, key, id)
		if o == nil {
			return nil, err
		}
		return o, err
	})
}

// StatObjectVersion is StatObject of one version; see OpenObjectVersion.
func (s *Store) StatObjectVersion(ctx context.Context, bucket, key, id string) (ObjectInfo, error) {
	return fenced(ctx, s, func(ctx context.Context) (ObjectInfo, error) {
		o, err := s.openVersion(ctx, "objects.StatObjectVersion", bucket, key, id)
		if o == nil {
			return ObjectInfo{}, err
		}
		return infoOf(o.meta), err
	})
}

// DeleteResult is what a delete did.
type DeleteResult struct {
	VersionID    string // the marker written, or the version deleted; "" if none
	DeleteMarker bool   // a marker was written, or the version deleted was one
}

// DeleteObjectMarked is DeleteObject answering the delete marker it wrote
// in a versioned bucket.
func (s *Store) DeleteObjectMarked(ctx context.Context, bucket, key string) (DeleteResult, error) {
	return fenced(ctx, s, func(ctx context.Context) (DeleteResult, error) {
		const op = "objects.DeleteObject"
		if err := validName(op, bucket, key, true); err != nil {
			return DeleteResult{}, err
		}
		if isInternal(key) {
			return DeleteResult{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: key %q is in the internal namespace", ErrInvalidArgument, key))
		}
		marker, err := s.deleteCurrent(ctx, bucket, key)
		if err != nil || marker == nil || marker.Versioning == "" {
			return DeleteResult{}, err
		}
		return DeleteResult{VersionID: versionID(*marker), DeleteMarker: true}, nil
	})
}

// DeleteObjectVersion deletes one version for good, by the id S3 clients
// see: an explicit request, the only way an older version becomes current
// again (when the newest is deleted). It needs WriteQuorum of the key's
// nodes to record the deletion; the nodes then refuse that version for
// ever, so no late commit or rebuild brings it back. Deleting a version
// that does not exist succeeds, as in S3. Errors: ErrNoSuchBucket,
// ErrInvalidArgument, ErrQuorum.
func (s *Store) DeleteObjectVersion(ctx context.Context, bucket, key, id string) (DeleteResult, error) {
	return fenced(ctx, s, func(ctx context.Context) (DeleteResult, error) { return s.deleteObjectVersion(ctx, bucket, key, id) })
}

func (s *Store) deleteObjectVersion(ctx context.Context, bucket, key, id string) (DeleteResult, error) {
	const op = "objects.DeleteObjectVersion"
	if err := validName(op, bucket, key, true); err != nil {
		return DeleteResult{}, err
	}
	if isInternal(key) {
		return DeleteResult{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: key %q is in the internal namespace", ErrInvalidArgument, key))
	}
	if id != client.NullVersion && client.CheckVersion(id) != nil {
		return DeleteResult{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: version id %q", ErrInvalidArgument, id))
	}
	if err := s.checkBucket(ctx, bucket); err != nil {
		return DeleteResult{}, kerr.E(op, err)
	}
	nvs, err := s.keyVersions(ctx, bucket, key)
	if err != nil {
		return DeleteResult{}, kerr.E(op, err)
	}
	meta, _, ok := findVersion(nvs, id)
	version := meta.Version
	if !ok {
		if id == client.NullVersion {
			return DeleteResult{VersionID: id}, nil // no null version: nothing to do
		}
		version = id // record the deletion all the same
	}
	if mayApply, err := s.purgeVersion(ctx, bucket, key, version); err != nil {
		if mayApply && id == client.NullVersion {
			// Run again under a new map, "null" could name a version
			// written after a reader saw this one gone, and delete it
			// too (see mayApplyErr). A version named by its id is the
			// same one each time: deleting it again is harmless.
			err = mayApplyErr{err}
		}
		return DeleteResult{}, kerr.E(op, err)
	}
	if ok && len(meta.Parts) > 0 {
		s.freeParts(ctx, bucket, meta.Parts)
	}
	return DeleteResult{VersionID: id, DeleteMarker: ok && meta.Deleted}, nil
}

// purgeVersion deletes version on the key's nodes and needs WriteQuorum
// of them. Nodes that missed it learn it from the scrubber, and readers
// skip the version as soon as any node they ask reports it deleted. On
// failure, mayApply says that a node may hold the deletion (one took it,
// or one's call failed without a clear answer), so that a reader may
// already skip the version; the error wraps ErrMapChanged when the nodes
// refusing it for a newer map would have made the quorum.
func (s *Store) purgeVersion(ctx context.Context, bucket, key, version string) (mayApply bool, err error) {
	mayApply, err = s.purgeVersionOnce(ctx, bucket, key, version)
	if err != nil && kerr.Is(kerr.Unavailable, err) && s.anyOpen() {
		// As for reads: nodes just back are worth one try through
		// breakers that have not caught up. The same version again:
		// harmless whatever the first try did.
		var again bool
		again, err = s.purgeVersionOnce(nodeaccess.WithBypass(ctx), bucket, key, version)
		mayApply = mayApply || again
	}
	return mayApply, err
}

func (s *Store) purgeVersionOnce(ctx context.Context, bucket, key, version string) (mayApply bool, err error) {
	m := s.Map()
	placed := s.placed(m.PlaceKey(bucket, key))
	errs := make([]error, len(placed))
	each(len(placed), func(i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		_, errs[i] = versionsOf(placed[i]).DeleteVersion(cctx, bucket, key, version)
	})
	acks, staleMap := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			acks++
			mayApply = true
			continue
		case errors.Is(err, client.ErrStaleMap):
			staleMap++
		case !errors.Is(err, health.ErrOpen):
			mayApply = true
		}
		s.log.Debug("objects: delete version failed", "node", placed[i].Node.ID, "bucket", bucket, "key", key, "version", version, "err", err)
	}
	if acks < m.WriteQuorum {
		return mayApply, kerr.E("objects.purgeVersion", kerr.Unavailable, shortfall(acks, refusals{staleMap: staleMap}, m.WriteQuorum,
			"version deleted on %d of %d nodes, need %d", acks, len(placed), m.WriteQuorum))
	}
	return mayApply, nil
}

// VersionListOptions selects a page of ListObjectVersions.
type VersionListOptions struct {
	Prefix    string
	Delimiter string
	// KeyMarker and VersionMarker: the page starts after version
	// VersionMarker (an id as clients see it) of KeyMarker, or after every
	// version of KeyMarker if VersionMarker is "".
	KeyMarker     string
	VersionMarker string
	MaxKeys       int // 0 means 1000; capped at 1000
}

// VersionList is a page of ListObjectVersions.
type VersionList struct {
	// Versions are in key order, each key's newest first; IsLatest says
	// which one is the key's current version.
	Versions       []ListedVersion
	CommonPrefixes []string
	Truncated      bool
	NextKeyMarker  string
	// NextVersionMarker is the id of the last version listed ("" when
	// the page ended on a common prefix).
	NextVersionMarker string
}

// ListedVersion is one entry of a version listing.
type ListedVersion struct {
	ObjectInfo
	IsLatest bool
}

// ListObjectVersions returns a page of every version of bucket's keys,
// delete markers included, merged from every node of the map as
// ListObjects is. Errors: ErrNoSuchBucket, ErrInvalidArgument, ErrQuorum.
func (s *Store) ListObjectVersions(ctx context.Context, bucket string, opts VersionListOptions) (VersionList, error) {
	return fenced(ctx, s, func(ctx context.Context) (VersionList, error) { return s.listObjectVersions(ctx, bucket, opts) })
}

func (s *Store) listObjectVersions(ctx context.Context, bucket string, opts VersionListOptions) (VersionList, error) {
	const op = "objects.ListObjectVersions"
	if err := validName(op, bucket, "", false); err != nil {
		return VersionList{}, err
	}
	if opts.MaxKeys < 0 {
		return VersionList{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: negative MaxKeys", ErrInvalidArgument))
	}
	maxKeys := opts.MaxKeys
	if maxKeys == 0 || maxKeys > MaxListKeys {
		maxKeys = MaxListKeys
	}
	if err := s.checkBucket(ctx, bucket); err != nil {
		return VersionList{}, kerr.E(op, err)
	}
	afterKey, afterVersion := opts.KeyMarker, ""
	if opts.VersionMarker != "" && opts.KeyMarker != "" {
		afterVersion = opts.VersionMarker
		if afterVersion == client.NullVersion {
			nvs, err := s.keyVersions(ctx, bucket, opts.KeyMarker)
			if err != nil {
				return VersionList{}, kerr.E(op, err)
			}
			meta, _, ok := findVersion(nvs, client.NullVersion)
			if !ok {
				return VersionList{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: version-id-marker null names no version of %q", ErrInvalidArgument, opts.KeyMarker))
			}
			afterVersion = meta.Version
		} else if client.CheckVersion(afterVersion) != nil {
			return VersionList{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: version-id-marker %q", ErrInvalidArgument, afterVersion))
		}
	}
	// A marker inside a common prefix continues after all of it.
	if cp, ok := commonPrefix(afterKey, opts.Prefix, opts.Delimiter); ok && afterVersion == "" {
		afterKey = cp + afterPrefix
	}
	if afterKey < internalEnd {
		afterKey, afterVersion = internalEnd, ""
	}
	var res VersionList
	lastKey := ""
	if afterVersion != "" {
		lastKey = opts.KeyMarker // the page resumes below the key's newest
	}
	full := func() bool { return len(res.Versions)+len(res.CommonPrefixes) == maxKeys }
	for {
		recs, more, err := s.versionPage(ctx, bucket, opts.Prefix, afterKey, afterVersion, maxKeys+1)
		if err != nil {
			return VersionList{}, kerr.E(op, err)
		}
		for _, r := range recs {
			afterKey, afterVersion = r.Key, r.Version
			if isInternal(r.Key) || !strings.HasPrefix(r.Key, opts.Prefix) {
				continue
			}
			if cp, ok := commonPrefix(r.Key, opts.Prefix, opts.Delimiter); ok {
				if full() {
					res.Truncated = true
					return res, nil
				}
				res.CommonPrefixes = append(res.CommonPrefixes, cp)
				res.NextKeyMarker, res.NextVersionMarker = cp, ""
				afterKey, afterVersion = cp+afterPrefix, ""
				more = true
				break
			}
			if full() {
				res.Truncated = true
				return res, nil
			}
			res.Versions = append(res.Versions, ListedVersion{ObjectInfo: infoOf(r.ObjectMeta), IsLatest: r.Key != lastKey})
			lastKey = r.Key
			res.NextKeyMarker, res.NextVersionMarker = r.Key, versionID(r.ObjectMeta)
		}
		if !more {
			res.NextKeyMarker, res.NextVersionMarker = "", ""
			return res, nil
		}
	}
}

// versionPage merges one page of every node's versions after
// (afterKey, afterVersion): each (key, version) once, in key order and
// newest first within a key, cut where a truncated node's page ends (what
// follows could be missing that node's versions). It needs all but
// ParityShards of the nodes to answer.
func (s *Store) versionPage(ctx context.Context, bucket, prefix, afterKey, afterVersion string, limit int) ([]client.Record, bool, error) {
	m := s.Map()
	ms := s.members(nodeaccess.LiveNodes(m))
	pages := make([]client.VersionPage, len(ms))
	errs := make([]error, len(ms))
	each(len(ms), func(i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		pages[i], errs[i] = versionsOf(ms[i]).ListVersions(cctx, bucket, prefix, afterKey, afterVersion, limit)
	})
	if err := ctx.Err(); err != nil {
		return nil, false, kerr.E("objects.listVersions", kerr.Transient, err)
	}
	type pos struct{ key, version string }
	before := func(a, b pos) bool { // a comes before b in listing order
		if a.key != b.key {
			return a.key < b.key
		}
		return a.version > b.version
	}
	var cut *pos
	alive := 0
	seen := map[pos]bool{}
	var all []client.Record
	for i, p := range pages {
		if errs[i] != nil {
			s.log.Debug("objects: list versions failed", "node", ms[i].Node.ID, "bucket", bucket, "err", errs[i])
			continue
		}
		alive++
		if p.Truncated && len(p.Records) > 0 {
			last := p.Records[len(p.Records)-1]
			if lp := (pos{last.Key, last.Version}); cut == nil || before(lp, *cut) {
				cut = &lp
			}
		}
		for _, r := range p.Records {
			if k := (pos{r.Key, r.Version}); !seen[k] {
				seen[k] = true
				all = append(all, r)
			}
		}
	}
	if need := max(len(ms)-m.ParityShards, 1); alive < need {
		return nil, false, kerr.E("objects.listVersions", kerr.Unavailable,
			quorumErr("%d of %d nodes answered the listing, need %d", alive, len(ms), need))
	}
	slices.SortFunc(all, func(a, b client.Record) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(b.Version, a.Version)
	})
	if cut != nil {
		all = slices.DeleteFunc(all, func(r client.Record) bool { return before(*cut, pos{r.Key, r.Version}) })
	}
	return all, cut != nil, nil
}

// versionsOf returns m's node as a client.Versioner.
func versionsOf(m member) client.Versioner { return client.VersionsOf(m.Client) }

// checkNoVersions fails with ErrBucketNotEmpty if bucket, versioned, still
// holds a version or delete marker: S3 deletes only a bucket without any.
func (s *Store) checkNoVersions(ctx context.Context, bucket string) error {
	st, err := s.freshState(ctx, bucket)
	if err != nil || st.Versioning == "" {
		return err
	}
	page, err := s.listObjectVersions(ctx, bucket, VersionListOptions{MaxKeys: 1})
	if err != nil {
		return err
	}
	if len(page.Versions) > 0 || len(page.CommonPrefixes) > 0 {
		return kerr.E("objects.checkNoVersions", kerr.NotEmpty, fmt.Errorf("%w: %s holds versions", ErrBucketNotEmpty, bucket))
	}
	return nil
}

// noncurrentParts adds to keep the parts of upload id that a noncurrent
// version of bucket/key names: a versioned key's older multipart versions
// keep their parts. A node that cannot tell fails the call, as in
// referencedParts.
func (s *Store) noncurrentParts(ctx context.Context, nodes []member, bucket, key, id string, keep map[string]bool) error {
	nvs := make([]client.KeyVersions, len(nodes))
	errs := make([]error, len(nodes))
	each(len(nodes), func(i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		nvs[i], errs[i] = versionsOf(nodes[i]).KeyVersions(cctx, bucket, key)
	})
	for i, kv := range nvs {
		if errs[i] != nil && !errors.Is(errs[i], client.ErrNoVersions) {
			return kerr.E("objects.noncurrentParts", kerr.Unavailable, quorumErr("node %s of %s/%s did not list its versions: %v", nodes[i].Node.ID, bucket, key, errs[i]))
		}
		for _, r := range kv.Versions {
			for _, p := range r.Parts {
				if strings.HasPrefix(p.Key, uploadKey(id)+"/") {
					keep[p.Key] = true
				}
			}
		}
	}
	return nil
}

// answeredVersions counts the nodes that answered a keyVersions.
func answeredVersions(nvs []nodeVersions) int {
	n := 0
	for _, nv := range nvs {
		if nv.err == nil {
			n++
		}
	}
	return n
}
