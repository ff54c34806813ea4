package gateway

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"
)

// logRequests stamps every response with a request id and the Server
// header, and logs the request once it is done: at Debug when it
// succeeded, Info for a client error, Warn for a server error or an
// aborted response.
func (g *Gateway) logRequests(c *gin.Context) {
	start := time.Now()
	id := g.requestID()
	h := c.Writer.Header()
	h.Set(hdrRequestID, id)
	h.Set("Server", "Kintsugi")

	aborted := true
	defer func() {
		level := slog.LevelDebug
		status := c.Writer.Status()
		switch {
		case aborted || status >= 500:
			level = slog.LevelWarn
		case status >= 400:
			level = slog.LevelInfo
		}
		if !g.log.Enabled(context.Background(), level) {
			return
		}
		attrs := []slog.Attr{
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.Int("status", status),
			slog.Int("bytes", max(c.Writer.Size(), 0)),
			slog.Duration("duration", time.Since(start)),
			slog.String("request_id", id),
		}
		if aborted {
			attrs = append(attrs, slog.Bool("aborted", true))
		}
		if err := c.Errors.Last(); err != nil {
			attrs = append(attrs, slog.String("err", err.Error()))
		}
		g.log.LogAttrs(context.Background(), level, "s3 request", attrs...)
	}()
	c.Next()
	aborted = false
}

// stack is the current goroutine's stack, for panic logs.
func stack() []byte { return debug.Stack() }
