package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
)

// vmHWM returns a process's peak resident set size in bytes.
func vmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", pid)
}

// TestGatewayMemoryBounded streams a 1 GiB object through a gateway process
// and back, and checks the gateway's peak RSS grew by less than 64 MiB:
// memory per request is bounded by a few stripes, not by the object size.
func TestGatewayMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1 GiB through a multi-process cluster; run without -short")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc to read the gateway's peak RSS")
	}
	ctx := context.Background()
	c := proctest.StartCluster(t, testBin, proctest.Options{})
	cl := s3Client(c, 0)
	mustCreateBucket(t, ctx, cl, "mem")
	// Warm up connection pools and buffers so the baseline is honest.
	if err := putObject(ctx, cl, "mem", "warm", newGen(1, 4<<20), 4<<20); err != nil {
		t.Fatal(err)
	}
	if _, _, err := getSum(ctx, cl, "mem", "warm"); err != nil {
		t.Fatal(err)
	}
	pid := c.Gateways[0].Pid()
	before, err := vmHWM(pid)
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 30
	if err := putObject(ctx, cl, "mem", "huge", newGen(42, size), size); err != nil {
		t.Fatalf("PUT 1 GiB: %v\n%s", err, c.Logs())
	}
	afterPut, _ := vmHWM(pid)
	sum, n, err := getSum(ctx, cl, "mem", "huge")
	if want := genSum(42, size); err != nil || n != size || sum != want {
		t.Fatalf("GET 1 GiB: err %v, %d bytes, exact %v", err, n, sum == want)
	}
	after, _ := vmHWM(pid)
	t.Logf("gateway peak RSS: %d MiB before, %d MiB after PUT, %d MiB after GET", before>>20, afterPut>>20, after>>20)
	if growth := after - before; growth > 64<<20 {
		t.Fatalf("gateway peak RSS grew by %d MiB streaming 1 GiB; want < 64 MiB", growth>>20)
	}
}
