package gateway

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/kintsugi-store/kintsugi/gateway/objects"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// fakeUpload is a multipart upload of the fake backend.
type fakeUpload struct {
	info    objects.UploadInfo
	ct      string
	meta    map[string]string
	hdrs    map[string]string
	tagging string
	parts   map[int]fakePart
}

type fakePart struct {
	info objects.PartInfo
	data []byte
}

func noSuchUpload(op, id string) error {
	return kerr.E(op, kerr.NotExist, fmt.Errorf("%w: %s", objects.ErrNoSuchUpload, id))
}

// upload returns upload id of bucket/key; callers hold mu.
func (f *fakeBackend) upload(op, bucket, key, id string) (*fakeUpload, error) {
	if _, err := f.bucket(op, bucket); err != nil {
		return nil, err
	}
	u, ok := f.uploads[id]
	if !ok || u.info.Bucket != bucket || u.info.Key != key {
		return nil, noSuchUpload(op, id)
	}
	return u, nil
}

func (f *fakeBackend) CreateUpload(ctx context.Context, in objects.UploadInput) (objects.UploadInfo, error) {
	const op = "fake.CreateUpload"
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.bucket(op, in.Bucket); err != nil {
		return objects.UploadInfo{}, err
	}
	if f.uploads == nil {
		f.uploads = make(map[string]*fakeUpload)
	}
	info := objects.UploadInfo{Bucket: in.Bucket, Key: in.Key, UploadID: fmt.Sprintf("upload-%03d", len(f.uploads)+1), Initiated: f.tick()}
	f.uploads[info.UploadID] = &fakeUpload{info: info, ct: in.ContentType, meta: maps.Clone(in.UserMeta), hdrs: maps.Clone(in.Headers), tagging: in.Tagging, parts: make(map[int]fakePart)}
	return info, nil
}

func (f *fakeBackend) PutPart(ctx context.Context, in objects.PartInput) (objects.PartInfo, error) {
	const op = "fake.PutPart"
	f.mu.Lock()
	_, err := f.upload(op, in.Bucket, in.Key, in.UploadID)
	f.mu.Unlock()
	if err != nil {
		return objects.PartInfo{}, err
	}
	data := make([]byte, in.Size)
	if _, err := io.ReadFull(in.Body, data); err != nil {
		return objects.PartInfo{}, kerr.E(op, kerr.Invalid, fmt.Errorf("%w: %v", objects.ErrIncompleteBody, err))
	}
	sum := md5.Sum(data)
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.upload(op, in.Bucket, in.Key, in.UploadID)
	if err != nil {
		return objects.PartInfo{}, err
	}
	p := objects.PartInfo{Number: in.Number, Size: in.Size, ETag: hex.EncodeToString(sum[:]), Modified: f.tick()}
	if in.Checksums != nil {
		p.Checksums = in.Checksums()
	}
	u.parts[in.Number] = fakePart{info: p, data: data}
	return p, nil
}

func (f *fakeBackend) CompleteUpload(ctx context.Context, in objects.CompleteInput) (objects.ObjectInfo, error) {
	const op = "fake.CompleteUpload"
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.upload(op, in.Bucket, in.Key, in.UploadID)
	if err != nil {
		// The real store answers a repeated completion as the first one.
		if o, ok := f.buckets[in.Bucket].objs[in.Key]; ok && o.info.Version == "mp-"+in.UploadID {
			return o.info, nil
		}
		return objects.ObjectInfo{}, err
	}
	var data bytes.Buffer
	var sizes []int64
	sum := md5.New()
	// Checked in the real store's order: order, then each part.
	for i, cp := range in.Parts {
		if i > 0 && cp.Number <= in.Parts[i-1].Number {
			return objects.ObjectInfo{}, kerr.E(op, kerr.Invalid, objects.ErrInvalidPartOrder)
		}
	}
	for _, cp := range in.Parts {
		if p, ok := u.parts[cp.Number]; !ok || p.info.ETag != cp.ETag {
			return objects.ObjectInfo{}, kerr.E(op, kerr.Invalid, objects.ErrInvalidPart)
		}
	}
	for i, cp := range in.Parts {
		p := u.parts[cp.Number]
		if i < len(in.Parts)-1 && p.info.Size < objects.MinPartSize {
			return objects.ObjectInfo{}, kerr.E(op, kerr.Invalid, objects.ErrEntityTooSmall)
		}
		b, _ := hex.DecodeString(p.info.ETag)
		sum.Write(b)
		data.Write(p.data)
		sizes = append(sizes, p.info.Size)
	}
	info := objects.ObjectInfo{
		Bucket: in.Bucket, Key: in.Key, Version: "mp-" + in.UploadID, Size: int64(data.Len()),
		ETag:        hex.EncodeToString(sum.Sum(nil)) + "-" + strconv.Itoa(len(in.Parts)),
		ContentType: u.ct, UserMeta: u.meta, Headers: u.hdrs, Tagging: u.tagging, Modified: f.tick(), PartSizes: sizes,
	}
	f.buckets[in.Bucket].objs[in.Key] = fakeObject{info: info, data: data.Bytes()}
	delete(f.uploads, in.UploadID)
	return info, nil
}

func (f *fakeBackend) AbortUpload(ctx context.Context, bucket, key, uploadID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.upload("fake.AbortUpload", bucket, key, uploadID); err != nil {
		return err
	}
	delete(f.uploads, uploadID)
	return nil
}

func (f *fakeBackend) ListParts(ctx context.Context, bucket, key, uploadID string, opts objects.PartListOptions) (objects.PartList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := f.upload("fake.ListParts", bucket, key, uploadID)
	if err != nil {
		return objects.PartList{}, err
	}
	var res objects.PartList
	for _, n := range slices.Sorted(maps.Keys(u.parts)) {
		if n <= opts.After {
			continue
		}
		if len(res.Parts) == opts.MaxParts {
			res.Truncated, res.NextAfter = true, res.Parts[len(res.Parts)-1].Number
			break
		}
		res.Parts = append(res.Parts, u.parts[n].info)
	}
	return res, nil
}

func (f *fakeBackend) ListUploads(ctx context.Context, bucket string, opts objects.UploadListOptions) (objects.UploadList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.bucket("fake.ListUploads", bucket); err != nil {
		return objects.UploadList{}, err
	}
	var ups []objects.UploadInfo
	for _, u := range f.uploads {
		if u.info.Bucket == bucket && strings.HasPrefix(u.info.Key, opts.Prefix) {
			ups = append(ups, u.info)
		}
	}
	slices.SortFunc(ups, func(a, b objects.UploadInfo) int {
		return strings.Compare(a.Key+"\x00"+a.UploadID, b.Key+"\x00"+b.UploadID)
	})
	var res objects.UploadList
	for _, u := range ups {
		if u.Key < opts.KeyMarker || (u.Key == opts.KeyMarker && (opts.UploadIDMarker == "" || u.UploadID <= opts.UploadIDMarker)) {
			continue
		}
		if len(res.Uploads) == opts.MaxUploads {
			last := res.Uploads[len(res.Uploads)-1]
			res.Truncated, res.NextKeyMarker, res.NextUploadIDMarker = true, last.Key, last.UploadID
			break
		}
		res.Uploads = append(res.Uploads, u)
	}
	return res, nil
}
