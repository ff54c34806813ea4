package gateway

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/kintsugi-store/kintsugi/gateway/sigv4"
)

// checkAtEOF is a stand-in for an authenticated payload: it fails at its
// end, as a bad trailing checksum does.
type checkAtEOF struct {
	r   io.Reader
	err error
}

func (c *checkAtEOF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF && c.err != nil {
		err = c.err
	}
	return n, err
}

func TestPayload(t *testing.T) {
	badSum := &sigv4.Error{Code: "BadDigest", Message: "checksum", Status: 400}
	tests := []struct {
		name    string
		body    io.Reader
		length  int64
		want    string // the body; on failure only a prefix short of length may be delivered
		wantErr string // code of the terminal error; "" = io.EOF
	}{
		{"exact", strings.NewReader("hello"), 5, "hello", ""},
		{"one byte reads", iotest.OneByteReader(strings.NewReader("hello")), 5, "hello", ""},
		{"empty", strings.NewReader(""), 0, "", ""},
		{"short", strings.NewReader("hel"), 5, "hel", "IncompleteBody"},
		{"unexpected EOF", io.MultiReader(strings.NewReader("he"), iotest.ErrReader(io.ErrUnexpectedEOF)), 5, "he", "IncompleteBody"},
		{"long", strings.NewReader("hello!"), 5, "hello", "InvalidRequest"},
		// The last bytes are held back until the check at the end passed.
		{"check fails at end", &checkAtEOF{r: strings.NewReader("hello"), err: badSum}, 5, "hello", "BadDigest"},
		{"check fails empty", &checkAtEOF{r: strings.NewReader(""), err: badSum}, 0, "", "BadDigest"},
		{"unknown length", strings.NewReader("hello"), -1, "hello", ""},
		{"unknown length fails", &checkAtEOF{r: strings.NewReader("hello"), err: badSum}, -1, "hello", "BadDigest"},
	}
	for _, tt := range tests {
		pl := newPayload(&sigv4.Result{Body: tt.body, Length: tt.length})
		var got []byte
		buf := make([]byte, 2)
		var err error
		for err == nil {
			var n int
			n, err = pl.Read(buf)
			got = append(got, buf[:n]...)
		}
		switch {
		case tt.wantErr == "" && string(got) != tt.want:
			t.Errorf("%s: read %q, want %q", tt.name, got, tt.want)
		case tt.wantErr != "" && (!strings.HasPrefix(tt.want, string(got)) || tt.length > 0 && int64(len(got)) >= tt.length):
			t.Errorf("%s: read %q before failing, want a strict prefix of %q", tt.name, got, tt.want)
		}
		if tt.wantErr == "" {
			if err != io.EOF || pl.failure() != nil {
				t.Errorf("%s: err = %v, failure %v; want io.EOF", tt.name, err, pl.failure())
			}
			continue
		}
		code, _, _ := s3Status(err)
		if code != tt.wantErr || pl.failure() != err {
			t.Errorf("%s: err = %v (%s), want %s", tt.name, err, code, tt.wantErr)
		}
		// Sticky.
		if _, err2 := pl.Read(buf); err2 != err {
			t.Errorf("%s: second Read err = %v, want %v", tt.name, err2, err)
		}
	}
}

// A consumer that reads exactly the declared size, never asking for EOF,
// still sees the failure of a check that runs at the end.
func TestPayloadReadFullSeesLateFailure(t *testing.T) {
	bad := errors.New("trailer mismatch")
	pl := newPayload(&sigv4.Result{Body: &checkAtEOF{r: strings.NewReader("abcd"), err: bad}, Length: 4})
	buf := make([]byte, 4)
	if _, err := io.ReadFull(pl, buf); !errors.Is(err, bad) {
		t.Fatalf("ReadFull err = %v, want %v", err, bad)
	}
}
