package meta

import (
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// The index's durable types. What the index stores is its own format, not
// the wire's: the API's types (storagenode/wire, as client.Record and so
// on) may change for the protocol's sake, and a field added, renamed or
// retagged there must not change what data directories hold, or what
// they can be read back as, unnoticed. Each durable type converts to and
// from its wire type here, at the index's boundary; the rest of the node
// sees wire types only.
//
// The JSON of these types is the on-disk format: add fields, never rename
// or retag one. Their first version was byte for byte the JSON the index
// wrote when it stored the wire types themselves, which testdata/ keeps
// (TestDurableGolden).

// diskRecord is a committed record (the value of an object key, and a
// superseded record in a garbage note).
type diskRecord struct {
	Bucket       string            `json:"bucket"`
	Key          string            `json:"key"`
	Version      string            `json:"version"`
	Deleted      bool              `json:"deleted,omitempty"`
	Size         int64             `json:"size"`
	ETag         string            `json:"etag,omitempty"`
	ContentType  string            `json:"content_type,omitempty"`
	UserMeta     map[string]string `json:"user_meta,omitempty"`
	Modified     time.Time         `json:"modified"`
	Data         int               `json:"data"`
	Parity       int               `json:"parity"`
	BlockSize    int               `json:"block_size"`
	Format       int               `json:"format"`
	Roots        []string          `json:"roots,omitempty"`
	Nodes        []string          `json:"nodes,omitempty"`
	Checksums    map[string]string `json:"checksums,omitempty"`
	Parts        []diskPart        `json:"parts,omitempty"`
	Target       string            `json:"target,omitempty"`
	Staged       string            `json:"staged,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	Tagging      string            `json:"tagging,omitempty"`
	TagsAt       string            `json:"tags_at,omitempty"`
	Versioning   string            `json:"versioning,omitempty"`
	VersioningAt string            `json:"versioning_at,omitempty"`
	Versioned    bool              `json:"versioned,omitempty"`
	Shard        int               `json:"shard"`
	Quorum       int               `json:"quorum,omitempty"`
}

// diskPart is one part of a multipart manifest's record.
type diskPart struct {
	Number    int               `json:"number"`
	Key       string            `json:"key"`
	Version   string            `json:"version"`
	Size      int64             `json:"size"`
	ETag      string            `json:"etag"`
	Checksums map[string]string `json:"checksums,omitempty"`
}

// diskBucket is a bucket record.
type diskBucket struct {
	Name       string    `json:"name"`
	Version    string    `json:"version"`
	Created    time.Time `json:"created"`
	Deleted    bool      `json:"deleted,omitempty"`
	Tagging    string    `json:"tagging,omitempty"`
	CORS       string    `json:"cors,omitempty"`
	Versioning string    `json:"versioning,omitempty"`
	Lifecycle  string    `json:"lifecycle,omitempty"`
}

// diskHint is a repair hint.
type diskHint struct {
	Bucket  string    `json:"bucket"`
	Key     string    `json:"key"`
	Version string    `json:"version"`
	Shard   int       `json:"shard"`
	NodeID  string    `json:"node_id,omitempty"`
	Reason  string    `json:"reason"`
	Time    time.Time `json:"time"`
}

func toDiskRecord(r client.Record) diskRecord {
	d := diskRecord{
		Bucket: r.Bucket, Key: r.Key, Version: r.Version, Deleted: r.Deleted,
		Size: r.Size, ETag: r.ETag, ContentType: r.ContentType, UserMeta: r.UserMeta,
		Modified: r.Modified, Data: r.Data, Parity: r.Parity, BlockSize: r.BlockSize,
		Format: r.Format, Roots: r.Roots, Nodes: r.Nodes, Checksums: r.Checksums,
		Target: r.Target, Staged: r.Staged, Headers: r.Headers, Tagging: r.Tagging, TagsAt: r.TagsAt,
		Versioning: r.Versioning, VersioningAt: r.VersioningAt, Versioned: r.Versioned,
		Shard: r.Shard, Quorum: r.Quorum,
	}
	if r.Parts != nil {
		d.Parts = make([]diskPart, len(r.Parts))
		for i, p := range r.Parts {
			d.Parts[i] = diskPart(p)
		}
	}
	return d
}

func (d diskRecord) wire() client.Record {
	r := client.Record{
		ObjectMeta: client.ObjectMeta{
			Bucket: d.Bucket, Key: d.Key, Version: d.Version, Deleted: d.Deleted,
			Size: d.Size, ETag: d.ETag, ContentType: d.ContentType, UserMeta: d.UserMeta,
			Modified: d.Modified, Data: d.Data, Parity: d.Parity, BlockSize: d.BlockSize,
			Format: d.Format, Roots: d.Roots, Nodes: d.Nodes, Checksums: d.Checksums,
			Target: d.Target, Staged: d.Staged, Headers: d.Headers, Tagging: d.Tagging, TagsAt: d.TagsAt,
			Versioning: d.Versioning, VersioningAt: d.VersioningAt, Versioned: d.Versioned,
			Quorum: d.Quorum,
		},
		Shard: d.Shard,
	}
	if d.Parts != nil {
		r.Parts = make([]client.PartRef, len(d.Parts))
		for i, p := range d.Parts {
			r.Parts[i] = client.PartRef(p)
		}
	}
	return r
}

func encodeRecord(r client.Record) ([]byte, error) { return json.Marshal(toDiskRecord(r)) }

// decodeRecord decodes a stored record into *r.
func decodeRecord(v []byte, r *client.Record) error {
	var d diskRecord
	if err := json.Unmarshal(v, &d); err != nil {
		return err
	}
	*r = d.wire()
	return nil
}

func encodeBucket(b client.BucketRecord) ([]byte, error) { return json.Marshal(diskBucket(b)) }

func decodeBucket(v []byte, b *client.BucketRecord) error {
	var d diskBucket
	if err := json.Unmarshal(v, &d); err != nil {
		return err
	}
	*b = client.BucketRecord(d)
	return nil
}

func encodeHint(h client.Hint) ([]byte, error) { return json.Marshal(diskHint(h)) }

func decodeHint(v []byte, h *client.Hint) error {
	var d diskHint
	if err := json.Unmarshal(v, &d); err != nil {
		return err
	}
	*h = client.Hint(d)
	return nil
}
