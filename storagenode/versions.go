package storagenode

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
	"github.com/kintsugi-store/kintsugi/storagenode/internal/meta"
)

// Versioning (docs/versioning.md). A commit that supersedes a key's
// current record keeps it as a noncurrent version when the bucket is
// versioned: by the state the commit carries, or by the node's own bucket
// record when that is newer. The node never needs both to agree: keeping
// a version is always safe, and the writer learnt the newest state a
// quorum of nodes held from their stage answers before committing.

func (n *Node) serveKeyVersions(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	return n.KeyVersions(r.Context(), q.Get("bucket"), q.Get("key"))
}

func (n *Node) serveListVersions(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	limit, err := intParam(q, "storagenode.ListVersions", "limit", 0)
	if err != nil {
		return nil, err
	}
	return n.ListVersions(r.Context(), q.Get("bucket"), q.Get("prefix"), q.Get("after_key"), q.Get("after_version"), int(limit))
}

func (n *Node) serveDeleteVersion(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	cur, err := n.DeleteVersion(r.Context(), q.Get("bucket"), q.Get("key"), q.Get("version"))
	if err != nil {
		return nil, err
	}
	return struct {
		Current *client.Record `json:"current"`
	}{cur}, nil
}

func (n *Node) serveCommitNoncurrent(w http.ResponseWriter, r *http.Request) (any, error) {
	var m client.ObjectMeta
	if err := readJSON(w, r, "storagenode.CommitNoncurrent", &m); err != nil {
		return nil, err
	}
	return orNil(n.CommitNoncurrent(r.Context(), m))
}

func (n *Node) serveSetTags(w http.ResponseWriter, r *http.Request) (any, error) {
	var u client.TagUpdate
	if err := readJSON(w, r, "storagenode.SetTags", &u); err != nil {
		return nil, err
	}
	return orNil(n.SetTags(r.Context(), u))
}

// KeyVersions returns every version the node holds of bucket/key (see
// client.Client.KeyVersions).
func (n *Node) KeyVersions(ctx context.Context, bucket, key string) (client.KeyVersions, error) {
	const op = "storagenode.KeyVersions"
	if err := n.admit(ctx, false); err != nil {
		return client.KeyVersions{}, err
	}
	if err := client.CheckKey(bucket, key); err != nil {
		return client.KeyVersions{}, kerr.E(op, err)
	}
	kv, err := n.keyVersions(bucket, key)
	if err != nil {
		return kv, n.settle(kerr.E(op, err))
	}
	return kv, nil
}

// ListVersions returns up to limit versions of bucket's keys having
// prefix, after the version afterVersion of afterKey (see
// client.Client.ListVersions).
func (n *Node) ListVersions(ctx context.Context, bucket, prefix, afterKey, afterVersion string, limit int) (client.VersionPage, error) {
	const op = "storagenode.ListVersions"
	if err := n.admit(ctx, false); err != nil {
		return client.VersionPage{}, err
	}
	if err := client.CheckBucket(bucket); err != nil {
		return client.VersionPage{}, kerr.E(op, err)
	}
	recs, more, err := n.db.ListVersions(bucket, prefix, afterKey, afterVersion, client.ListLimit(limit))
	if err != nil {
		return client.VersionPage{}, n.settle(kerr.E(op, err))
	}
	return client.VersionPage{Records: recs, Truncated: more}, nil
}

// DeleteVersion deletes one version of a key for good and returns the
// key's current record afterwards (see client.Client.DeleteVersion).
func (n *Node) DeleteVersion(ctx context.Context, bucket, key, version string) (*client.Record, error) {
	if err := n.admit(ctx, true); err != nil {
		return nil, err
	}
	cur, err := n.deleteVersion(bucket, key, version)
	return cur, n.settle(err)
}

// CommitNoncurrent commits m as a rebuild of any version of a versioned
// key does (see client.Client.CommitNoncurrent).
func (n *Node) CommitNoncurrent(ctx context.Context, m client.ObjectMeta) (client.Record, error) {
	if err := n.admit(ctx, true); err != nil {
		return client.Record{}, err
	}
	rec, err := n.commitNoncurrent(m)
	return rec, n.settle(err)
}

// SetTags replaces the tag set of one version the node holds, current or
// noncurrent, unless its tags carry a newer stamp (see
// client.Client.SetTags). The record changes in place: no new version, no
// data written, Modified kept.
func (n *Node) SetTags(ctx context.Context, u client.TagUpdate) (client.Record, error) {
	const op = "storagenode.SetTags"
	if err := n.admit(ctx, true); err != nil {
		return client.Record{}, err
	}
	if err := client.CheckTagUpdate(u); err != nil {
		return client.Record{}, kerr.E(op, err)
	}
	unlock := n.lock(u.Bucket, u.Key)
	defer unlock()
	rec, found, err := n.db.SetTags(u.Bucket, u.Key, u.Version, u.Tagging, u.At)
	switch {
	case err != nil:
		return client.Record{}, n.settle(kerr.E(op, err))
	case !found:
		return client.Record{}, kerr.E(op, kerr.NotExist, fmt.Errorf("no version %s of %s/%s", u.Version, u.Bucket, u.Key))
	case rec.Deleted:
		return client.Record{}, kerr.E(op, kerr.NotExist, fmt.Errorf("version %s of %s/%s is a delete marker", u.Version, u.Bucket, u.Key))
	}
	return rec, nil
}

// bucketState returns the node's record of bucket's versioning state, nil
// if the node holds no record of the bucket or it was never versioned.
func (n *Node) bucketState(bucket string) (*client.BucketState, error) {
	b, err := n.db.Bucket(bucket)
	switch {
	case kerr.Is(kerr.NotExist, err):
		return nil, nil
	case err != nil:
		return nil, err
	case b.Versioning == "" && !b.Deleted:
		return nil, nil
	}
	return &client.BucketState{Versioning: b.Versioning, Version: b.Version}, nil
}

// versionsFor decides what committing m over cur (nil: none) does to the
// key's versions. REQUIRES: the key's lock.
func (n *Node) versionsFor(cur *client.Record, m client.ObjectMeta) (meta.Versions, error) {
	state := m.Versioning
	switch b, err := n.bucketState(m.Bucket); {
	case err != nil:
		return meta.Versions{}, err
	case b.Newer(m.VersioningAt):
		state = b.Versioning
	}
	var vs meta.Versions
	if state == "" {
		return vs, nil // never versioned: the commit supersedes
	}
	if cur != nil && (state == client.VersioningEnabled || cur.Versioned) {
		vs.Keep = cur
	}
	if !m.Versioned {
		// A null version replaces the key's null version, and that
		// one alone.
		old, err := n.db.Noncurrent(m.Bucket, m.Key)
		if err != nil {
			return meta.Versions{}, err
		}
		for _, r := range old {
			if !r.Versioned {
				vs.Drop = append(vs.Drop, r)
				if r.Shard >= 0 {
					vs.DropFiles = append(vs.DropFiles, shardFile(r.Bucket, r.Key, r.Version, r.Shard))
				}
			}
		}
	}
	return vs, nil
}

// refusePurged refuses a commit of a version deleted by version.
func (n *Node) refusePurged(op string, m client.ObjectMeta) error {
	// A version and its re-codes (client.RecodeVersion, any generation)
	// are one object under several names: deleting any of them by id
	// deletes the object, so a late commit of another must not bring it
	// back.
	switch v, err := n.db.PurgedAs(m.Bucket, m.Key, m.Version); {
	case err != nil:
		return kerr.E(op, err)
	case v != "":
		return kerr.E(op, kerr.NotExist, fmt.Errorf("%w: %s/%s version %s", client.ErrVersionDeleted, m.Bucket, m.Key, v))
	}
	return nil
}

// noncurrentShard returns the shard index of a noncurrent version the node
// holds, or ok false.
func (n *Node) noncurrentShard(bucket, key, version string) (shard int, ok bool, err error) {
	old, err := n.db.Noncurrent(bucket, key)
	if err != nil {
		return 0, false, err
	}
	for _, r := range old {
		if r.Version == version {
			if r.Shard < 0 {
				return 0, false, kerr.E("storagenode.ReadShard", kerr.NotExist, "version is a delete marker")
			}
			return r.Shard, true, nil
		}
	}
	return 0, false, nil
}

// statVersions adds to ks what versioning tells a reader of the key: the
// versions deleted by version that are newer than the committed one, and
// the newest noncurrent version as the previous one when the superseded
// grace names none (a reader falling back to it counts this node).
func (n *Node) statVersions(ks *client.KeyState) error {
	rec := ks.Committed
	if rec == nil {
		return nil
	}
	purged, err := n.db.Purged(rec.Bucket, rec.Key)
	if err != nil {
		return err
	}
	for _, v := range purged {
		if v > rec.Version {
			ks.Purged = append(ks.Purged, v)
		}
	}
	if ks.Previous != nil || !rec.Versioned && rec.Versioning == "" {
		return nil
	}
	old, err := n.db.Noncurrent(rec.Bucket, rec.Key)
	if err != nil || len(old) == 0 {
		return err
	}
	ks.Previous = &old[0]
	return nil
}

// keyVersions reads the key's versions under its lock: one consistent
// view of current, noncurrent and deleted.
func (n *Node) keyVersions(bucket, key string) (client.KeyVersions, error) {
	unlock := n.lock(bucket, key)
	defer unlock()
	var kv client.KeyVersions
	rec, err := n.db.Record(bucket, key)
	if err != nil {
		return kv, err
	}
	if rec != nil {
		old, err := n.db.Noncurrent(bucket, key)
		if err != nil {
			return kv, err
		}
		kv.Versions = append([]client.Record{*rec}, old...)
	}
	kv.Purged, err = n.db.Purged(bucket, key)
	return kv, err
}

// deleteVersion deletes one version of a key for good (see
// client.DeleteVersion) and returns the key's current record afterwards.
// The removed shard file goes at once: a reader of exactly that version
// then fails over to other nodes, which are deleting it too.
func (n *Node) deleteVersion(bucket, key, version string) (*client.Record, error) {
	const op = "storagenode.DeleteVersion"
	if err := client.CheckObject(bucket, key, version); err != nil {
		return nil, kerr.E(op, err)
	}
	unlock := n.lock(bucket, key)
	defer unlock()
	file := func(r client.Record) string {
		if r.Shard < 0 {
			return ""
		}
		return shardFile(r.Bucket, r.Key, r.Version, r.Shard)
	}
	cur, removed, err := n.db.Purge(bucket, key, version, file)
	if err != nil {
		return nil, kerr.E(op, err)
	}
	// Staged copies of the version must not be rolled forward either.
	staged, err := n.stagedVersion(bucket, key, version, "")
	if err == nil {
		err = n.dropStaged(staged, cur)
	}
	if err != nil {
		n.log.Warn("dropping staged shards of a deleted version", "bucket", bucket, "key", key, "version", version, "err", err)
	}
	if removed != nil {
		if f := file(*removed); f != "" {
			if _, err := n.removeFile(f); err != nil {
				n.log.Warn("removing deleted version's shard", "file", f, "err", err)
			}
		}
	}
	return cur, nil
}

// commitNoncurrent commits a version the way a rebuild of any version of a
// versioned key must: a version newer than the key's current one (or the
// current one) commits as usual; an older one is installed as a
// noncurrent version, replacing the node's shard of it if it holds one.
// It never makes an older version current, and never installs a version
// deleted by version.
func (n *Node) commitNoncurrent(m client.ObjectMeta) (client.Record, error) {
	const op = "storagenode.CommitNoncurrent"
	if err := client.CheckObject(m.Bucket, m.Key, m.Version); err != nil {
		return client.Record{}, kerr.E(op, err)
	}
	unlock := n.lock(m.Bucket, m.Key)
	cur, err := n.db.Record(m.Bucket, m.Key)
	if err != nil {
		unlock()
		return client.Record{}, kerr.E(op, err)
	}
	if cur == nil || cur.Version <= m.Version {
		unlock()
		return n.commit(m)
	}
	defer unlock()
	if err := n.refusePurged(op, m); err != nil {
		return client.Record{}, err
	}
	staged, err := n.stagedVersion(m.Bucket, m.Key, m.Version, "")
	if err != nil {
		return client.Record{}, kerr.E(op, err)
	}
	rec := client.Record{ObjectMeta: m, Shard: -1}
	var install meta.Move
	if !m.Deleted && len(m.Parts) == 0 {
		s, ok := pickStaged(staged, m, n.cfg.ID)
		if !ok {
			return client.Record{}, kerr.E(op, kerr.NotExist, fmt.Errorf("no staged shard of %s/%s version %s", m.Bucket, m.Key, m.Version))
		}
		if s.Shard < len(m.Roots) && m.Roots[s.Shard] != "" && !strings.EqualFold(m.Roots[s.Shard], s.Root) {
			return client.Record{}, kerr.E(op, kerr.Corrupt, fmt.Errorf("staged shard %d has root %s, commit says %s", s.Shard, s.Root, m.Roots[s.Shard]))
		}
		if install, err = n.install(s, m.Version); err != nil {
			return client.Record{}, kerr.E(op, ioKind(err), err)
		}
		rec.Shard = s.Shard
	}
	// A node whose shard index of the version changed (a rebalance swap)
	// gives the old shard's file up.
	var replaced string
	if old, err := n.noncurrentOr(cur, m.Version); err == nil && old != cur && old.Shard >= 0 && old.Shard != rec.Shard {
		replaced = shardFile(old.Bucket, old.Key, old.Version, old.Shard)
	}
	if err := n.db.PutNoncurrent(rec, staged, install, replaced); err != nil {
		return client.Record{}, kerr.E(op, err)
	}
	if replaced != "" {
		n.removeFile(replaced)
	}
	for _, s := range staged {
		if s.Shard != rec.Shard {
			n.removeFile(s.File)
		}
	}
	if rec.Shard >= 0 {
		if q, err := n.db.QuarantinedShard(rec.Bucket, rec.Key, rec.Version, rec.Shard); err == nil && q != nil {
			if err := n.db.DeleteQuarantined(*q); err != nil {
				n.log.Warn("clearing quarantine of a rebuilt noncurrent shard", "err", err)
			}
		}
	}
	return rec, nil
}

// noncurrentOr returns the node's noncurrent record of version of cur's
// key if it holds one, else cur. REQUIRES: the key's lock.
func (n *Node) noncurrentOr(cur *client.Record, version string) (*client.Record, error) {
	old, err := n.db.Noncurrent(cur.Bucket, cur.Key)
	if err != nil {
		return nil, err
	}
	for i := range old {
		if old[i].Version == version {
			return &old[i], nil
		}
	}
	return cur, nil
}
