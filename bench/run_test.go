package bench

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// listKeys returns every key under prefix in bucket, in listing order.
func listKeys(t *testing.T, endpoint, bucket, prefix string) []string {
	t.Helper()
	cfg := Config{Endpoint: endpoint, AccessKey: testAccessKey, SecretKey: testSecretKey, Bucket: bucket, Workload: WorkloadList}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	p := s3.NewListObjectsV2Paginator(newS3Client(&cfg), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// objectKeys returns ObjectKey(prefix, n, size) for n in [from, to), sorted
// as a listing returns them.
func objectKeys(prefix string, from, to uint64, size int64) []string {
	var keys []string
	for n := from; n < to; n++ {
		keys = append(keys, ObjectKey(prefix, n, size))
	}
	slices.Sort(keys)
	return keys
}

func TestPutRunsNeverOverwrite(t *testing.T) {
	c := startCluster(t)
	const bucket, prefix = "runs", "p/"
	base := []string{"--endpoint", c.URL, "--access-key", testAccessKey, "--secret-key", testSecretKey,
		"--bucket", bucket, "--prefix", prefix, "--concurrency", "3"}

	first := runJSON(t, ExitOK, append(base, "put", "--size", "4KiB", "--count", "10")...)
	wantFields(t, "first put", first, map[string]float64{"objects": 10, "errors": 0})
	if got, want := listKeys(t, c.URL, bucket, prefix), objectKeys(prefix, 0, 10, 4096); !slices.Equal(got, want) {
		t.Fatalf("after the first put: keys %q, want %q", got, want)
	}

	// Keys that are not of the generator's naming, or lie deeper than the
	// prefix, neither stop a run nor move its numbering.
	cfg := Config{Endpoint: c.URL, AccessKey: testAccessKey, SecretKey: testSecretKey, Workload: WorkloadPut}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	foreign := []string{prefix + "obj-099-4096", prefix + "obj-50-4096.bak", prefix + "sub/obj-77-4096"}
	for _, k := range foreign {
		if _, err := newS3Client(&cfg).PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader([]byte("not ours")),
		}); err != nil {
			t.Fatal(err)
		}
	}

	// The same command again: ten more objects, numbered after the first
	// run's, which stay as they were.
	second := runJSON(t, ExitOK, append(base, "put", "--size", "4KiB", "--count", "10")...)
	wantFields(t, "second put", second, map[string]float64{"objects": 10, "errors": 0})
	// Another size: the numbering follows every object of ours, whatever
	// its size.
	third := runJSON(t, ExitOK, append(base, "put", "--size", "8KiB", "--count", "5")...)
	wantFields(t, "third put", third, map[string]float64{"objects": 5, "errors": 0})

	want := append(objectKeys(prefix, 0, 20, 4096), objectKeys(prefix, 20, 25, 8192)...)
	want = append(want, foreign...)
	slices.Sort(want)
	if got := listKeys(t, c.URL, bucket, prefix); !slices.Equal(got, want) {
		t.Errorf("after three puts: %d keys %q\nwant %d keys %q", len(got), got, len(want), want)
	}

	// get reads every object of both 4 KiB runs once, round robin, and
	// verifies each byte for byte.
	get := runJSON(t, ExitOK, append(base, "get", "--size", "4KiB", "--count", "20")...)
	wantFields(t, "get 4KiB", get, map[string]float64{"objects": 20, "bytes": 20 * 4096, "errors": 0, "verify_failures": 0})
	// Without --size, it reads all 25 objects of the three runs.
	all := runJSON(t, ExitOK, append(base, "get", "--count", "25")...)
	wantFields(t, "get all", all, map[string]float64{"objects": 25, "bytes": 20*4096 + 5*8192, "errors": 0, "verify_failures": 0})
	if all["size"] != "4KiB-8KiB" {
		t.Errorf("get all: size %v, want the range of the objects found, 4KiB-8KiB", all["size"])
	}

	// An object with the last possible number leaves none to count on
	// with: put refuses to start rather than wrap around to 0.
	last := ObjectKey("q/", 1<<64-1, 8)
	if _, err := newS3Client(&cfg).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(last), Body: bytes.NewReader(make([]byte, 8)),
	}); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runMain(t, "--endpoint", c.URL, "--access-key", testAccessKey, "--secret-key", testSecretKey,
		"--bucket", bucket, "--prefix", "q/", "put", "--count", "1")
	if code != ExitFailed || !strings.Contains(stderr, `object "q/obj-18446744073709551615-8" leaves no number for new objects`) {
		t.Errorf("put after the last number: exit %d, stderr %q", code, stderr)
	}
	if got := listKeys(t, c.URL, bucket, "q/"); !slices.Equal(got, []string{last}) {
		t.Errorf("put after the last number: keys %q, want only %q", got, last)
	}
}
