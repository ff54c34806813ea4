package sigv4

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"strings"
)

// aws-chunked framing (x-amz-content-sha256 STREAMING-*):
//
//	<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n   repeated, then
//	0[;chunk-signature=<sig>]\r\n
//	<name>:<value>\r\n ...                              trailers, if any
//	x-amz-trailer-signature:<sig>\r\n                  signed trailer only
//	\r\n
//
// Some clients end trailer lines with a bare \n and put an empty line
// before the trailer signature; both are accepted.
const (
	maxChunkSize   = 16 << 20 // larger chunks are refused
	maxLineLength  = 4096     // chunk header or trailer line
	maxTrailerLine = 16       // trailer section lines, signature included
	maxFinalCRLF   = 4        // stray line ends tolerated after the last line
)

// chunkSigner holds the state that chains chunk signatures: each chunk's
// signature covers the previous one, starting from the request's (seed)
// signature.
type chunkSigner struct {
	key     []byte
	amzDate string
	scope   string
	prev    string
}

// chunkSignature is the signature a chunk whose data has SHA-256 sum must carry.
func (s *chunkSigner) chunkSignature(sum []byte) string {
	return sign(s.key, "AWS4-HMAC-SHA256-PAYLOAD\n"+s.amzDate+"\n"+s.scope+"\n"+s.prev+"\n"+emptySHA256+"\n"+hex.EncodeToString(sum))
}

// trailerSignature is the signature of a trailer section whose canonical
// form ("name:value\n" per trailer) has SHA-256 sum.
func (s *chunkSigner) trailerSignature(sum []byte) string {
	return sign(s.key, "AWS4-HMAC-SHA256-TRAILER\n"+s.amzDate+"\n"+s.scope+"\n"+s.prev+"\n"+hex.EncodeToString(sum))
}

// chunkedReader decodes an aws-chunked body. It streams each chunk's data
// to the caller as it arrives and checks the chunk's signature when the
// chunk ends, so a bad chunk fails at its end, after its bytes were
// returned. It returns io.EOF only after the final chunk, the trailers and
// every signature checked out.
type chunkedReader struct {
	br       *bufio.Reader
	signed   bool         // chunk headers carry chunk-signature
	signer   *chunkSigner // nil: signatures are parsed but not checked
	trailer  bool         // a trailer section follows the final chunk
	sigTrail bool         // ... and ends with x-amz-trailer-signature
	declared []string     // trailer names x-amz-trailer announced
	trailers http.Header  // filled by the trailer section

	left    int64     // unread data bytes of the current chunk
	inChunk bool      // the current chunk's closing CRLF is not yet read
	sig     string    // signature the current chunk claims
	sum     hash.Hash // SHA-256 of the current chunk's data, when signer != nil
	err     error     // sticky
}

func newChunkedReader(body io.Reader, mode payloadMode, signer *chunkSigner, declared []string) *chunkedReader {
	c := &chunkedReader{
		br:       bufio.NewReaderSize(body, maxLineLength),
		signed:   mode == payloadSigned || mode == payloadSignedTrailer,
		signer:   signer,
		trailer:  mode.trailer(),
		sigTrail: mode == payloadSignedTrailer,
		declared: declared,
		trailers: make(http.Header),
	}
	if signer != nil {
		c.sum = sha256.New()
	}
	return c
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for c.left == 0 {
		if err := c.next(); err != nil {
			c.err = err
			return 0, err
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= int64(n)
	if c.sum != nil {
		c.sum.Write(p[:n])
	}
	if err != nil {
		err = noEOF(err)
		c.err = err
	}
	return n, err
}

// next finishes the current chunk and starts the next one. After the
// final chunk it reads the trailer section and returns io.EOF.
func (c *chunkedReader) next() error {
	if c.inChunk {
		if err := c.readCRLF(); err != nil {
			return err
		}
		if err := c.checkChunk(); err != nil {
			return err
		}
		c.inChunk = false
	}
	size, sig, err := c.readChunkHeader()
	if err != nil {
		return err
	}
	c.sig = sig
	if c.sum != nil {
		c.sum.Reset()
	}
	if size == 0 {
		if err := c.checkChunk(); err != nil {
			return err
		}
		return c.readTrailers()
	}
	c.left, c.inChunk = size, true
	return nil
}

// checkChunk checks the signature of the chunk just read.
func (c *chunkedReader) checkChunk() error {
	if c.signer == nil {
		return nil
	}
	want := c.signer.chunkSignature(c.sum.Sum(nil))
	if !sameSignature(c.sig, want) {
		return newError(codeSignatureDoesNotMatch, "The chunk signature we calculated does not match the signature you provided.")
	}
	c.signer.prev = want
	return nil
}

// readChunkHeader parses "<hex size>[;ext...]" and, in signed modes, the
// chunk-signature extension.
func (c *chunkedReader) readChunkHeader() (int64, string, error) {
	line, err := c.readLine()
	if err != nil {
		return 0, "", err
	}
	sizeHex, ext, _ := strings.Cut(strings.TrimRight(line, " \t"), ";")
	if sizeHex == "" || len(sizeHex) > 16 {
		return 0, "", malformed("bad chunk size")
	}
	var size int64
	for i := 0; i < len(sizeHex); i++ {
		d := unhex(sizeHex[i])
		if d < 0 {
			return 0, "", malformed("bad chunk size")
		}
		size = size<<4 | int64(d)
		if size > maxChunkSize {
			return 0, "", newError(codeInvalidRequest, "aws-chunked chunks may not exceed 16 MiB.")
		}
	}
	if !c.signed {
		return size, "", nil
	}
	for e := range strings.SplitSeq(ext, ";") {
		if sig, ok := strings.CutPrefix(strings.TrimSpace(e), "chunk-signature="); ok {
			if !validSignature(sig) {
				return 0, "", malformed("bad chunk-signature")
			}
			return size, sig, nil
		}
	}
	return 0, "", malformed("chunk without chunk-signature")
}

// readTrailers reads what follows the final chunk header and returns
// io.EOF when it is well formed, signed if it must be, and complete.
func (c *chunkedReader) readTrailers() error {
	var canon strings.Builder
	signedSeen := false
	for i := 0; ; i++ {
		if i == maxTrailerLine {
			return malformed("too many trailer lines")
		}
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if line == "" {
			if c.sigTrail && !signedSeen {
				continue
			}
			break
		}
		if !c.trailer {
			return malformed("trailer in a payload without trailers")
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return malformed("bad trailer line")
		}
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		if name == "x-amz-trailer-signature" {
			if !c.sigTrail || signedSeen {
				return malformed("unexpected x-amz-trailer-signature")
			}
			if err := c.checkTrailer(canon.String(), value); err != nil {
				return err
			}
			signedSeen = true
			continue
		}
		switch {
		case signedSeen:
			return malformed("trailer after x-amz-trailer-signature")
		case !contains(c.declared, name):
			return malformed("trailer " + name + " was not declared in x-amz-trailer")
		case len(c.trailers.Values(name)) > 0:
			return malformed("trailer " + name + " appears more than once")
		}
		c.trailers.Set(name, value)
		canon.WriteString(name + ":" + value + "\n")
	}
	for _, name := range c.declared {
		if c.trailers.Get(name) == "" {
			return malformed("declared trailer " + name + " is missing")
		}
	}
	return c.readEnd()
}

func (c *chunkedReader) checkTrailer(canon, sig string) error {
	if !validSignature(sig) {
		return malformed("bad x-amz-trailer-signature")
	}
	if c.signer == nil {
		return nil
	}
	sum := sha256.Sum256([]byte(canon))
	want := c.signer.trailerSignature(sum[:])
	if !sameSignature(sig, want) {
		return newError(codeSignatureDoesNotMatch, "The trailer signature we calculated does not match the signature you provided.")
	}
	c.signer.prev = want
	return nil
}

// readEnd accepts a few stray line ends, then requires the end of the body.
func (c *chunkedReader) readEnd() error {
	for range maxFinalCRLF + 1 {
		b, err := c.br.ReadByte()
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return err
		}
		if b != '\r' && b != '\n' {
			break
		}
	}
	return malformed("data after the final chunk")
}

// readLine reads a line ending in \n (the \r before it is optional) that
// must fit in maxLineLength.
func (c *chunkedReader) readLine() (string, error) {
	line, err := c.br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return "", malformed("line too long")
	case err != nil:
		return "", noEOF(err)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return string(line), nil
}

// readCRLF reads the \r\n that closes a chunk's data.
func (c *chunkedReader) readCRLF() error {
	for _, want := range []byte("\r\n") {
		b, err := c.br.ReadByte()
		if err != nil {
			return noEOF(err)
		}
		if b != want {
			return malformed("chunk data not followed by CRLF")
		}
	}
	return nil
}

func malformed(msg string) *Error {
	return newError(codeInvalidRequest, "Malformed aws-chunked payload: "+msg+".")
}

// noEOF turns the end of the body, anywhere before the end of the
// aws-chunked stream, into IncompleteBody. Other errors from reading the
// body pass unchanged.
func noEOF(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return newError(codeIncompleteBody, "The aws-chunked payload ended before its final chunk.")
	}
	return err
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}
