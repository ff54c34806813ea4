package gateway

import (
	"errors"
	"io"
	"net/http"

	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
)

// payload is a request body as the Backend sees it: exactly the declared
// number of bytes of the authenticated payload. The authenticated reader
// performs its checks (payload digest, chunk signatures, Content-MD5,
// x-amz-checksum-*) only when it reaches its end, so payload reaches that
// end before handing out the last declared byte: a consumer that stops
// reading at the declared size can never commit a body that failed a
// check. Errors are sticky.
type payload struct {
	r      io.Reader
	remain int64 // bytes still to deliver; -1 when the length is unknown
	err    error // sticky; io.EOF once the payload ended and passed
}

func newPayload(p *sigv4.Result) *payload {
	pl := &payload{r: p.Body, remain: p.Length}
	if pl.r == nil {
		pl.r = http.NoBody
	}
	return pl
}

func (pl *payload) Read(p []byte) (int, error) {
	if pl.err != nil {
		return 0, pl.err
	}
	if pl.remain == 0 {
		pl.err = pl.finish()
		return 0, pl.err
	}
	if pl.remain > 0 && int64(len(p)) > pl.remain {
		p = p[:pl.remain]
	}
	n, err := pl.r.Read(p)
	if pl.remain < 0 {
		if err != nil {
			pl.err = err
		}
		return n, err
	}
	pl.remain -= int64(n)
	switch {
	case pl.remain > 0 && (err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF)):
		pl.err = s3Error("IncompleteBody", "")
		return 0, pl.err
	case err != nil && err != io.EOF:
		pl.err = err
		return 0, err
	case pl.remain == 0:
		// Hold the last bytes back until the stream has ended and passed
		// its checks.
		if pl.err = pl.finish(); pl.err != io.EOF {
			return 0, pl.err
		}
	}
	return n, nil
}

// finish reads the underlying stream to its end, which makes the
// authenticated reader run its deferred checks. It returns io.EOF when the
// stream ended exactly there and passed.
func (pl *payload) finish() error {
	var b [1]byte
	for {
		n, err := pl.r.Read(b[:])
		if n > 0 {
			return s3Error("InvalidRequest", "the body is longer than its declared length")
		}
		if err != nil {
			return err
		}
	}
}

// failure is the error the payload itself failed with, if any. It is more
// precise than whatever the Backend made of it.
func (pl *payload) failure() error {
	if pl.err == nil || pl.err == io.EOF {
		return nil
	}
	return pl.err
}

// readSmall reads a request body of at most limit bytes (a bucket
// configuration, a multi-object delete list) into memory.
func readSmall(p *sigv4.Result, limit int64) ([]byte, error) {
	if p.Length > limit {
		return nil, s3Error("MalformedXML", "The request body is too large.")
	}
	b, err := io.ReadAll(io.LimitReader(newPayload(p), limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, s3Error("MalformedXML", "The request body is too large.")
	}
	return b, nil
}
