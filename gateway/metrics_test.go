package gateway

import (
	"net/http/httptest"
	"testing"
)

func TestOperation(t *testing.T) {
	tests := []struct {
		method, target, copySrc string
		domain, host            string
		want                    string
	}{
		{method: "GET", target: "/", want: "ListBuckets"},
		{method: "PUT", target: "/b", want: "CreateBucket"},
		{method: "HEAD", target: "/b", want: "HeadBucket"},
		{method: "DELETE", target: "/b/", want: "DeleteBucket"},
		{method: "GET", target: "/b", want: "ListObjects"},
		{method: "GET", target: "/b?list-type=2&prefix=a", want: "ListObjectsV2"},
		{method: "GET", target: "/b?location", want: "GetBucketLocation"},
		{method: "GET", target: "/b?uploads", want: "ListMultipartUploads"},
		{method: "POST", target: "/b?delete", want: "DeleteObjects"},
		{method: "PUT", target: "/b/k", want: "PutObject"},
		{method: "PUT", target: "/b/k", copySrc: "/b/o", want: "CopyObject"},
		{method: "PUT", target: "/b/k?partNumber=1&uploadId=u", want: "UploadPart"},
		{method: "PUT", target: "/b/k?partNumber=1&uploadId=u", copySrc: "/b/o", want: "UploadPartCopy"},
		{method: "GET", target: "/b/a/b/c", want: "GetObject"},
		{method: "GET", target: "/b/k?uploadId=u", want: "ListParts"},
		{method: "HEAD", target: "/b/k", want: "HeadObject"},
		{method: "DELETE", target: "/b/k", want: "DeleteObject"},
		{method: "DELETE", target: "/b/k?uploadId=u", want: "AbortMultipartUpload"},
		{method: "POST", target: "/b/k?uploads", want: "CreateMultipartUpload"},
		{method: "POST", target: "/b/k?uploadId=u", want: "CompleteMultipartUpload"},
		{method: "POST", target: "/b/k", want: "Other"},
		{method: "PATCH", target: "/b/k", want: "Other"},
		{method: "GET", target: "/b/k?tagging", want: "GetObjectTagging"},
		{method: "PUT", target: "/b/k?tagging", want: "PutObjectTagging"},
		{method: "DELETE", target: "/b/k?tagging", want: "DeleteObjectTagging"},
		{method: "PUT", target: "/b?tagging", want: "PutBucketTagging"},
		{method: "GET", target: "/b?tagging", want: "GetBucketTagging"},
		{method: "DELETE", target: "/b?cors", want: "DeleteBucketCors"},
		{method: "PUT", target: "/b?cors", want: "PutBucketCors"},
		{method: "OPTIONS", target: "/b/k", want: "PreflightRequest"},
		{method: "POST", target: "/b/k?tagging", want: "Other"},
		// Virtual-hosted: the bucket is in the Host.
		{method: "GET", target: "/k", domain: "s3.example.com", host: "b.s3.example.com", want: "GetObject"},
		{method: "GET", target: "/", domain: "s3.example.com", host: "b.s3.example.com", want: "ListObjects"},
	}
	for _, tt := range tests {
		g := &Gateway{domains: parseDomains(tt.domain)}
		r := httptest.NewRequest(tt.method, tt.target, nil)
		if tt.host != "" {
			r.Host = tt.host
		}
		if tt.copySrc != "" {
			r.Header.Set("X-Amz-Copy-Source", tt.copySrc)
		}
		bucket, key := g.bucketKey(r)
		if got := operation(r, bucket, key); got != tt.want {
			t.Errorf("%s %s (host %q): operation %q, want %q", tt.method, tt.target, tt.host, got, tt.want)
		}
	}
}
