package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// runMain runs the command line and returns its exit code, stdout and
// stderr.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
	return code, out.String(), errOut.String()
}

// runJSON runs the command line with --json and decodes the report.
func runJSON(t *testing.T, wantCode int, args ...string) map[string]any {
	t.Helper()
	code, out, errOut := runMain(t, append(args, "--json")...)
	if code != wantCode {
		t.Fatalf("%q: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, out, errOut)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("%q: want one JSON line, got %q", args, out)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%q: %v in %q", args, err, out)
	}
	return rep
}

// wantFields checks numeric fields of a decoded report.
func wantFields(t *testing.T, what string, rep map[string]any, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		got, ok := rep[k].(float64)
		if !ok || got != v {
			t.Errorf("%s: %s = %v, want %v (report %v)", what, k, rep[k], v, rep)
		}
	}
}

func TestMainEndToEnd(t *testing.T) {
	c := startCluster(t)
	base := []string{"--endpoint", c.URL, "--access-key", testAccessKey, "--secret-key", testSecretKey, "--bucket", "e2e"}
	const size = 64 << 10

	// Flags after the workload word, too.
	put := runJSON(t, ExitOK, append(base, "put", "--size", "64KiB", "--concurrency", "4", "--count", "20")...)
	wantFields(t, "put", put, map[string]float64{
		"objects": 20, "bytes": 20 * size, "errors": 0, "verify_failures": 0, "concurrency": 4, "seed": 1,
	})
	if put["op"] != "put" || put["size"] != "64KiB" || put["bucket"] != "e2e" {
		t.Errorf("put report: %v", put)
	}
	for _, k := range []string{"mb_per_s", "ops_per_s", "seconds", "p50_ms", "p90_ms", "p99_ms", "max_ms"} {
		if v, _ := put[k].(float64); v <= 0 {
			t.Errorf("put: %s = %v, want > 0", k, put[k])
		}
	}

	// get reads and verifies what put left: every object once, in turn.
	get := runJSON(t, ExitOK, append([]string{"get", "--concurrency", "4", "--count", "20"}, base...)...)
	wantFields(t, "get", get, map[string]float64{
		"objects": 20, "bytes": 20 * size, "errors": 0, "verify_failures": 0,
	})
	if get["size"] != "64KiB" {
		t.Errorf("get: size %v, want the size of the objects found, 64KiB", get["size"])
	}

	// The same objects checked against another seed's content: every GET
	// is a verify failure and the exit code says so.
	bad := runJSON(t, ExitFailed, append(base, "get", "--concurrency", "4", "--count", "20", "--seed", "2")...)
	wantFields(t, "wrong seed", bad, map[string]float64{
		"objects": 0, "bytes": 0, "errors": 0, "verify_failures": 20,
	})
	if s, _ := bad["error_samples"].([]any); len(s) == 0 || !strings.Contains(s[0].(string), "content differs at byte") {
		t.Errorf("wrong seed: error_samples = %v", bad["error_samples"])
	}

	// The table, for people.
	code, out, errOut := runMain(t, append(base, "get", "--count", "4")...)
	if code != ExitOK || !strings.Contains(out, "verify failures") || !strings.Contains(out, "\n  get ") && !strings.Contains(out, "get  ") {
		t.Errorf("table: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestMainWorkloadsOnEmptyPrefix(t *testing.T) {
	c := startCluster(t)
	base := []string{"--endpoint", c.URL, "--access-key", testAccessKey, "--secret-key", testSecretKey, "--bucket", "workloads", "--concurrency", "3", "--size", "4KiB-8KiB"}

	// get on an empty prefix writes its own objects first.
	get := runJSON(t, ExitOK, append(base, "get", "--prefix", "g/", "--count", "12", "--objects", "5")...)
	wantFields(t, "get", get, map[string]float64{"objects": 12, "errors": 0, "verify_failures": 0})
	if b, _ := get["bytes"].(float64); b < 12*4096 || b > 12*8192 {
		t.Errorf("get bytes = %v, want 12 objects of 4-8 KiB", b)
	}

	mixed := runJSON(t, ExitOK, append(base, "mixed", "--prefix", "m/", "--mix", "put=2,get=5,delete=1,list=1", "--count", "60")...)
	wantFields(t, "mixed", mixed, map[string]float64{"objects": 60, "errors": 0, "verify_failures": 0})
	if mixed["op"] != "mixed" || mixed["mix"] != "put=2,get=5,delete=1,list=1" {
		t.Errorf("mixed report: %v", mixed)
	}
	ops, _ := mixed["ops"].([]any)
	var sum float64
	for _, o := range ops {
		sum += o.(map[string]any)["objects"].(float64)
	}
	if len(ops) < 2 || sum != 60 {
		t.Errorf("mixed ops = %v, want per-op rows summing to 60", ops)
	}

	list := runJSON(t, ExitOK, append(base, "list", "--prefix", "g/", "--count", "4", "--page-size", "2")...)
	wantFields(t, "list", list, map[string]float64{"objects": 4, "keys": 8, "bytes": 0, "errors": 0})

	// delete removes the 5 objects get wrote, then stops: nothing is left.
	del := runJSON(t, ExitOK, append(base, "delete", "--prefix", "g/", "--duration", "30s")...)
	wantFields(t, "delete", del, map[string]float64{"objects": 5, "errors": 0})
	cfg := Config{Endpoint: c.URL, AccessKey: testAccessKey, SecretKey: testSecretKey, Workload: WorkloadList}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	left, err := newS3Client(&cfg).ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("workloads"), Prefix: aws.String("g/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(left.Contents) != 0 {
		t.Errorf("after delete: %d keys left under g/", len(left.Contents))
	}
}
