package objects

import (
	"context"
	"errors"
	"fmt"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/nodeaccess"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Tag updates. S3 changes the tag set of an existing version; it writes no
// new version and leaves the data, Last-Modified and ETag alone. The nodes
// rewrite the tag field of that version's record in place (client.SetTags)
// and keep the tag set of the newest stamp; readers take the tags of the
// answer with the newest stamp (newestTags). An update reaches WriteQuorum
// of the key's nodes, so every read quorum includes one that has it.

// maxTagRounds bounds how often a tag update is sent again with a newer
// stamp after a node answered that it keeps a newer one. It is sent again
// only if no node took it (see setObjectTags).
const maxTagRounds = 3

// SetObjectTags replaces the tag set of one version of bucket/key, named
// by the id clients see ("" for the current version), with tagging (URL
// encoded, "" for none). It returns the version's description with its new
// tags. Errors: ErrNoSuchBucket, ErrNoSuchKey, ErrNoSuchVersion,
// ErrDeleteMarker (with the marker's Info), ErrInvalidArgument, ErrQuorum.
func (s *Store) SetObjectTags(ctx context.Context, bucket, key, id, tagging string) (ObjectInfo, error) {
	return fenced(ctx, s, func(ctx context.Context) (ObjectInfo, error) {
		info, err := s.setObjectTags(ctx, bucket, key, id, tagging)
		if err != nil && kerr.Is(kerr.Unavailable, err) && s.anyOpen() && !errors.As(err, new(mayApplyErr)) {
			// As for reads: nodes just back are worth one try through
			// breakers that have not caught up; not an update a node
			// may hold, which would come back above later ones.
			info, err = s.setObjectTags(nodeaccess.WithBypass(ctx), bucket, key, id, tagging)
		}
		return info, err
	})
}

func (s *Store) setObjectTags(ctx context.Context, bucket, key, id, tagging string) (ObjectInfo, error) {
	const op = "objects.SetObjectTags"
	if err := validName(op, bucket, key, true); err != nil {
		return ObjectInfo{}, err
	}
	if isInternal(key) {
		return ObjectInfo{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: key %q is in the internal namespace", ErrInvalidArgument, key))
	}
	var meta client.ObjectMeta
	if id == "" {
		if err := s.checkBucket(ctx, bucket); err != nil {
			return ObjectInfo{}, kerr.E(op, err)
		}
		r, err := s.resolve(ctx, bucket, key)
		if err != nil {
			return ObjectInfo{}, kerr.E(op, err)
		}
		meta = r.meta
	} else {
		o, err := s.openVersion(ctx, op, bucket, key, id)
		if err != nil {
			if o != nil {
				return infoOf(o.meta), err
			}
			return ObjectInfo{}, err
		}
		meta = o.meta
	}
	// The stamp is above every stamp the read saw: an update that begins
	// after another was acknowledged wins, since the read met a node that
	// has it (or, on a straggler-cut read, a node answers that it keeps a
	// newer stamp, and the update goes again above it).
	s.clock.observe(meta.TagsAt)
	maps := s.maps.Load()
	nodes := s.members(maps.Cur.PlaceKey(bucket, key))
	if maps.Prev != nil {
		nodes = s.members(maps.Cur.PlaceKey(bucket, key), maps.Prev.PlaceKey(bucket, key))
	}
	// Whether a node may hold a tag set of this update, from any round:
	// a reader can then serve it, so the update must not be run again
	// under a newer map (see mayApplyErr).
	mayApply := false
	for round := 1; ; round++ {
		at := s.clock.next()
		sent := s.sendTags(ctx, nodes, client.TagUpdate{Bucket: bucket, Key: key, Version: meta.Version, Tagging: tagging, At: at})
		mayApply = mayApply || sent.mayApply
		acks, newer := sent.acks, sent.newer
		if wq := maps.Cur.WriteQuorum; acks < wq {
			return ObjectInfo{}, kerr.E(op, kerr.Unavailable, shortfallErr(acks, refusals{staleMap: sent.staleMap, mayApply: mayApply}, wq,
				"tags of %s/%s version %s set on %d of %d nodes, need %d", bucket, key, meta.Version, acks, len(nodes), wq))
		}
		if newer == "" || round == maxTagRounds {
			// After the last round, the newer stamps are of updates
			// concurrent with this one: either order is S3's.
			meta.Tagging, meta.TagsAt = tagging, at
			return infoOf(meta), nil
		}
		if sent.mayApply {
			// A node took this round's stamp, so a reader can serve
			// it; sent again above newer, it could bury an update
			// acknowledged since that read (docs/ordering.md). Nor can
			// it be acknowledged below newer, which may be of an update
			// acknowledged before this one began that the read missed.
			return ObjectInfo{}, kerr.E(op, kerr.Unavailable, mayApplyErr{fmt.Errorf("%w: %w: tags of %s/%s version %s: a node keeps tags of a newer update",
				ErrQuorum, ErrSuperseded, bucket, key, meta.Version)})
		}
		s.clock.observe(newer)
	}
}

// tagsSent is what sending a tag update to a key's nodes did.
type tagsSent struct {
	// acks counts the nodes that hold the version and took the update,
	// or kept tags of a newer stamp, the newest of which is newer ("" if
	// none).
	acks  int
	newer string
	// staleMap counts the nodes that refused the update as holding a
	// newer cluster map.
	staleMap int
	// mayApply says that a node may hold the update's tags: one took
	// them, or one's call failed without a clear answer (not a refusal,
	// nor an open breaker, which sends nothing).
	mayApply bool
}

// sendTags sends u to nodes and reports what they did with it.
func (s *Store) sendTags(ctx context.Context, nodes []member, u client.TagUpdate) tagsSent {
	recs := make([]client.Record, len(nodes))
	errs := make([]error, len(nodes))
	each(len(nodes), func(i int) {
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		recs[i], errs[i] = versionsOf(nodes[i]).SetTags(cctx, u)
	})
	var out tagsSent
	for i, err := range errs {
		if err != nil {
			s.log.Debug("objects: tag update failed", "node", nodes[i].Node.ID, "bucket", u.Bucket, "key", u.Key, "version", u.Version, "err", err)
			switch {
			case errors.Is(err, client.ErrStaleMap):
				out.staleMap++
			case kerr.Is(kerr.NotExist, err), errors.Is(err, health.ErrOpen):
			default:
				out.mayApply = true
			}
			continue
		}
		out.acks++
		if at := recs[i].TagsAt; at > u.At {
			out.newer = max(out.newer, at)
		} else {
			out.mayApply = true
		}
	}
	return out
}

// newestTags gives meta the tag set of the record of its version, among
// the nodes' answers, with the newest tag stamp.
func newestTags(meta *client.ObjectMeta, states []nodeState) {
	for _, ns := range states {
		if ns.Err != nil {
			continue
		}
		for _, r := range []*client.Record{ns.State.Committed, ns.State.Previous} {
			if r != nil && r.Version == meta.Version && r.TagsAt > meta.TagsAt {
				meta.Tagging, meta.TagsAt = r.Tagging, r.TagsAt
			}
		}
	}
}
