package objects

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// stageQueue is how many frames a shard stream buffers ahead of its node.
// A frame is one stripe's block, so with the frame being filled and the one
// being sent a request holds about stageQueue+2 stripes of shard data (and
// the encoder's one stripe) whatever the object's size.
const stageQueue = 2

var (
	errQuorumLost = errors.New("too many shard streams failed")
	// errStalled counts against the node's health: it was too slow.
	errStalled  = fmt.Errorf("shard stream stalled: %w", health.ErrSlow)
	errEarlyEnd = errors.New("node answered before the shard body ended")
	// errNodeDown cuts off streams to a node the health tracker saw go
	// down, without waiting for their own timeouts.
	errNodeDown = errors.New("node went down")
)

// PutObject writes in.Body as a new version of in.Bucket/in.Key and returns
// its description once its write quorum of nodes have committed it
// (WriteQuorum, or less with raised parity: see writeShape). The body is
// streamed: encoded and sent to the nodes as it arrives.
//
// Errors: ErrNoSuchBucket; ErrIncompleteBody (kerr.Invalid) when the body ends
// before in.Size bytes; ErrInvalidArgument (kerr.Invalid) when it runs past
// in.Size; ErrQuorum (kerr.Unavailable) when too few nodes staged or
// committed. On every error but a commit quorum failure nothing of the new
// version is visible; after a commit quorum failure the version may or may
// not become visible, as with any unacknowledged write.
//
// A body of known size up to MaxKeptBody is kept while the write runs, as
// long as the bound on kept bodies (Config.KeptBodies) allows, so
// that the write can run again (putKept): a body of at most one stripe is
// read whole before staging, a longer one recorded as it streams. A write
// whose body is not kept runs once: a stale map or failed nodes spend it,
// the put answers ErrQuorum and the client's retry finds the new map
// installed and the nodes marked down.
func (s *Store) PutObject(ctx context.Context, in PutInput) (ObjectInfo, error) {
	m := s.Map()
	if client.FenceOf(ctx) != nil || in.Body == nil || in.Size < 0 {
		return s.putOnce(ctx, in)
	}
	if in.Size > int64(m.DataShards*m.BlockSize) {
		rb, ok := s.keep(in.Body, in.Size)
		if !ok {
			return s.putOnce(ctx, in)
		}
		defer s.release(rb)
		return s.putKept(ctx, in, func(ctx context.Context, in PutInput) (ObjectInfo, error) {
			in.Body = rb.reader()
			return s.putObject(ctx, in)
		})
	}
	// The buffer goes back to the pool on return: Encode reads the body
	// synchronously and copies it into stripes, so nothing keeps it.
	bp := s.bodies.get(int(in.Size))
	defer s.bodies.put(bp)
	n, rerr := io.ReadFull(in.Body, *bp)
	// One byte past the declared size is read too, so that a body that
	// runs past in.Size is still refused; a read error is replayed after
	// the bytes before it.
	var extra []byte
	if rerr == nil {
		one := make([]byte, 1)
		k, err := io.ReadFull(in.Body, one)
		extra, rerr = one[:k], err
	}
	if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
		rerr = nil
	}
	body := (*bp)[:n]
	return s.putKept(ctx, in, func(ctx context.Context, in PutInput) (ObjectInfo, error) {
		in.Body = io.MultiReader(bytes.NewReader(body), bytes.NewReader(extra), &errReader{rerr})
		return s.putObject(ctx, in)
	})
}

// putOnce is PutObject for a body that is not kept: one attempt, fenced
// but never run again.
func (s *Store) putOnce(ctx context.Context, in PutInput) (ObjectInfo, error) {
	ctx, done := s.fence(ctx)
	defer done()
	return s.putObject(ctx, in)
}

// putKept runs put(in), a write whose body put reads anew at each call,
// and runs it again in three cases:
//   - nodes refused it for a stale map and no node may hold it committed
//     (fenced, mayApplyErr): again under the new map, once per attempt;
//   - nodes failed its stage, or failed its commit while the others
//     refused it for a newer version, so that no node holds it committed
//     (stageFailedErr): again, under a new version, with those nodes
//     taken for down and so with raised parity (writeShape), and again
//     after each attempt that loses another node, while the nodes that
//     failed are at most p;
//   - at most p nodes failed the commit of a version others committed,
//     into an unversioned bucket (commitFailedErr): finished as the
//     re-code of its version, V.1, once.
func (s *Store) putKept(ctx context.Context, in PutInput, put func(context.Context, PutInput) (ObjectInfo, error)) (ObjectInfo, error) {
	m := s.Map()
	run := func(ctx context.Context) (ObjectInfo, error) { return put(ctx, in) }
	in.restage = true
	info, err := fenced(ctx, s, run)
	for {
		var sf stageFailedErr
		if err == nil || ctx.Err() != nil || !errors.As(err, &sf) {
			break
		}
		avoid := slices.Clone(in.avoid)
		for _, id := range sf.nodes {
			if !slices.Contains(avoid, id) {
				avoid = append(avoid, id)
			}
		}
		if len(avoid) == len(in.avoid) || len(avoid) > m.ParityShards {
			break
		}
		// Nodes failed before any of them committed the write: no node
		// can hold it committed, so it may be staged again, under a new
		// version, with those nodes taken for down whatever their
		// breakers say yet, and so with raised parity on the nodes
		// still up (writeShape). The new version is above every one
		// the nodes refused the first with, as a commit retry's is
		// (commitWrite). An attempt that loses another node runs again
		// too, with every node that failed taken for down, as long as
		// they are at most p: each attempt takes one more, so there
		// are at most p+1.
		s.log.Info("objects: nodes failed a write before it committed anywhere; writing it again with them taken for down",
			"bucket", in.Bucket, "key", in.Key, "failed", avoid)
		in.avoid, in.restage = avoid, false
		s.metrics.retried(retryStageFailed)
		info, err = fenced(ctx, s, run)
	}
	var cf commitFailedErr
	if err != nil && ctx.Err() == nil && in.target == "" && errors.As(err, &cf) && cf.unversioned && len(cf.nodes) <= m.ParityShards {
		// Nodes failed the commit of a version they staged, after
		// others committed it: the write may be visible already and
		// must not be named anew (mayApplyErr), but it can be
		// finished as the re-code of its version, V.1, with the nodes
		// that failed taken for down and its parity raised over the
		// others (writeShape). That keeps the order of writes
		// (docs/ordering.md): V.1 holds the same bytes as V and sorts
		// above V but below every version above V, so it replaces V
		// and nothing else. A write W acknowledged since, above V, is
		// above V.1 too: a node holding W refuses V.1, and a reader
		// that served V and then W never sees V.1 above W. The clock
		// reads V.1 as V, so the next write of the key is above it.
		// The version's name is one clients never see: the bucket is
		// unversioned, so its id is "null" under either name.
		s.log.Info("objects: commit missed its quorum for nodes that failed; finishing the write as its re-code",
			"bucket", in.Bucket, "key", in.Key, "version", cf.version, "failed", cf.nodes)
		in.avoid = append(slices.Clone(in.avoid), cf.nodes...)
		in.recode, in.restage = client.RecodeVersion(cf.version), false
		s.metrics.retried(retryRecode)
		rinfo, rerr := fenced(ctx, s, run)
		switch {
		case rerr == nil:
			info, err = rinfo, nil
		case errors.Is(rerr, ErrSuperseded):
			err = rerr
		default:
			s.log.Info("objects: re-code of a write that missed its commit quorum failed", "bucket", in.Bucket,
				"key", in.Key, "version", in.recode, "err", rerr)
		}
	}
	return info, err
}

// commitFailedErr marks the error of a write whose commit missed its
// quorum only because nodes failed (none refused it for a newer version
// or a newer map). nodes are the placed nodes that do not hold it: those
// that failed its stage or commit, or were down. unversioned says the
// bucket was unversioned both in the bucket info the write used and in
// its stage answers.
type commitFailedErr struct {
	error
	version     string
	nodes       []string
	unversioned bool
}

func (e commitFailedErr) Unwrap() error { return e.error }

// stageFailedErr marks the error of a write whose stage missed its
// quorum because nodes failed (not refusals, not the body): nothing of it
// was committed anywhere. nodes are the ones that failed.
type stageFailedErr struct {
	error
	nodes []string
}

func (e stageFailedErr) Unwrap() error { return e.error }

// bodyPool recycles the buffers PutObject keeps bodies in, by
// power-of-two size class: without it every such PUT (a 1 MiB one
// at 4+2, say) left a buffer of its size for the collector, the largest
// share of the gateway's allocations in profiles of 1 MiB PUTs.
type bodyPool [bodyClasses]sync.Pool

const (
	bodyClasses  = 31 // class c holds buffers of capacity 1<<c
	minBodyClass = 12 // 4 KiB: smaller bodies take a 4 KiB buffer
)

func bodyClass(n int) int {
	if n <= 1<<minBodyClass {
		return minBodyClass
	}
	return bits.Len(uint(n - 1))
}

// get returns a buffer of length n; n is at most MaxKeptBody.
func (p *bodyPool) get(n int) *[]byte {
	c := bodyClass(n)
	if c >= bodyClasses {
		b := make([]byte, n)
		return &b
	}
	if b, ok := p[c].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<c)
	return &b
}

func (p *bodyPool) put(b *[]byte) {
	if c := bodyClass(cap(*b)); c < bodyClasses && cap(*b) == 1<<c {
		p[c].Put(b)
	}
}

// errReader is a reader that fails with err, or ends if err is nil.
type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) {
	if r.err == nil {
		return 0, io.EOF
	}
	return 0, r.err
}

// putObject is PutObject under one map.
func (s *Store) putObject(ctx context.Context, in PutInput) (ObjectInfo, error) {
	const op = "objects.PutObject"
	if err := validName(op, in.Bucket, in.Key, true); err != nil {
		return ObjectInfo{}, err
	}
	if in.Body == nil || in.Size < -1 {
		return ObjectInfo{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: no body or negative size", ErrInvalidArgument))
	}
	if in.target == "" && isInternal(in.Key) {
		return ObjectInfo{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: key %q is in the internal namespace", ErrInvalidArgument, in.Key))
	}
	binfo, err := s.HeadBucket(ctx, in.Bucket)
	if err != nil {
		return ObjectInfo{}, kerr.E(op, err)
	}
	m := s.Map()
	placed := s.placed(m.PlaceKey(in.Bucket, in.Key))
	n := m.N()
	sh := s.writeShape(m, placed, in.avoid)
	if sh.down > n-sh.quorum && s.recheck(ctx, placed, sh.skip, in.avoid) {
		// Nodes marked down answered: a node back from an outage
		// stays marked down until its breaker's next probe, and the
		// write is not refused for it meanwhile. A write that would
		// only be raised asks nobody: for a node really cut off, the
		// probe would add its whole deadline to every write taken
		// during the outage, and the raised version is as durable.
		sh = s.writeShape(m, placed, in.avoid)
	}
	wq := sh.quorum
	if sh.down > n-wq {
		s.metrics.quorumFailed()
		return ObjectInfo{}, kerr.E(op, kerr.Unavailable, quorumErr("%d of %d nodes for %s/%s are down, need %d", sh.down, n, in.Bucket, in.Key, wq))
	}
	stage := in.recode
	if stage == "" {
		stage = s.newVersion()
	}
	w, err := s.stageAll(ctx, m, placed, sh, in, stage)
	if err != nil {
		if errors.Is(err, ErrQuorum) {
			s.metrics.quorumFailed()
		}
		return ObjectInfo{}, kerr.E(op, err)
	}
	// The version is named under the key's lock, so that it is above
	// the write of the key that committed before through this gateway,
	// which has then reached the nodes (keylock.go).
	unlock := s.commits.lock(in.Bucket, in.Key)
	// The stage answers fed the clock the newest version each node knows
	// of: the commit goes above them all, keeping the stage version when
	// nothing newer showed up, so the usual write binds no shard anew.
	version := s.clock.after(stage)
	if in.recode != "" {
		// A re-code keeps its name whatever the nodes hold: renamed,
		// it would be a new write above any acknowledged since.
		version = in.recode
		if binfo.Versioning != "" || w.bucket.Versioning != "" {
			// Versioning was turned on since: V.1 would be a second
			// version, visible beside V.
			unlock()
			s.abort(ctx, placed, in.Bucket, in.Key, version)
			return ObjectInfo{}, kerr.E(op, kerr.Unavailable, quorumErr("versioning of bucket %s was turned on since the write began", in.Bucket))
		}
	}
	var sums map[string]string
	if in.Checksums != nil {
		sums = in.Checksums()
	}
	meta := client.ObjectMeta{
		Bucket:      in.Bucket,
		Key:         in.Key,
		Target:      in.target,
		Checksums:   sums,
		Version:     version,
		Staged:      stage,
		Size:        w.enc.Size,
		ETag:        w.etag,
		ContentType: in.ContentType,
		UserMeta:    in.UserMeta,
		Headers:     in.Headers,
		Tagging:     in.Tagging,
		Modified:    s.now().UTC(),
		Data:        sh.data,
		Parity:      sh.parity,
		BlockSize:   m.BlockSize,
		Format:      codec.FormatVersion,
		Roots:       make([]string, n),
		Nodes:       make([]string, n),
	}
	if wq < m.WriteQuorum {
		meta.Quorum = wq
	}
	targets := make([]member, n)
	for i := range n {
		meta.Roots[i] = w.enc.Roots[i].String()
		if w.staged[i] {
			meta.Nodes[i] = placed[i].Node.ID
			targets[i] = placed[i]
		}
	}
	if version == stage {
		meta.Staged = ""
	}
	if in.target == "" {
		setVersioning(&meta, newerState(binfo, w.bucket))
	}
	meta, holders, refused := s.commitAndHint(ctx, placed, targets, meta, wq)
	if len(holders) < wq && refused.newer == 0 && refused.staleMap == 0 {
		// Only nodes that staged their shard can take the commit.
		holders = s.commitMissed(ctx, targets, holders, meta, wq)
	}
	unlock()
	if len(holders) < wq {
		s.metrics.quorumFailed()
		err := shortfallErr(len(holders), refused, wq, "committed %d of %d shards, need %d", len(holders), n, wq)
		switch {
		case refused.newer == 0 && refused.staleMap == 0:
			cf := commitFailedErr{error: err, version: meta.Version, unversioned: binfo.Versioning == "" && w.bucket.Versioning == ""}
			for _, p := range placed {
				if !slices.ContainsFunc(holders, func(h member) bool { return h.Node.ID == p.Node.ID }) {
					cf.nodes = append(cf.nodes, p.Node.ID)
				}
			}
			err = cf
		case refused.staleMap == 0 && !refused.mayApply:
			// Nodes refused the commit as holding a newer version and
			// the others failed it with nothing sent, or were down:
			// no node holds the write committed, so it may be written
			// again, under a new version above the refusals, as one
			// whose stage they failed (putKept).
			var failed []string
			for _, p := range placed {
				if !slices.Contains(refused.newerNodes, p.Node.ID) {
					failed = append(failed, p.Node.ID)
				}
			}
			if len(failed) > 0 {
				err = stageFailedErr{err, failed}
			}
		}
		return ObjectInfo{}, kerr.E(op, kerr.Unavailable, err)
	}
	s.metrics.wrote(meta.Data, m.DataShards)
	info := infoOf(meta)
	info.Raised = meta.Data < m.DataShards
	return info, nil
}

// staging is the outcome of the first phase of a write.
type staging struct {
	enc    codec.Encoded
	etag   string
	staged []bool // by shard: the node holds it staged, with the right root
	// bucket is the newest versioning state the stage answers carried.
	bucket client.BucketState
}

// shape is the erasure code of a new version, the shards it skips and
// the number of commits that acknowledge it.
type shape struct {
	data, parity int
	skip         []bool // by shard: no node, or its node is known to be down
	down         int    // shards skipped
	quorum       int
}

// writeShape decides how a new version is coded. Shards whose node is
// known to be down or not yet back (its breaker is open or half-open) or
// missing are not sent. If k are, k <= p, the version trades data shards
// for parity, d' = d-k and p' = p+k, still n shards in all, as MinIO
// does: the n-k shards written then survive p further failures, where
// plain d+p would survive only p-k. Its write quorum is then
// placement.Map.RaisedQuorum(k), max(n/2+1, WriteQuorum-k): still a
// majority, so the order of acknowledged writes holds (docs/ordering.md),
// and at least as many shards beyond d' as WriteQuorum leaves beyond d;
// with 4+2 and two nodes down, 2+4 on the four up nodes, all of which
// must commit. Readers take d, p and the quorum from each version's
// metadata. The raise is skipped if it would leave no data shard, exceed
// the codec's parity limit, or need more commits than there are nodes up;
// the write then needs WriteQuorum of the n shards as before.
func (s *Store) writeShape(m *placement.Map, placed []member, avoid []string) shape {
	n := m.N()
	sh := shape{data: m.DataShards, parity: m.ParityShards, skip: make([]bool, n), quorum: m.WriteQuorum}
	for i := range n {
		if i >= len(placed) || !s.available(placed[i].Node.ID) || slices.Contains(avoid, placed[i].Node.ID) {
			sh.skip[i] = true
			sh.down++
		}
	}
	k := sh.down
	if k == 0 || k > m.ParityShards || sh.data-k < codec.MinData || sh.parity+k > codec.MaxParity {
		return sh
	}
	if q := m.RaisedQuorum(k); q <= n-k {
		sh.data, sh.parity, sh.quorum = sh.data-k, sh.parity+k, q
	}
	return sh
}

// stageAll streams the body, encoded as sh says, to the placed nodes as
// staged shards of version. It fails, after aborting every stage, if the
// body is bad or fewer than sh.quorum shards were staged; otherwise it
// aborts only the stages it dropped.
func (s *Store) stageAll(ctx context.Context, m *placement.Map, placed []member, sh shape, in PutInput, version string) (staging, error) {
	const op = "objects.stage"
	n, wq := m.N(), sh.quorum
	cd, err := s.codec(sh.data, sh.parity, m.BlockSize)
	if err != nil {
		return staging{}, kerr.E(op, kerr.Internal, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var lost atomic.Int32
	streams := make([]*stageStream, n)
	writers := make([]io.Writer, n)
	for i := range n {
		if sh.skip[i] {
			lost.Add(1)
			writers[i] = errWriter{fmt.Errorf("shard %d: %w", i, errNodeDown)}
			continue
		}
		streams[i] = s.startStage(ctx, placed[i], in.Bucket, in.Key, version, i, m.BlockSize, &lost)
		writers[i] = streams[i]
	}
	body := &bodyReader{ctx: ctx, r: in.Body, size: in.Size, lost: &lost, maxLost: int32(n - wq)}
	sum := md5.New()
	enc, encErr := cd.Encode(io.TeeReader(body, sum), writers)
	if encErr != nil {
		cause := body.err
		if cause == nil {
			cause = encErr
		}
		for _, st := range streams {
			if st != nil {
				st.fail(cause)
			}
		}
	}
	for _, st := range streams {
		if st != nil {
			st.closeWrites()
		}
	}
	w := staging{enc: enc, etag: hex.EncodeToString(sum.Sum(nil)), staged: make([]bool, n)}
	nstaged := 0
	// failed counts the shards lost for their node's sake (skipped ones
	// too): not refused for a newer map, nor cut off by this write once
	// its quorum was lost, when they might have staged.
	failed := sh.down
	var failedIDs []string // the nodes among them that were sent a stream
	var refused refusals
	var dropped []member
	for i, st := range streams {
		if st == nil {
			continue
		}
		ref, err := st.wait()
		cut := errors.Is(st.failure(), errQuorumLost) && cutOff(err)
		switch {
		case errors.Is(err, client.ErrStaleMap):
			refused.staleMap++
		case err != nil && !cut:
			failed++
			failedIDs = append(failedIDs, st.m.Node.ID)
		}
		switch {
		case encErr != nil:
		case err != nil:
			// A shard not staged is redundancy the version will lack
			// until repaired: worth a line, unlike a failed read.
			s.log.Info("objects: stage failed", "node", st.m.Node.ID, "bucket", in.Bucket, "key", in.Key,
				"version", version, "shard", i, "err", err)
		case ref.Root != "" && ref.Root != enc.Roots[i].String():
			s.log.Warn("objects: node staged a different shard than was sent", "node", st.m.Node.ID,
				"shard", i, "root", ref.Root, "want", enc.Roots[i].String())
		default:
			s.clock.observe(ref.Newest)
			if ref.Bucket.Newer(w.bucket.Version) {
				w.bucket = *ref.Bucket
			}
			w.staged[i] = true
			nstaged++
			continue
		}
		dropped = append(dropped, st.m)
	}
	if encErr != nil {
		s.abort(ctx, placed, in.Bucket, in.Key, version)
		if errors.Is(body.err, errQuorumLost) {
			// The streams cut off when the quorum was lost might have
			// staged: only the failed ones and the refusals count.
			held := n - failed - refused.staleMap
			err := shortfallErr(held, refused, wq, "more than %d of %d shard streams failed", n-wq, n)
			return staging{}, kerr.E(op, kerr.Unavailable, stageFailed(err, failedIDs))
		}
		return staging{}, putBodyErr(op, body.err, encErr, n, wq)
	}
	if nstaged < wq {
		s.abort(ctx, placed, in.Bucket, in.Key, version)
		err := shortfallErr(nstaged, refused, wq, "staged %d of %d shards, need %d", nstaged, n, wq)
		return staging{}, kerr.E(op, kerr.Unavailable, stageFailed(err, failedIDs))
	}
	if len(failedIDs) > 0 && in.restage {
		// Nodes failed their streams after the write began. Committed
		// now, the version would lack their shards until repaired and
		// survive fewer than p further failures; a chaos run read such
		// an acknowledged write back as unreadable with two more nodes
		// down. A kept body is staged again instead, with those nodes
		// taken for down and parity raised over the others (PutObject).
		s.abort(ctx, placed, in.Bucket, in.Key, version)
		err := quorumErr("staged %d of %d shards; %d nodes failed their stage", nstaged, n, len(failedIDs))
		return staging{}, kerr.E(op, kerr.Unavailable, stageFailedErr{err, failedIDs})
	}
	// What a dropped node may have kept must never be rolled forward.
	s.abort(ctx, dropped, in.Bucket, in.Key, version)
	return w, nil
}

// stageFailed marks err, a stage's shortfall, as caused by the nodes
// that failed, if any did and the shortfall is not a lost race or a map
// change (whose nodes are up).
func stageFailed(err error, failed []string) error {
	if len(failed) == 0 || errors.Is(err, ErrSuperseded) || errors.Is(err, ErrMapChanged) {
		return err
	}
	return stageFailedErr{err, failed}
}

// cutOff reports whether err, a stage's answer, is what cutting its
// stream off causes (its ctx cancelled, its body closed), rather than the
// node's own failure.
func cutOff(err error) bool {
	return errors.Is(err, errQuorumLost) || errors.Is(err, context.Canceled) || errors.Is(err, io.ErrClosedPipe)
}

// putBodyErr classifies a failed Encode: the body reader's own verdict if it
// has one, else the encoder's error.
func putBodyErr(op string, bodyErr, encErr error, n, wq int) error {
	err := bodyErr
	if err == nil {
		err = encErr
	}
	switch {
	case errors.Is(err, errQuorumLost):
		return kerr.E(op, kerr.Unavailable, quorumErr("more than %d of %d shard streams failed", n-wq, n))
	case errors.Is(err, ErrIncompleteBody), errors.Is(err, ErrInvalidArgument):
		return kerr.E(op, kerr.Invalid, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.E(op, kerr.Transient, err)
	case bodyErr != nil:
		// The client's body failed (connection reset and the like).
		return kerr.E(op, kerr.Transient, err)
	}
	return kerr.E(op, kerr.Internal, err)
}

// placed returns the clients for a placement, keeping shard order.
func (s *Store) placed(nodes []placement.Node) []member {
	out := make([]member, len(nodes))
	for i, n := range nodes {
		out[i] = s.member(n)
	}
	return out
}

// abort discards a version's staged shards on every node, in the
// background: they are invisible anyway, and nodes sweep what this misses.
func (s *Store) abort(ctx context.Context, ms []member, bucket, key, version string) {
	if len(ms) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	s.bg.Go(func() {
		each(len(ms), func(i int) {
			cctx, cancel := s.callCtx(ctx)
			defer cancel()
			if err := ms[i].Client.Abort(cctx, bucket, key, version); err != nil {
				s.log.Debug("objects: abort failed", "node", ms[i].Node.ID, "err", err)
			}
		})
	})
}

// bodyReader enforces the declared size of a PUT body, stops reading once
// the write cannot reach its quorum, and remembers why it failed.
type bodyReader struct {
	ctx     context.Context
	r       io.Reader
	size    int64 // -1: unknown
	n       int64
	lost    *atomic.Int32
	maxLost int32
	err     error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if err := b.ctx.Err(); err != nil {
		return b.fail(err)
	}
	if b.lost.Load() > b.maxLost {
		return b.fail(errQuorumLost)
	}
	if b.size >= 0 {
		rem := b.size - b.n
		if rem == 0 {
			var one [1]byte
			k, err := io.ReadFull(b.r, one[:])
			switch {
			case k > 0:
				return b.fail(fmt.Errorf("%w: body longer than the declared %d bytes", ErrInvalidArgument, b.size))
			case err == io.EOF:
				return 0, io.EOF
			}
			return b.fail(err)
		}
		if int64(len(p)) > rem {
			p = p[:rem]
		}
	}
	k, err := b.r.Read(p)
	b.n += int64(k)
	switch {
	case err == io.EOF && b.size >= 0 && b.n < b.size:
		return k, b.setErr(fmt.Errorf("%w: got %d of %d bytes", ErrIncompleteBody, b.n, b.size))
	case err != nil && err != io.EOF:
		return k, b.setErr(err)
	}
	return k, err
}

func (b *bodyReader) fail(err error) (int, error) { return 0, b.setErr(err) }

func (b *bodyReader) setErr(err error) error {
	b.err = err
	return err
}

// errWriter fails every write; it stands in for a shard without a node.
type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// stageStream carries one shard to one node as a staged write. Writes are
// copied into a small queue that a pump goroutine feeds into the Stage
// call's body, so a slow node delays the encoder only once its queue is
// full, and a node that stops making progress for the stall timeout is cut
// off instead of holding the whole write.
type stageStream struct {
	s      *Store
	m      member
	shard  int
	stall  time.Duration
	ctx    context.Context
	cancel context.CancelCauseFunc
	pr     *io.PipeReader
	pw     *io.PipeWriter
	frames chan *[]byte // closed by closeWrites after the last Write

	frameSize int     // digest + block
	cur       *[]byte // buffer being filled by Write
	lost      *atomic.Int32

	failed   chan struct{} // closed by fail
	failOnce sync.Once
	err      error // why the stream failed; read after <-failed

	mu        sync.Mutex
	timer     *time.Timer // fires fail(errStalled)
	stageDone bool        // the Stage call returned; never re-arm the timer

	pumpDone chan struct{}
	bodyOK   bool // the whole body reached the Stage call; read after <-pumpDone

	resDone chan struct{}
	ref     client.StagedRef
	resErr  error // read after <-resDone
}

func (s *Store) startStage(ctx context.Context, m member, bucket, key, version string, shard, block int, lost *atomic.Int32) *stageStream {
	st := &stageStream{
		s:         s,
		m:         m,
		shard:     shard,
		stall:     s.stallTimeout,
		frames:    make(chan *[]byte, stageQueue),
		frameSize: codec.DigestSize + block,
		lost:      lost,
		failed:    make(chan struct{}),
		pumpDone:  make(chan struct{}),
		resDone:   make(chan struct{}),
	}
	st.ctx, st.cancel = context.WithCancelCause(ctx)
	st.pr, st.pw = io.Pipe()
	st.timer = time.AfterFunc(time.Duration(math.MaxInt64), func() {
		st.fail(fmt.Errorf("%w: no progress for %v", errStalled, st.stall))
	})
	st.timer.Stop()
	go st.pump()
	if down := s.downChan(m.Node.ID); down != nil {
		go func() {
			select {
			case <-down:
				st.fail(errNodeDown)
			case <-st.failed:
			case <-st.resDone:
			}
		}()
	}
	go func() {
		defer close(st.resDone)
		ref, err := m.Client.Stage(st.ctx, bucket, key, version, shard, block, st.pr)
		st.mu.Lock()
		st.stageDone = true
		st.timer.Stop()
		st.mu.Unlock()
		if err != nil {
			st.fail(err)
		} else {
			// Unblocks the pump if the node stopped reading early; the
			// pump then marks the body as not delivered.
			st.pr.CloseWithError(errEarlyEnd)
		}
		st.ref, st.resErr = ref, err
	}()
	return st
}

// Write copies p into the stream's queue, a frame-sized buffer at a time
// (Encode writes a frame as its digest then its block). It blocks while
// the queue is full and fails once the stream has.
func (st *stageStream) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		select {
		case <-st.failed:
			return n, st.err
		default:
		}
		if st.cur == nil {
			st.cur = st.s.getBuf(st.frameSize)
			*st.cur = (*st.cur)[:0:st.frameSize]
		}
		b := *st.cur
		k := min(len(p), cap(b)-len(b))
		*st.cur = append(b, p[:k]...)
		p, n = p[k:], n+k
		if len(*st.cur) == st.frameSize {
			if err := st.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flush queues the buffer being filled.
func (st *stageStream) flush() error {
	buf := st.cur
	st.cur = nil
	select {
	case st.frames <- buf:
		return nil
	case <-st.failed:
		st.s.putBuf(buf)
		return st.err
	}
}

// closeWrites queues what is left and ends the body: the node sees EOF
// unless the stream failed.
func (st *stageStream) closeWrites() {
	if st.cur != nil {
		select {
		case <-st.failed:
		default:
			if len(*st.cur) > 0 {
				st.flush()
			}
		}
		if st.cur != nil {
			st.s.putBuf(st.cur)
			st.cur = nil
		}
	}
	close(st.frames)
}

// pump moves queued writes into the Stage call's body. The stall timer runs
// only while a write waits on the node (and while the node owes its answer
// after the body), never while the encoder is busy or the client is slow.
func (st *stageStream) pump() {
	defer close(st.pumpDone)
	ok := true
	for buf := range st.frames {
		if ok {
			st.arm()
			_, err := st.pw.Write(*buf)
			st.timer.Stop()
			if err != nil {
				st.fail(err)
				ok = false
			} else {
				st.s.progress(st.m.Node.ID)
			}
		}
		st.s.putBuf(buf)
	}
	if !ok {
		return
	}
	select {
	case <-st.failed:
		return
	default:
	}
	st.pw.Close()
	st.bodyOK = true
	st.arm()
}

func (st *stageStream) arm() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.stageDone {
		st.timer.Reset(st.stall)
	}
}

// fail cuts the stream off: the Stage call is cancelled, the pump and any
// blocked Write return err.
func (st *stageStream) fail(err error) {
	st.failOnce.Do(func() {
		st.err = kerr.E("objects.stage", fmt.Errorf("shard %d on node %s: %w", st.shard, st.m.Node.ID, err))
		st.lost.Add(1)
		close(st.failed)
		st.cancel(err)
		st.pr.CloseWithError(err)
		st.pw.CloseWithError(err)
	})
}

// failure is why the stream failed, or nil if it has not.
func (st *stageStream) failure() error {
	select {
	case <-st.failed:
		return st.err
	default:
		return nil
	}
}

// wait returns the staged shard once the stream is done.
// REQUIRES: closeWrites called.
func (st *stageStream) wait() (client.StagedRef, error) {
	<-st.pumpDone
	<-st.resDone
	switch {
	case st.resErr != nil:
		return st.ref, st.resErr
	case !st.bodyOK:
		return st.ref, st.err
	}
	return st.ref, nil
}

func (s *Store) getBuf(n int) *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

func (s *Store) putBuf(b *[]byte) { s.bufs.Put(b) }

// infoOf describes a version.
func infoOf(m client.ObjectMeta) ObjectInfo {
	return ObjectInfo{
		Bucket:      m.Bucket,
		Key:         m.Key,
		Version:     m.Version,
		Size:        m.Size,
		ETag:        m.ETag,
		ContentType: m.ContentType,
		UserMeta:    m.UserMeta,
		Headers:     m.Headers,
		Tagging:     m.Tagging,
		Modified:    m.Modified,
		Checksums:   m.Checksums,
		PartSizes:   partSizes(m.Parts),
		VersionID:   versionID(m),
		Versioned:   m.Versioning != "",
		// A marker is described only where it is listed or deleted.
		DeleteMarker: m.Deleted,
	}
}
