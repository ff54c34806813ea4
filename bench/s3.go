package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// newHTTPClient returns a client for concurrency parallel streams to one
// host: enough idle connections that none is ever closed and reopened
// between requests, large socket buffers for large bodies, no transparent
// gzip (it would measure the client's inflate, not the server).
func newHTTPClient(concurrency int, insecure bool) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          2*concurrency + 16,
		MaxIdleConnsPerHost:   2*concurrency + 16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		WriteBufferSize:       64 << 10,
		ReadBufferSize:        64 << 10,
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: insecure},
	}}
}

// newS3Client returns an S3 client for cfg: path-style addressing, static
// credentials, no retries (a retried failure would hide an error and skew
// latency), and no checksums beyond what the server requires. Unless
// cfg.SignPayload, bodies are sent as UNSIGNED-PAYLOAD: hashing every body
// with SHA-256 on the client would take CPU from the server under test when
// both share a machine.
func newS3Client(cfg *Config) *s3.Client {
	hc := cfg.HTTPClient
	if hc == nil {
		hc = newHTTPClient(cfg.Concurrency, cfg.Insecure)
	}
	var creds aws.CredentialsProvider = aws.AnonymousCredentials{}
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")
	}
	opts := s3.Options{
		BaseEndpoint:               aws.String(cfg.Endpoint),
		UsePathStyle:               true,
		Region:                     cfg.Region,
		Credentials:                creds,
		HTTPClient:                 hc,
		Retryer:                    aws.NopRetryer{},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if !cfg.SignPayload {
		opts.APIOptions = append(opts.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	}
	return s3.New(opts)
}

// ensureBucket creates the bucket unless it exists.
func ensureBucket(ctx context.Context, c *s3.Client, bucket string) error {
	const op = "bench.ensureBucket"
	_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	if err == nil {
		return nil
	}
	if httpStatus(err) != http.StatusNotFound {
		return kerr.E(op, err)
	}
	_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	switch errorCode(err) {
	case "", "BucketAlreadyOwnedByYou":
		return nil
	}
	return kerr.E(op, err)
}

// errorCode is the S3 error code of err, "" for nil or a non-S3 error.
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// httpStatus is the HTTP status of a failed response, 0 if there was none.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
