package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kintsugi-store/kintsugi/codec"
	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// Stage streams one framed shard (codec frames of block size blockSize) to
// the node as a staged, invisible write of version. The node verifies every
// frame as it arrives, writes and fsyncs the shard to a temporary file,
// records it, and answers with the root digest it computed. body is
// streamed, never buffered whole; Stage reads it to EOF or until the node
// fails, and does not close it.
//
// Errors: a block digest mismatch is kerr.Corrupt; a body that ends inside
// a frame's digest, or with a digest and no block, is kerr.Invalid (one
// that ends inside a block fails that block's digest: kerr.Corrupt); a full
// disk on the node is kerr.TooLarge; a failing body or connection is
// kerr.Transient wrapping the cause. On any error nothing is staged. The
// call is bounded by ctx only. The answer's Newest is the newest version
// the node has committed or staged for the key.
func (c *Client) Stage(ctx context.Context, bucket, key, version string, shard, blockSize int, body io.Reader) (StagedRef, error) {
	const op = "client.Stage"
	if err := CheckObject(bucket, key, version); err != nil {
		return StagedRef{}, kerr.E(op, err)
	}
	if err := CheckShard(shard); err != nil {
		return StagedRef{}, kerr.E(op, err)
	}
	if blockSize < codec.MinBlockSize || blockSize > codec.MaxBlockSize {
		return StagedRef{}, kerr.E(op, kerr.Invalid, fmt.Errorf("block size %d out of range", blockSize))
	}
	if body == nil {
		body = http.NoBody
	}
	q := objectQuery(bucket, key, version)
	q.Set("shard", strconv.Itoa(shard))
	q.Set("block", strconv.Itoa(blockSize))
	req, err := c.newRequest(ctx, http.MethodPut, "/v1/stage", q, body, UnsignedStream)
	if err != nil {
		return StagedRef{}, kerr.E(op, kerr.Invalid, c.wrap(err))
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		return StagedRef{}, c.transportError(op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return StagedRef{}, c.statusError(op, resp)
	}
	var ref StagedRef
	if err := decodeAnswer(resp.Body, &ref); err != nil {
		return StagedRef{}, kerr.E(op, kerr.Transient, c.wrap(fmt.Errorf("decoding answer: %w", err)))
	}
	return ref, nil
}

// Commit makes meta's version durable and visible on the node and returns
// the node's committed record for the key afterwards.
//
// The node moves its staged shard of the version into place and records it
// in one synced step, then removes the shard of the version it replaces.
// A delete marker (meta.Deleted) needs no staged shard; any other version
// without one is kerr.NotExist. The staged shard is the one staged under
// meta.StageVersion(): a shard staged under one version may be committed
// under a newer meta.Version (meta.Staged names the stage version), and
// is then stored and read as meta.Version's; a node that committed that
// same write (same stage version and shards) under an older version binds
// its shard to meta.Version. If the node already has a
// newer version, the error is kerr.Conflict wrapping a *ConflictError
// that names it (see Newer); the node keeps its staged shard, so that
// the same shard may be committed again under a version above that one.
// Committing the committed version again succeeds. A staged root that
// differs from meta.Roots is kerr.Corrupt.
func (c *Client) Commit(ctx context.Context, meta ObjectMeta) (Record, error) {
	const op = "client.Commit"
	if err := CheckObject(meta.Bucket, meta.Key, meta.Version); err != nil {
		return Record{}, kerr.E(op, err)
	}
	var rec Record
	err := c.call(ctx, op, http.MethodPost, "/v1/commit", nil, meta, &rec)
	return rec, err
}

// Abort drops every staged shard of version on the node. Aborting what is
// not staged (or already committed) succeeds and changes nothing.
func (c *Client) Abort(ctx context.Context, bucket, key, version string) error {
	const op = "client.Abort"
	if err := CheckObject(bucket, key, version); err != nil {
		return kerr.E(op, err)
	}
	return c.call(ctx, op, http.MethodPost, "/v1/abort", objectQuery(bucket, key, version), nil, nil)
}

// ReadShard streams framed bytes [off, off+length) of the node's committed
// shard index shard of version; length -1 means to the end. Bytes past the
// end of the shard file are not sent, so a short stream means a short
// shard, which the caller's frame checks catch. The bytes are not verified
// here. A version a newer commit superseded is still served for the node's
// superseded grace, so that a read which resolved it just before finds its
// shards.
//
// The node serves only the shard index named: one holding another shard
// of version (the rebalancer swapped shards between nodes since the caller
// resolved the version) refuses with kerr.NotExist wrapping ErrWrongShard,
// as another shard's frames would pass every block check. If the node
// holds no readable shard of version (never committed there, a delete
// marker, dropped, or superseded longer ago than the grace), the error is
// kerr.NotExist. Both come before any byte. The caller closes the stream;
// it is bounded by ctx only. Read errors in the stream are kerr.Transient.
func (c *Client) ReadShard(ctx context.Context, bucket, key, version string, shard int, off, length int64) (io.ReadCloser, error) {
	const op = "client.ReadShard"
	if err := CheckObject(bucket, key, version); err != nil {
		return nil, kerr.E(op, err)
	}
	if err := CheckShard(shard); err != nil {
		return nil, kerr.E(op, err)
	}
	if off < 0 || length < -1 {
		return nil, kerr.E(op, kerr.Invalid, fmt.Errorf("bad range off=%d length=%d", off, length))
	}
	q := objectQuery(bucket, key, version)
	q.Set("shard", strconv.Itoa(shard))
	q.Set("off", strconv.FormatInt(off, 10))
	q.Set("len", strconv.FormatInt(length, 10))
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/shard", q, http.NoBody, BodyDigest(nil))
	if err != nil {
		return nil, kerr.E(op, kerr.Invalid, c.wrap(err))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(op, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, c.statusError(op, resp)
	}
	return &shardStream{c: c, rc: resp.Body}, nil
}

// shardStream classifies read errors of a shard body.
type shardStream struct {
	c  *Client
	rc io.ReadCloser
}

func (s *shardStream) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = kerr.E("client.ReadShard", kerr.Transient, s.c.wrap(err))
	}
	return n, err
}

func (s *shardStream) Close() error { return s.rc.Close() }

// Stat returns what the node knows about a key: its committed record and
// the staged versions newer than it. A key the node has never seen gives an
// empty KeyState and a nil error.
func (c *Client) Stat(ctx context.Context, bucket, key string) (KeyState, error) {
	const op = "client.Stat"
	if err := CheckKey(bucket, key); err != nil {
		return KeyState{}, kerr.E(op, err)
	}
	var ks KeyState
	err := c.call(ctx, op, http.MethodGet, "/v1/stat", url.Values{"bucket": {bucket}, "key": {key}}, nil, &ks)
	return ks, err
}

// StatData is Stat that also returns, in KeyState.Data, the node's
// committed shard of the key if it is a data shard (or, with parity, any
// shard) and its framed stream is at most max bytes. Data is always the
// shard index of KeyState.Committed (its file, by version and index). A node
// that cannot read that shard just leaves Data empty.
func (c *Client) StatData(ctx context.Context, bucket, key string, max int64, parity bool) (KeyState, error) {
	const op = "client.StatData"
	if err := CheckKey(bucket, key); err != nil {
		return KeyState{}, kerr.E(op, err)
	}
	var ks KeyState
	q := url.Values{"bucket": {bucket}, "key": {key}, "max": {strconv.FormatInt(max, 10)}}
	if parity {
		q.Set("parity", "1")
	}
	err := c.call(ctx, op, http.MethodGet, "/v1/stat", q, nil, &ks)
	return ks, err
}

// List returns up to limit committed records of bucket, one per key (its
// newest, delete markers included), for keys having prefix and greater than
// after, in key order. limit <= 0 means DefaultListLen; it is capped at
// MaxListLen. Truncated reports that more keys follow the page.
func (c *Client) List(ctx context.Context, bucket, prefix, after string, limit int) (ListPage, error) {
	const op = "client.List"
	if err := CheckBucket(bucket); err != nil {
		return ListPage{}, kerr.E(op, err)
	}
	q := url.Values{"bucket": {bucket}, "limit": {strconv.Itoa(ListLimit(limit))}}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if after != "" {
		q.Set("after", after)
	}
	var page ListPage
	err := c.call(ctx, op, http.MethodGet, "/v1/list", q, nil, &page)
	return page, err
}

func objectQuery(bucket, key, version string) url.Values {
	return url.Values{"bucket": {bucket}, "key": {key}, "version": {version}}
}
