package gateway

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// harness is a gateway over a fake Backend behind an httptest server.
type harness struct {
	t    *testing.T
	fake *fakeBackend
	gw   *Gateway
	srv  *httptest.Server
	logs *syncBuffer

	mu  sync.Mutex
	req []http.Header // headers of every request, in arrival order
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newHarness starts a gateway; tls selects an HTTPS server (the AWS SDK
// only sends aws-chunked trailing checksums over TLS). edit may change the
// config before New.
func newHarness(t *testing.T, tls bool, edit func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, fake: newFake(), logs: &syncBuffer{}}
	cfg := DefaultConfig()
	cfg.Backend = h.fake
	cfg.Logger = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if edit != nil {
		edit(&cfg)
	}
	gw, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.gw = gw
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.req = append(h.req, r.Header.Clone())
		h.mu.Unlock()
		gw.Handler().ServeHTTP(w, r)
	})
	if tls {
		h.srv = httptest.NewTLSServer(record)
	} else {
		h.srv = httptest.NewServer(record)
	}
	t.Cleanup(h.srv.Close)
	return h
}

// requests returns the headers of the requests received so far.
func (h *harness) requests() []http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]http.Header(nil), h.req...)
}

// client returns an AWS SDK S3 client for the harness, path-style, without
// retries.
func (h *harness) client(edit ...func(*s3.Options)) *s3.Client {
	opts := s3.Options{
		BaseEndpoint: aws.String(h.srv.URL),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""),
		HTTPClient:   h.srv.Client(),
		Retryer:      aws.NopRetryer{},
	}
	return s3.New(opts, edit...)
}

// errCode is the S3 error code of an SDK error, or "" for nil.
func errCode(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an API error", err, err)
	}
	return ae.ErrorCode()
}

// wantCode fails the test unless err carries the S3 error code want.
func wantCode(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := errCode(t, err); got != want {
		t.Errorf("%s: error code %q (%v), want %q", what, got, err, want)
	}
}

var bg = context.Background()
