package gateway

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
	"github.com/kintsugi-store/kintsugi/internal/lifecycle"
)

// LifecycleBackend is what a Backend needs for bucket lifecycle
// configurations; *objects.Store has it.
type LifecycleBackend interface {
	PutBucketLifecycle(ctx context.Context, bucket, doc string) error
	GetBucketLifecycle(ctx context.Context, bucket string) (string, error)
	DeleteBucketLifecycle(ctx context.Context, bucket string) error
}

func (g *Gateway) lifecycleBackend(c *gin.Context) (LifecycleBackend, bool) {
	lb, ok := g.cfg.Backend.(LifecycleBackend)
	if !ok {
		g.notImplemented(c, "lifecycle")
	}
	return lb, ok
}

// putBucketLifecycle validates the configuration as S3 does and stores it
// re-encoded, so that what GET returns is what the scrubber evaluates.
func (g *Gateway) putBucketLifecycle(c *gin.Context, bucket string, p *sigv4.Result) {
	lb, ok := g.lifecycleBackend(c)
	if !ok {
		return
	}
	body, err := readSmall(p, maxConfigBody)
	if err != nil {
		g.fail(c, err)
		return
	}
	cfg, err := lifecycle.Parse(body)
	var le *lifecycle.Error
	if errors.As(err, &le) {
		g.fail(c, s3Error(le.Code, le.Message))
		return
	}
	if err != nil {
		g.fail(c, err)
		return
	}
	doc, err := xml.Marshal(cfg)
	if err != nil {
		g.fail(c, err)
		return
	}
	if err := lb.PutBucketLifecycle(c.Request.Context(), bucket, string(doc)); err != nil {
		g.fail(c, err)
		return
	}
	c.Status(http.StatusOK)
}

func (g *Gateway) getBucketLifecycle(c *gin.Context, bucket string) {
	lb, ok := g.lifecycleBackend(c)
	if !ok {
		return
	}
	doc, err := lb.GetBucketLifecycle(c.Request.Context(), bucket)
	if err != nil {
		g.fail(c, err)
		return
	}
	// The stored document lacks the namespace S3 answers with.
	cfg, err := lifecycle.Parse([]byte(doc))
	if err != nil {
		g.fail(c, err)
		return
	}
	writeXML(c, http.StatusOK, struct {
		XMLName xml.Name         `xml:"http://s3.amazonaws.com/doc/2006-03-01/ LifecycleConfiguration"`
		Rules   []lifecycle.Rule `xml:"Rule"`
	}{Rules: cfg.Rules})
}

func (g *Gateway) deleteBucketLifecycle(c *gin.Context, bucket string) {
	lb, ok := g.lifecycleBackend(c)
	if !ok {
		return
	}
	if err := lb.DeleteBucketLifecycle(c.Request.Context(), bucket); err != nil {
		g.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
