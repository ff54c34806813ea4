package nodeaccess

import (
	"context"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// A guarded node serves versions if the node it guards does (see
// client.VersionsOf); the calls pass the same breaker as the others. A
// node that serves none answers client.ErrNoVersions without touching
// its breaker: that is the client's shape, not the node's health.
var _ client.Versioner = guarded{}

// versions returns the guarded node's Versioner and whether it has one.
func (g guarded) versions() (client.Versioner, bool) {
	v, ok := g.n.(client.Versioner)
	if !ok {
		return client.VersionsOf(g.n), false
	}
	return v, true
}

func (g guarded) KeyVersions(ctx context.Context, bucket, key string) (client.KeyVersions, error) {
	v, ok := g.versions()
	if !ok {
		return v.KeyVersions(ctx, bucket, key)
	}
	return do(ctx, g, timed, func() (client.KeyVersions, error) { return v.KeyVersions(ctx, bucket, key) })
}

func (g guarded) ListVersions(ctx context.Context, bucket, prefix, afterKey, afterVersion string, limit int) (client.VersionPage, error) {
	v, ok := g.versions()
	if !ok {
		return v.ListVersions(ctx, bucket, prefix, afterKey, afterVersion, limit)
	}
	return do(ctx, g, untimed, func() (client.VersionPage, error) {
		return v.ListVersions(ctx, bucket, prefix, afterKey, afterVersion, limit)
	})
}

func (g guarded) DeleteVersion(ctx context.Context, bucket, key, version string) (*client.Record, error) {
	v, ok := g.versions()
	if !ok {
		return v.DeleteVersion(ctx, bucket, key, version)
	}
	return do(ctx, g, timed, func() (*client.Record, error) { return v.DeleteVersion(ctx, bucket, key, version) })
}

func (g guarded) CommitNoncurrent(ctx context.Context, meta client.ObjectMeta) (client.Record, error) {
	v, ok := g.versions()
	if !ok {
		return v.CommitNoncurrent(ctx, meta)
	}
	return do(ctx, g, timed, func() (client.Record, error) { return v.CommitNoncurrent(ctx, meta) })
}

func (g guarded) SetTags(ctx context.Context, u client.TagUpdate) (client.Record, error) {
	v, ok := g.versions()
	if !ok {
		return v.SetTags(ctx, u)
	}
	return do(ctx, g, timed, func() (client.Record, error) { return v.SetTags(ctx, u) })
}
