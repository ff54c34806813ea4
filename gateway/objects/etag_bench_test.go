package objects

import (
	"crypto/md5"
	"fmt"
	"hash"
	"sync"
	"syscall"
	"testing"
	"time"

	md5simd "github.com/minio/md5-simd"
)

// BenchmarkETagMD5 compares the ETag's MD5 from crypto/md5 with md5-simd,
// one md5-simd server shared by every concurrent PUT as a gateway would
// share it, for 1, 2, 8 and 16 concurrent bodies written in 1 MiB pieces (the
// size of the reads a PUT body feeds the hash). cpu-ns/B is the process's
// CPU time per hashed byte: on a shared machine it moves less than the
// wall-clock MB/s.
func BenchmarkETagMD5(b *testing.B) {
	const piece = 1 << 20
	buf := make([]byte, piece)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	srv := md5simd.NewServer()
	defer srv.Close()
	impls := []struct {
		name string
		new  func() (hash.Hash, func())
	}{
		{"crypto-md5", func() (hash.Hash, func()) { return md5.New(), func() {} }},
		{"md5-simd", func() (hash.Hash, func()) { h := srv.NewHash(); return h, h.Close }},
	}
	for _, size := range []int{1 << 20, 16 << 20} {
		for _, streams := range []int{1, 2, 8, 16} {
			for _, im := range impls {
				b.Run(fmt.Sprintf("%dMiB/streams=%d/%s", size>>20, streams, im.name), func(b *testing.B) {
					b.SetBytes(int64(size * streams))
					cpu0 := cpuTime()
					for range b.N {
						var wg sync.WaitGroup
						for range streams {
							wg.Add(1)
							go func() {
								defer wg.Done()
								h, done := im.new()
								defer done()
								for off := 0; off < size; off += piece {
									h.Write(buf)
								}
								h.Sum(nil)
							}()
						}
						wg.Wait()
					}
					b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*size*streams), "cpu-ns/B")
				})
			}
		}
	}
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestMD5SIMDMatchesCryptoMD5 guards the comparison: both give the MD5
// S3 clients check, over the piece sizes PUT bodies arrive in.
func TestMD5SIMDMatchesCryptoMD5(t *testing.T) {
	srv := md5simd.NewServer()
	defer srv.Close()
	for _, n := range []int{0, 1, 63, 64, 65, 4096, 1<<20 + 3} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*31 + n)
		}
		h := srv.NewHash()
		h.Write(b[:n/3])
		h.Write(b[n/3:])
		got := h.Sum(nil)
		h.Close()
		if want := md5.Sum(b); string(got) != string(want[:]) {
			t.Errorf("%d bytes: md5-simd %x, crypto/md5 %x", n, got, want)
		}
	}
}
