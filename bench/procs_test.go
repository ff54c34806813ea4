package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/proctest"
)

// BenchmarkProcs runs the sizes and concurrencies of BenchmarkPut and
// BenchmarkGet, healthy and with p nodes down, against a multi-process
// cluster: 6 `kintsugi storagenode` processes and a `kintsugi gateway`,
// each a separate OS process on loopback, as deployed. It builds the
// binary and starts the cluster first (several seconds), so it runs only
// with KINTSUGI_BENCH_PROCS=1. The whole matrix takes a while; a pattern
// narrows it, here to concurrency 8:
//
//	KINTSUGI_BENCH_PROCS=1 go test -run '^$' -bench 'Procs/././^c8$' ./bench
func BenchmarkProcs(b *testing.B) {
	if os.Getenv("KINTSUGI_BENCH_PROCS") != "1" {
		b.Skip("multi-process benchmarks run with KINTSUGI_BENCH_PROCS=1")
	}
	bin, err := proctest.BuildBinary(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	c := proctest.StartCluster(b, bin, proctest.Options{})
	var pids []int
	for _, p := range append(c.Gateways, c.Nodes...) {
		pids = append(pids, p.Pid())
	}
	t := target{
		client: benchClient(b, c.Endpoint(0), c.AccessKey, c.SecretKey),
		cpu:    func() time.Duration { return processCPU() + procCPU(pids) },
	}
	sizes, concs := benchSizes(), benchConcurrency
	b.Run("Put", func(b *testing.B) { benchPuts(b, t, sizes, concs) })
	putGetObjects(b, t, sizes)
	b.Run("Get", func(b *testing.B) { benchGets(b, t, sizes, concs) })
	c.Nodes[0].Kill()
	c.Nodes[1].Kill()
	// Killed processes use no more CPU; reading their /proc entries fails
	// and counts as nothing.
	b.Run("GetDegraded", func(b *testing.B) { benchGets(b, t, sizes, concs) })
}

// procCPU returns the CPU time (user + system) the processes pids have
// used, from /proc/<pid>/stat; processes that are gone count as zero.
func procCPU(pids []int) time.Duration {
	// USER_HZ, the unit of the utime and stime fields, is 100 on every
	// Linux architecture Go supports.
	const tick = 10 * time.Millisecond
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The command name, field 2, is in parentheses and may hold spaces;
		// utime and stime are fields 14 and 15, i.e. the 12th and 13th
		// after it.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(u+st) * tick
	}
	return total
}
