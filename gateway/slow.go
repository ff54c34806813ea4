package gateway

import (
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// guardSlowClient puts the request body behind per-read deadlines (see
// Config.SlowClientTimeout and MinBodyRate), so that a client that stops
// sending, or trickles bytes, is cut off with RequestTimeout instead of
// holding a connection, a goroutine and staged streams on the nodes. The
// deadline is set on the connection right before each read and only
// covers the time spent waiting for the client: a slow backend never
// counts against it. Response writes get a deadline each too.
//
// The returned func clears the deadlines for the next request on the
// connection, unless the client was cut off: then the expired deadline
// stays, so that the server drops the connection instead of waiting for
// the rest of the body.
func (g *Gateway) guardSlowClient(c *gin.Context) (release func()) {
	timeout := g.cfg.SlowClientTimeout
	r := c.Request
	rc := http.NewResponseController(c.Writer)
	if timeout < 0 || rc.SetReadDeadline(time.Time{}) != nil {
		return func() {} // disabled, or not a real connection (a test recorder)
	}
	var body *slowBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &slowBody{ReadCloser: r.Body, rc: rc, timeout: timeout, minRate: g.cfg.MinBodyRate}
		r.Body = body
	}
	c.Writer = &slowWriter{ResponseWriter: c.Writer, rc: rc, timeout: timeout}
	return func() {
		if body != nil && body.err != nil {
			return
		}
		rc.SetReadDeadline(time.Time{})
		rc.SetWriteDeadline(time.Time{})
	}
}

// errSlowClient is what a body read returns once the client was too slow.
var errSlowClient = s3Error("RequestTimeout", "")

// slowBody is a request body whose every read must make progress within
// timeout and whose average rate, over the time spent waiting, must stay
// at or above minRate once a first timeout has passed.
type slowBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	minRate int64 // bytes per second; <= 0: no rate check

	n      int64         // bytes read
	waited time.Duration // time spent inside Read
	err    error
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	limit := b.timeout
	if b.minRate > 0 {
		// One timeout of grace, then every byte buys 1/minRate of waiting.
		earned := b.timeout + time.Duration(float64(b.n)/float64(b.minRate)*float64(time.Second))
		limit = min(limit, earned-b.waited)
		if limit <= 0 {
			b.err = errSlowClient
			return 0, b.err
		}
	}
	start := time.Now()
	b.rc.SetReadDeadline(start.Add(limit))
	n, err := b.ReadCloser.Read(p)
	b.waited += time.Since(start)
	b.n += int64(n)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		b.err = errSlowClient
		return n, b.err
	}
	return n, err
}

// slowWriter bounds each write of a response: a client that stops reading
// is cut off after timeout instead of pinning the handler.
type slowWriter struct {
	gin.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (w *slowWriter) Write(p []byte) (int, error) {
	w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.ResponseWriter.Write(p)
}
