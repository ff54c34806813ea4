package scrubber

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/lifecycle"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Lifecycle rules (internal/lifecycle) run in the pass, key by key, once
// the key is checked. Every expiry is an ordinary write through the node
// protocol, needing the write quorum like any: a current version expires
// by a delete marker named above it (a node holding anything newer
// refuses the marker, and the write that put it there wins); a
// noncurrent version or a lone delete marker by a delete by version,
// which the nodes refuse to undo. A crash midway leaves a marker on too
// few nodes (readers skip it, the next pass writes another) or a deletion
// on some nodes (readers skip the version as soon as one reports it, the
// next pass spreads it): nothing expires twice, nothing comes back.
//
// Tag filters are evaluated against the tags recorded with the version
// (client.ObjectMeta.Tagging), as of the newest tag update any node
// reports (ObjectMeta.TagsAt); a version recorded without tags has none.

// DefaultLifecycleDay is a lifecycle rule's day.
const DefaultLifecycleDay = 24 * time.Hour

// bucketRules returns the bucket's parsed lifecycle rules, nil if none.
func (s *Scrubber) bucketRules(bucket string) *lifecycle.Configuration {
	doc := s.bucketRecord(bucket).Lifecycle
	if doc == "" {
		return nil
	}
	cfg, err := lifecycle.Parse([]byte(doc))
	if err != nil {
		s.log.Warn("scrub: bucket lifecycle unreadable", "bucket", bucket, "err", err)
		return nil
	}
	return cfg
}

func (s *Scrubber) lifecycleDay() time.Duration {
	if s.cfg.LifecycleDay > 0 {
		return s.cfg.LifecycleDay
	}
	return DefaultLifecycleDay
}

// internalKey reports whether key is one of the gateway's internal keys
// (multipart uploads and parts): they carry the key they belong to.
func internalKey(meta client.ObjectMeta) bool { return meta.Target != "" }

// lifecycle applies the bucket's lifecycle rules to the key c checked;
// nvs are the nodes' versions of it if it is versioned (nil otherwise).
func (s *Scrubber) lifecycle(ctx context.Context, t *tally, c checked, nvs []nodeVersions) error {
	rules := s.bucketRules(c.bucket)
	if rules == nil || s.cfg.DryRun || internalKey(c.meta) || c.meta.Version == "" {
		return nil
	}
	switch c.verdict {
	case vIncomplete, vChanged, vUnacknowledged, vUnrecoverable:
		return nil // the key's state is not settled: next pass
	}
	now, day := s.now(), s.lifecycleDay()
	versions, purged := mergedVersions(nvs)
	for _, v := range versions {
		if v.Version == c.meta.Version && v.TagsAt > c.meta.TagsAt {
			c.meta.Tagging, c.meta.TagsAt = v.Tagging, v.TagsAt
		}
	}
	if c.meta.Deleted {
		// A marker with nothing under it.
		if nvs != nil && len(versions) == 1 && versions[0].Version == c.meta.Version && rules.MarkerExpired(c.key) {
			if s.purge(ctx, t, c, c.meta.Version) {
				s.log.Info("scrub: lifecycle removed a lone delete marker", "bucket", c.bucket, "key", c.key, "version", c.meta.Version)
			}
		}
	} else if rules.CurrentExpired(c.key, tagsOf(c.meta), lifecycle.Object{Modified: c.meta.Modified}, now, day) {
		if s.expireCurrent(ctx, t, c) {
			return nil // the noncurrent ones wait for the next pass
		}
	}
	// Noncurrent versions: below the current one, newest first.
	var older []client.ObjectMeta
	var since []time.Time
	for i, v := range versions {
		if i == 0 || purged[v.Version] || v.Version >= c.meta.Version {
			continue
		}
		older = append(older, v)
		since = append(since, versions[i-1].Modified)
	}
	for i, gone := range rules.NoncurrentExpired(c.key, tagsOf(c.meta), since, now, day) {
		if gone && s.purge(ctx, t, c, older[i].Version) {
			s.log.Info("scrub: lifecycle expired a noncurrent version", "bucket", c.bucket, "key", c.key, "version", older[i].Version)
		}
	}
	return ctx.Err()
}

// mergedVersions returns every version the nodes hold of a key, once
// each, newest first, and the versions deleted by version.
func mergedVersions(nvs []nodeVersions) ([]client.ObjectMeta, map[string]bool) {
	purged := map[string]bool{}
	seen := map[string]client.ObjectMeta{}
	for _, nv := range nvs {
		for _, v := range nv.kv.Purged {
			purged[v] = true
		}
		for _, r := range nv.kv.Versions {
			// A tag update reaches a write quorum, not every node: the
			// newest stamp holds the version's tags.
			if m, ok := seen[r.Version]; !ok || r.TagsAt > m.TagsAt {
				seen[r.Version] = r.ObjectMeta
			}
		}
	}
	var out []client.ObjectMeta
	for v, m := range seen {
		if !purged[v] {
			out = append(out, m)
		}
	}
	sortNewestFirst(out)
	return out, purged
}

func sortNewestFirst(ms []client.ObjectMeta) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].Version > ms[j-1].Version; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// expireCurrent writes a delete marker above c's current version on the
// key's nodes, in the bucket's versioning state, and reports whether it
// reached the write quorum.
func (s *Scrubber) expireCurrent(ctx context.Context, t *tally, c checked) bool {
	b := s.bucketRecord(c.bucket)
	marker := client.ObjectMeta{
		Bucket: c.bucket, Key: c.key, Version: versionAbove(c.meta.Version, s.now()), Deleted: true,
		Modified: s.now().UTC(), Data: s.m.DataShards, Parity: s.m.ParityShards, BlockSize: s.m.BlockSize,
		Format:     codec.FormatVersion,
		Versioning: b.Versioning, VersioningAt: b.Version, Versioned: b.Versioning == client.VersioningEnabled,
	}
	nodes := s.members(c.placed)
	acks := make([]bool, len(nodes))
	newer := make([]bool, len(nodes))
	each(len(nodes), 0, func(i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		_, err := nodes[i].Client.Commit(cctx, marker)
		acks[i], newer[i] = err == nil, client.Newer(err) != ""
	})
	n, refused := 0, false
	for i := range acks {
		if acks[i] {
			n++
		}
		refused = refused || newer[i]
	}
	switch {
	case n >= s.m.WriteQuorum:
		s.log.Info("scrub: lifecycle expired an object", "bucket", c.bucket, "key", c.key, "version", c.meta.Version, "marker", marker.Version)
		t.add(func(r *Report) { r.Expired++ })
		return true
	case refused:
		// A newer write took the key: it is no longer the version the
		// rule expired.
		t.add(func(r *Report) { r.Changed++ })
	default:
		t.incomplete("%s/%s: lifecycle delete marker committed on %d of %d nodes, need %d", c.bucket, c.key, n, len(nodes), s.m.WriteQuorum)
	}
	return false
}

// purge deletes version of c's key by version on the key's nodes and
// reports whether the write quorum recorded it.
func (s *Scrubber) purge(ctx context.Context, t *tally, c checked, version string) bool {
	nodes := s.members(c.placed)
	errs := make([]error, len(nodes))
	each(len(nodes), 0, func(i int) {
		vc := client.VersionsOf(nodes[i].Client)
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		_, errs[i] = vc.DeleteVersion(cctx, c.bucket, c.key, version)
	})
	n := 0
	var why []string
	for i, err := range errs {
		if err == nil {
			n++
		} else {
			why = append(why, fmt.Sprintf("%s: %v", nodes[i].Node.ID, err))
		}
	}
	if n < s.m.WriteQuorum {
		t.incomplete("%s/%s version %s: lifecycle deletion recorded on %d of %d nodes, need %d (%s)",
			c.bucket, c.key, version, n, len(nodes), s.m.WriteQuorum, strings.Join(why, "; "))
		return false
	}
	t.add(func(r *Report) { r.Expired++ })
	return true
}

// versionAbove names a new version newer than v, from now's clock if that
// is ahead, else just above v: a lifecycle marker must win over the
// version it expires whatever the clocks say.
func versionAbove(v string, now time.Time) string {
	id := ulid.MustNew(ulid.Timestamp(now), ulid.DefaultEntropy())
	if s := id.String(); s > v {
		return s
	}
	// A re-code's name is its base version's plus a suffix: anything
	// above the base is above it too.
	old, err := ulid.ParseStrict(client.BaseVersion(v))
	if err != nil {
		return id.String()
	}
	next := ulid.MustNew(old.Time()+1, ulid.DefaultEntropy())
	return next.String()
}

// tagsOf returns m's tag set (stored URL-encoded, as x-amz-tagging sends
// it). A set that does not decode counts as no tags: the gateway checked
// it when it was stored, so that is damage, and expiring by a filter the
// object may not match would be worse than keeping it.
func tagsOf(m client.ObjectMeta) map[string]string {
	if m.Tagging == "" {
		return nil
	}
	q, err := url.ParseQuery(m.Tagging)
	if err != nil {
		return nil
	}
	tags := make(map[string]string, len(q))
	for k, v := range q {
		if len(v) > 0 {
			tags[k] = v[0]
		}
	}
	return tags
}
