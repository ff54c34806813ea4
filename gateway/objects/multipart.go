package objects

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/fanout"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
	"github.com/kintsugi-store/kintsugi/internal/nodeaccess"
	"github.com/kintsugi-store/kintsugi/placement"
	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// Multipart limits, as in S3.
const (
	MinPartSize = 5 << 20 // every part but the last; ErrEntityTooSmall below
	MaxPartNum  = 10000   // part numbers are 1..MaxPartNum
	// MaxListParts is the largest page ListParts and ListUploads return.
	MaxListParts = 1000
)

// UploadInput starts a multipart upload.
type UploadInput struct {
	Bucket      string
	Key         string
	ContentType string
	UserMeta    map[string]string
	Headers     map[string]string
	Tagging     string
}

// UploadInfo describes a multipart upload in progress.
type UploadInfo struct {
	Bucket    string
	Key       string
	UploadID  string
	Initiated time.Time
}

// PartInput is one part of a multipart upload. Size, Body and Checksums
// are as in PutInput.
type PartInput struct {
	Bucket    string
	Key       string
	UploadID  string
	Number    int // 1..MaxPartNum
	Size      int64
	Body      io.Reader
	Checksums func() map[string]string
}

// PartInfo describes an uploaded part.
type PartInfo struct {
	Number    int
	Size      int64
	ETag      string // hex MD5 of the part, no quotes
	Modified  time.Time
	Checksums map[string]string
}

// CompletePart is a part as the client lists it to complete an upload.
type CompletePart struct {
	Number int
	ETag   string // hex MD5, no quotes
	// Checksums, if any, must equal the ones stored with the part.
	Checksums map[string]string
}

// CompleteInput completes a multipart upload with Parts, in ascending
// order of part number.
type CompleteInput struct {
	Bucket   string
	Key      string
	UploadID string
	Parts    []CompletePart
}

// PartListOptions selects a page of an upload's parts.
type PartListOptions struct {
	After    int // list parts numbered above this
	MaxParts int // 0 means MaxListParts; capped at MaxListParts
}

// PartList is one page of an upload's parts, in part number order.
type PartList struct {
	Parts     []PartInfo
	Truncated bool
	NextAfter int // when Truncated: After for the next page
}

// UploadListOptions selects a page of a bucket's uploads in progress.
type UploadListOptions struct {
	Prefix    string
	Delimiter string
	// KeyMarker and UploadIDMarker resume a listing: uploads of keys after
	// KeyMarker, and of KeyMarker itself with an id after UploadIDMarker.
	KeyMarker      string
	UploadIDMarker string
	MaxUploads     int // 0 means MaxListParts; capped at MaxListParts
}

// UploadList is one page of uploads in progress, ordered by key and then
// by upload id, which is initiation order.
type UploadList struct {
	Uploads            []UploadInfo
	CommonPrefixes     []string
	Truncated          bool
	NextKeyMarker      string
	NextUploadIDMarker string
}

// maxUploadScan bounds how many upload records ListUploads holds to sort
// them; a bucket with more uploads in progress cannot be listed.
const maxUploadScan = 100000

// partConcurrency bounds the node calls made at once for the parts of
// one upload.
const partConcurrency = 16

// CreateUpload starts a multipart upload of in.Key and returns its id. The
// upload is recorded on the nodes like a small object, so that any gateway
// can continue it. Errors: ErrNoSuchBucket, ErrInvalidArgument, ErrQuorum.
func (s *Store) CreateUpload(ctx context.Context, in UploadInput) (UploadInfo, error) {
	const op = "objects.CreateUpload"
	ctx, done := s.fence(ctx)
	defer done()
	if err := s.checkClientKey(ctx, op, in.Bucket, in.Key); err != nil {
		return UploadInfo{}, err
	}
	id := s.newVersion()
	info, err := s.PutObject(ctx, PutInput{
		Bucket:      in.Bucket,
		Key:         uploadKey(id),
		Body:        strings.NewReader(""),
		ContentType: in.ContentType,
		UserMeta:    in.UserMeta,
		Headers:     in.Headers,
		Tagging:     in.Tagging,
		target:      in.Key,
	})
	if err != nil {
		return UploadInfo{}, kerr.E(op, err)
	}
	return UploadInfo{Bucket: in.Bucket, Key: in.Key, UploadID: id, Initiated: info.Modified}, nil
}

// PutPart stores one part of an upload as an object of its own under an
// internal key: erasure-coded, checksummed and committed like any object.
// Uploading a part number again replaces the part; the replaced one is
// freed when the upload is completed or aborted.
//
// Errors: ErrNoSuchUpload (kerr.NotExist), ErrInvalidArgument, and those of
// PutObject.
func (s *Store) PutPart(ctx context.Context, in PartInput) (PartInfo, error) {
	const op = "objects.PutPart"
	if err := s.checkClientKey(ctx, op, in.Bucket, in.Key); err != nil {
		return PartInfo{}, err
	}
	if in.Number < 1 || in.Number > MaxPartNum {
		return PartInfo{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: part number %d not in 1..%d", ErrInvalidArgument, in.Number, MaxPartNum))
	}
	// The part is written outside this fence, by PutObject under its
	// own: a part's body is kept like a PUT's, so that a part whose
	// stage loses nodes, or that meets a newer map, is written again
	// rather than refused.
	err := fenced0(ctx, s, func(ctx context.Context) error {
		_, err := s.upload(ctx, in.Bucket, in.Key, in.UploadID)
		return err
	})
	if err != nil {
		return PartInfo{}, kerr.E(op, err)
	}
	// Every attempt gets a key of its own, so that a part uploaded
	// again, or late, never replaces data a completed object refers to.
	key := partKey(in.UploadID, in.Number, s.newVersion())
	info, err := s.PutObject(ctx, PutInput{
		Bucket:    in.Bucket,
		Key:       key,
		Size:      in.Size,
		Body:      in.Body,
		Checksums: in.Checksums,
		target:    in.Key,
	})
	if err != nil {
		return PartInfo{}, kerr.E(op, err)
	}
	return PartInfo{Number: in.Number, Size: info.Size, ETag: info.ETag, Modified: info.Modified, Checksums: info.Checksums}, nil
}

// CompleteUpload makes the listed parts the new version of the upload's
// key by committing a manifest that names them, on the key's nodes, under
// the write quorum. No data is copied. Parts uploaded but not listed, the
// upload record and the parts of a multipart object it replaces are freed
// afterwards.
//
// Errors: ErrNoSuchUpload; ErrInvalidPartOrder; ErrInvalidPart (a listed
// part that was not uploaded, or whose ETag or checksum differs);
// ErrEntityTooSmall (a part but the last below MinPartSize); ErrQuorum.
func (s *Store) CompleteUpload(ctx context.Context, in CompleteInput) (ObjectInfo, error) {
	return fenced(ctx, s, func(ctx context.Context) (ObjectInfo, error) { return s.completeUpload(ctx, in) })
}

// completeUpload is CompleteUpload under one map.
func (s *Store) completeUpload(ctx context.Context, in CompleteInput) (ObjectInfo, error) {
	const op = "objects.CompleteUpload"
	if err := s.checkClientKey(ctx, op, in.Bucket, in.Key); err != nil {
		return ObjectInfo{}, err
	}
	if len(in.Parts) == 0 || len(in.Parts) > MaxPartNum {
		return ObjectInfo{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: %d parts", ErrInvalidArgument, len(in.Parts)))
	}
	up, err := s.upload(ctx, in.Bucket, in.Key, in.UploadID)
	if errors.Is(err, ErrNoSuchUpload) {
		if info, ok := s.completedAlready(ctx, in); ok {
			return info, nil
		}
	}
	if err != nil {
		return ObjectInfo{}, kerr.E(op, err)
	}
	for i, p := range in.Parts {
		if p.Number < 1 || p.Number > MaxPartNum {
			return ObjectInfo{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: part number %d", ErrInvalidPart, p.Number))
		}
		if i > 0 && p.Number <= in.Parts[i-1].Number {
			return ObjectInfo{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: part %d after part %d", ErrInvalidPartOrder, p.Number, in.Parts[i-1].Number))
		}
	}
	latest, all, err := s.uploadParts(ctx, in.Bucket, in.UploadID)
	if err != nil {
		return ObjectInfo{}, kerr.E(op, err)
	}
	refs := make([]client.PartRef, len(in.Parts))
	var size int64
	for i, p := range in.Parts {
		ref, ok := latest[p.Number]
		switch {
		case !ok:
			return ObjectInfo{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: part %d was not uploaded", ErrInvalidPart, p.Number))
		case !strings.EqualFold(p.ETag, ref.ETag):
			return ObjectInfo{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: part %d has ETag %s, not %s", ErrInvalidPart, p.Number, ref.ETag, p.ETag))
		}
		for alg, v := range p.Checksums {
			if have, ok := ref.Checksums[alg]; ok && have != v {
				return ObjectInfo{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: part %d has %s %s, not %s", ErrInvalidPart, p.Number, alg, have, v))
			}
		}
		refs[i] = ref.PartRef
		size += ref.Size
	}
	for i, r := range refs[:len(refs)-1] {
		if r.Size < MinPartSize {
			return ObjectInfo{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: part %d is %d bytes", ErrEntityTooSmall, in.Parts[i].Number, r.Size))
		}
	}
	if err := s.checkPartsReadable(ctx, in.Bucket, refs); err != nil {
		return ObjectInfo{}, kerr.E(op, err)
	}
	// What the key holds now: if it is a multipart object, its parts are
	// freed once the new version is in.
	var replaced []client.PartRef
	if old, err := s.resolve(ctx, in.Bucket, in.Key); err == nil {
		replaced = old.meta.Parts
	}

	// A manifest stages nothing: the bucket's versioning state is read
	// from a majority of the nodes (docs/versioning.md).
	state, err := s.freshState(ctx, in.Bucket)
	if err != nil {
		return ObjectInfo{}, kerr.E(op, err)
	}
	if state.Versioning != "" {
		// The version replaced stays as a noncurrent one, parts and all.
		replaced = nil
	}
	m := s.Map()
	meta := client.ObjectMeta{
		Bucket:      in.Bucket,
		Key:         in.Key,
		Version:     s.newVersion(),
		Size:        size,
		ETag:        multipartETag(refs),
		ContentType: up.ContentType,
		UserMeta:    up.UserMeta,
		Headers:     up.Headers,
		Tagging:     up.Tagging,
		Modified:    s.now().UTC(),
		Data:        m.DataShards,
		Parity:      m.ParityShards,
		BlockSize:   m.BlockSize,
		Format:      codec.FormatVersion,
		Checksums:   compositeChecksums(refs),
		Parts:       refs,
	}
	setVersioning(&meta, state)
	meta, err = s.commitShardless(ctx, m, m.PlaceKey(in.Bucket, in.Key), meta)
	if err != nil {
		return ObjectInfo{}, kerr.E(op, err)
	}

	// Completed. The rest is cleanup; what fails here is freed by
	// SweepUploads.
	if _, err := s.deleteKey(ctx, in.Bucket, uploadKey(in.UploadID)); err != nil {
		s.log.Warn("objects: could not remove a completed upload's record", "bucket", in.Bucket, "upload", in.UploadID, "err", err)
	}
	keep := make(map[string]bool, len(refs))
	for _, r := range refs {
		keep[r.Key] = true
	}
	// A concurrent completion of the same upload with other parts may
	// have won; what the live version names is never garbage.
	live, err := s.referencedParts(ctx, in.Bucket, in.Key, in.UploadID)
	if err != nil {
		s.log.Warn("objects: cannot tell which parts are live; leaving them to the sweep", "bucket", in.Bucket, "upload", in.UploadID, "err", err)
		return infoOf(meta), nil
	}
	for k := range live {
		keep[k] = true
	}
	var garbage []client.PartRef
	for _, r := range append(all, replaced...) {
		if !keep[r.Key] {
			garbage = append(garbage, r)
		}
	}
	s.freeParts(ctx, in.Bucket, garbage)
	return infoOf(meta), nil
}

// completedAlready reports whether in repeats the completion that made the
// key's current version: its manifest's parts all belong to in.UploadID
// and are the listed ones, by number and ETag. A client whose completion
// answer was lost retries, and S3 answers the retry as it answered the
// first; the upload record is gone by then, but the manifest names the
// upload in its part keys. Once the key holds another version, the
// repeat is NoSuchUpload again.
func (s *Store) completedAlready(ctx context.Context, in CompleteInput) (ObjectInfo, bool) {
	r, err := s.resolve(ctx, in.Bucket, in.Key)
	if err != nil || r.meta.Deleted || len(r.meta.Parts) != len(in.Parts) {
		return ObjectInfo{}, false
	}
	for i, ref := range r.meta.Parts {
		id, _, ok := parseUploadKey(ref.Key)
		p := in.Parts[i]
		if !ok || id != in.UploadID || ref.Number != p.Number || !strings.EqualFold(strings.Trim(p.ETag, `"`), ref.ETag) {
			return ObjectInfo{}, false
		}
	}
	return infoOf(r.meta), true
}

// AbortUpload ends an upload and frees its parts. Errors: ErrNoSuchUpload,
// ErrQuorum.
func (s *Store) AbortUpload(ctx context.Context, bucket, key, uploadID string) error {
	return fenced0(ctx, s, func(ctx context.Context) error { return s.abortUploadOp(ctx, bucket, key, uploadID) })
}

// abortUploadOp is AbortUpload under one map.
func (s *Store) abortUploadOp(ctx context.Context, bucket, key, uploadID string) error {
	const op = "objects.AbortUpload"
	if err := s.checkClientKey(ctx, op, bucket, key); err != nil {
		return err
	}
	if _, err := s.upload(ctx, bucket, key, uploadID); err != nil {
		return kerr.E(op, err)
	}
	if err := s.abortUpload(ctx, bucket, key, uploadID); err != nil {
		return kerr.E(op, err)
	}
	return nil
}

// ListParts returns a page of the parts uploaded so far, the latest upload
// of each part number. Errors: ErrNoSuchUpload, ErrQuorum.
func (s *Store) ListParts(ctx context.Context, bucket, key, uploadID string, opts PartListOptions) (PartList, error) {
	return fenced(ctx, s, func(ctx context.Context) (PartList, error) { return s.listParts(ctx, bucket, key, uploadID, opts) })
}

// listParts is ListParts under one map.
func (s *Store) listParts(ctx context.Context, bucket, key, uploadID string, opts PartListOptions) (PartList, error) {
	const op = "objects.ListParts"
	if err := s.checkClientKey(ctx, op, bucket, key); err != nil {
		return PartList{}, err
	}
	if _, err := s.upload(ctx, bucket, key, uploadID); err != nil {
		return PartList{}, kerr.E(op, err)
	}
	max := opts.MaxParts
	if max <= 0 || max > MaxListParts {
		max = MaxListParts
	}
	latest, _, err := s.uploadParts(ctx, bucket, uploadID)
	if err != nil {
		return PartList{}, kerr.E(op, err)
	}
	var res PartList
	for _, n := range slices.Sorted(maps.Keys(latest)) {
		if n <= opts.After {
			continue
		}
		if len(res.Parts) == max {
			res.Truncated, res.NextAfter = true, res.Parts[len(res.Parts)-1].Number
			break
		}
		r := latest[n]
		res.Parts = append(res.Parts, PartInfo{Number: n, Size: r.Size, ETag: r.ETag, Checksums: r.Checksums, Modified: r.modified})
	}
	return res, nil
}

// ListUploads returns a page of the uploads in progress in bucket.
// Errors: ErrNoSuchBucket, ErrQuorum.
func (s *Store) ListUploads(ctx context.Context, bucket string, opts UploadListOptions) (UploadList, error) {
	return fenced(ctx, s, func(ctx context.Context) (UploadList, error) { return s.listUploads(ctx, bucket, opts) })
}

// listUploads is ListUploads under one map.
func (s *Store) listUploads(ctx context.Context, bucket string, opts UploadListOptions) (UploadList, error) {
	const op = "objects.ListUploads"
	if err := validName(op, bucket, "", false); err != nil {
		return UploadList{}, err
	}
	if err := s.checkBucket(ctx, bucket); err != nil {
		return UploadList{}, kerr.E(op, err)
	}
	max := opts.MaxUploads
	if max <= 0 || max > MaxListParts {
		max = MaxListParts
	}
	var ups []UploadInfo
	err := s.walkUploads(ctx, bucket, func(rec *client.Record) error {
		if !strings.HasPrefix(rec.Target, opts.Prefix) {
			return nil
		}
		if len(ups) == maxUploadScan {
			return kerr.E(op, kerr.TooLarge, fmt.Errorf("more than %d uploads in progress", maxUploadScan))
		}
		id, _, _ := parseUploadKey(rec.Key)
		ups = append(ups, UploadInfo{Bucket: bucket, Key: rec.Target, UploadID: id, Initiated: rec.Modified})
		return nil
	})
	if err != nil {
		return UploadList{}, kerr.E(op, err)
	}
	slices.SortFunc(ups, func(a, b UploadInfo) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.UploadID, b.UploadID)
	})
	var res UploadList
	var lastKey, lastID string
	for _, u := range ups {
		if u.Key < opts.KeyMarker || (u.Key == opts.KeyMarker && (opts.UploadIDMarker == "" || u.UploadID <= opts.UploadIDMarker)) {
			continue
		}
		cp, isPrefix := commonPrefix(u.Key, opts.Prefix, opts.Delimiter)
		if isPrefix && len(res.CommonPrefixes) > 0 && res.CommonPrefixes[len(res.CommonPrefixes)-1] == cp {
			continue
		}
		if len(res.Uploads)+len(res.CommonPrefixes) == max {
			res.Truncated, res.NextKeyMarker, res.NextUploadIDMarker = true, lastKey, lastID
			break
		}
		if isPrefix {
			res.CommonPrefixes = append(res.CommonPrefixes, cp)
			lastKey, lastID = cp, ""
			continue
		}
		res.Uploads = append(res.Uploads, u)
		lastKey, lastID = u.Key, u.UploadID
	}
	return res, nil
}

// checkClientKey validates a client bucket and key and checks that the
// bucket exists.
func (s *Store) checkClientKey(ctx context.Context, op, bucket, key string) error {
	if err := validName(op, bucket, key, true); err != nil {
		return err
	}
	if isInternal(key) {
		return kerr.E(op, kerr.Invalid, fmt.Errorf("%w: key %q is in the internal namespace", ErrInvalidArgument, key))
	}
	if err := s.checkBucket(ctx, bucket); err != nil {
		return kerr.E(op, err)
	}
	return nil
}

// upload returns the record of upload id of bucket/key. Ids are versions,
// so anything else is no upload at all.
func (s *Store) upload(ctx context.Context, bucket, key, id string) (client.ObjectMeta, error) {
	const op = "objects.upload"
	noSuch := kerr.E(op, kerr.NotExist, fmt.Errorf("%w: %s", ErrNoSuchUpload, id))
	if client.CheckVersion(id) != nil {
		return client.ObjectMeta{}, noSuch
	}
	r, err := s.resolve(ctx, bucket, uploadKey(id))
	switch {
	case kerr.Is(kerr.NotExist, err):
		return client.ObjectMeta{}, noSuch
	case err != nil:
		return client.ObjectMeta{}, kerr.E(op, err)
	case r.meta.Target != key:
		return client.ObjectMeta{}, noSuch
	}
	return r.meta, nil
}

// partRef is an uploaded part as found in a listing.
type partRef struct {
	client.PartRef
	modified time.Time
}

// uploadParts lists the parts stored for upload id: the latest attempt of
// each part number, and every attempt.
func (s *Store) uploadParts(ctx context.Context, bucket, id string) (map[int]partRef, []client.PartRef, error) {
	latest, all, err := s.uploadPartsOnce(ctx, bucket, id)
	if err != nil && kerr.Is(kerr.Unavailable, err) && s.anyOpen() {
		// As for ListObjects: nodes back from an outage whose breakers
		// have not caught up are worth one try through them.
		latest, all, err = s.uploadPartsOnce(nodeaccess.WithBypass(ctx), bucket, id)
	}
	return latest, all, err
}

// uploadPartsOnce is one attempt at uploadParts.
func (s *Store) uploadPartsOnce(ctx context.Context, bucket, id string) (map[int]partRef, []client.PartRef, error) {
	latest := make(map[int]partRef)
	var all []client.PartRef
	err := s.walk(ctx, bucket, uploadKey(id)+"/", "", func(rec *client.Record) (string, error) {
		_, n, ok := parseUploadKey(rec.Key)
		if !ok || n == 0 {
			return "", nil
		}
		ref := client.PartRef{Number: n, Key: rec.Key, Version: rec.Version, Size: rec.Size, ETag: rec.ETag, Checksums: rec.Checksums}
		all = append(all, ref)
		// Attempts of one part sort by their (time-ordered) names.
		latest[n] = partRef{PartRef: ref, modified: rec.Modified}
		return "", nil
	})
	return latest, all, err
}

// checkPartsReadable resolves every part as a reader would: a part listed
// from a commit that never reached its quorum must not become part of an
// object.
func (s *Store) checkPartsReadable(ctx context.Context, bucket string, refs []client.PartRef) error {
	errs := make([]error, len(refs))
	fanout.Each(len(refs), partConcurrency, func(i int) {
		r, err := s.resolve(ctx, bucket, refs[i].Key)
		switch {
		case kerr.Is(kerr.NotExist, err):
			errs[i] = kerr.E("objects.checkParts", kerr.Invalid, fmt.Errorf("%w: part %d is gone", ErrInvalidPart, refs[i].Number))
		case err != nil:
			errs[i] = err
		case r.meta.Version != refs[i].Version:
			errs[i] = kerr.E("objects.checkParts", kerr.Invalid, fmt.Errorf("%w: part %d changed", ErrInvalidPart, refs[i].Number))
		}
	})
	return errors.Join(errs...)
}

// commitShardless commits a version that has no shards (a manifest) on the
// placed nodes and needs wq of them to succeed, as commitWrite does (a
// node holding a newer version does not count), and returns the metadata
// committed. Nodes that missed it get hints, as for delete markers.
func (s *Store) commitShardless(ctx context.Context, m *placement.Map, placed []placement.Node, meta client.ObjectMeta) (client.ObjectMeta, error) {
	const op = "objects.commitShardless"
	ms := s.placed(placed)
	wq := s.shardlessQuorum(ctx, m, ms)
	if wq < m.WriteQuorum {
		meta.Quorum = wq
	}
	meta, to, refused := s.commitAndHint(ctx, ms, ms, meta, wq)
	if len(to) < wq {
		return meta, kerr.E(op, kerr.Unavailable, shortfallErr(len(to), refused, wq, "manifest committed on %d of %d nodes, need %d", len(to), len(ms), wq))
	}
	return meta, nil
}

// spreadManifest commits meta, a manifest some node committed, on the
// placed nodes that answered with something older: a gateway that died
// between commits is finished by the next reader. states is updated in
// place.
func (s *Store) spreadManifest(ctx context.Context, states []nodeState, placed []placement.Node, meta client.ObjectMeta) {
	isPlaced := make(map[string]bool, len(placed))
	for _, n := range placed {
		isPlaced[n.ID] = true
	}
	each(len(states), func(i int) {
		ns := &states[i]
		if ns.Err != nil || !isPlaced[ns.Node.ID] || (ns.State.Committed != nil && ns.State.Committed.Version >= meta.Version) {
			return
		}
		cctx, cancel := s.callCtx(ctx)
		defer cancel()
		rec, err := ns.Client.Commit(cctx, meta)
		if err != nil || rec.Version != meta.Version {
			s.log.Debug("objects: manifest roll forward failed", "node", ns.Node.ID, "version", meta.Version, "err", err)
			return
		}
		s.log.Info("objects: rolled manifest forward", "node", ns.Node.ID, "bucket", meta.Bucket, "key", meta.Key, "version", meta.Version)
		ns.State.Committed = &rec
	})
}

// writeParts streams bytes [off, off+length) of a multipart object,
// resolving each part it touches as it gets there. REQUIRES: the range is
// inside the object.
func (o *object) writeParts(ctx context.Context, w io.Writer, off, length int64) error {
	const op = "objects.WriteRange"
	end := off + length
	var pos int64
	for _, p := range o.meta.Parts {
		lo, hi := max(off, pos), min(end, pos+p.Size)
		if lo < hi {
			part, err := o.s.openPart(ctx, o.meta, p)
			if err != nil {
				return kerr.E(op, err)
			}
			if err := part.writeRange(ctx, w, lo-pos, hi-lo); err != nil {
				return err
			}
		}
		pos += p.Size
		if pos >= end {
			break
		}
	}
	return nil
}

// openPart resolves part p of the multipart object meta.
func (s *Store) openPart(ctx context.Context, meta client.ObjectMeta, p client.PartRef) (*object, error) {
	const op = "objects.openPart"
	// Parts are resolved as the stream reaches them, possibly after a map
	// change: each one under the map of that moment (see fence.go).
	r, err := fenced(ctx, s, func(ctx context.Context) (*resolved, error) { return s.resolve(ctx, meta.Bucket, p.Key) })
	switch {
	case kerr.Is(kerr.NotExist, err):
		return nil, kerr.E(op, kerr.Corrupt, fmt.Errorf("part %d of %s/%s version %s is gone", p.Number, meta.Bucket, meta.Key, meta.Version))
	case err != nil:
		return nil, kerr.E(op, err)
	case r.meta.Version != p.Version || r.meta.Size != p.Size:
		return nil, kerr.E(op, kerr.Corrupt, fmt.Errorf("part %d of %s/%s version %s was replaced", p.Number, meta.Bucket, meta.Key, meta.Version))
	}
	return &object{s: s, meta: r.meta, holders: r.holders}, nil
}

// multipartETag is S3's ETag of a multipart object: the MD5 of the
// concatenated binary MD5s of its parts, then "-" and the part count.
func multipartETag(parts []client.PartRef) string {
	h := md5.New()
	for _, p := range parts {
		b, _ := hex.DecodeString(p.ETag)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(parts))
}

// compositeHashes are the algorithms whose per-part checksums combine into
// a composite checksum of the whole object.
var compositeHashes = map[string]func() hash.Hash{
	"crc32":  func() hash.Hash { return crc32.NewIEEE() },
	"crc32c": func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) },
	"sha1":   sha1.New,
	"sha256": sha256.New,
}

// compositeChecksums returns, for every algorithm all parts have a checksum
// of, S3's composite checksum: the checksum of the concatenated binary part
// checksums, then "-" and the part count.
func compositeChecksums(parts []client.PartRef) map[string]string {
	var out map[string]string
	for alg, newHash := range compositeHashes {
		h := newHash()
		ok := true
		for _, p := range parts {
			b, err := base64.StdEncoding.DecodeString(p.Checksums[alg])
			if err != nil || len(b) == 0 {
				ok = false
				break
			}
			h.Write(b)
		}
		if !ok {
			continue
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[alg] = base64.StdEncoding.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(parts))
	}
	return out
}

// partSizes returns the sizes of parts, nil for none.
func partSizes(parts []client.PartRef) []int64 {
	if len(parts) == 0 {
		return nil
	}
	out := make([]int64, len(parts))
	for i, p := range parts {
		out[i] = p.Size
	}
	return out
}
