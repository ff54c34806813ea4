package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// `kintsugi dev` holds a gateway, every storage node and the scrubber in
// one process, and the Go runtime's defaults, made for one service per
// process, leave it holding far more memory than it uses:
//
//   - With GOGC=100 the heap grows to twice its live size between
//     collections. While the scrubber walks the objects, allocating
//     hundreds of MB/s in request buffers, the process sits at that peak.
//   - Memory freed after a burst (a fill, the nodes' index compactions, a
//     scrub pass) goes back to the OS only once two collections have
//     passed over it, and an idle process collects once every two
//     minutes: after a 3,000-object fill of a cluster holding 30,000, the
//     process kept 530 MiB of heap for minutes.
//
// A soft memory limit bounds the first; returning the free heap once the
// process has gone quiet settles the second within one period.

const (
	// defaultDevMemoryLimit is the default soft limit on the memory the Go
	// runtime manages. It leaves room for a busy cluster (32 concurrent
	// 64 MiB PUTs peak near 250 MiB in all) and caps nothing: a live heap
	// above it only makes the collector run more often.
	defaultDevMemoryLimit = "256MiB"

	// releaseEvery is how often the process checks whether it is quiet.
	releaseEvery = 15 * time.Second
	// quietAllocs is the most a quiet process allocates in one period:
	// heartbeats and status polls allocate far less, a request load or a
	// scrub pass far more.
	quietAllocs = 16 << 20
	// releaseMin is the least reclaimable heap worth a collection.
	releaseMin = 16 << 20
)

// setMemoryLimit applies a soft memory limit of limit bytes (0: leave the
// runtime's) unless the environment sets GOMEMLIMIT, which wins.
func setMemoryLimit(env *environ, limit int64) {
	if env.getenv("GOMEMLIMIT") != "" || limit <= 0 {
		return
	}
	debug.SetMemoryLimit(limit)
}

// heapStats is what releaseIdleMemory reads of the runtime, in bytes.
type heapStats struct {
	allocs  uint64 // allocated since the process started
	free    uint64 // free heap not yet returned to the OS
	objects uint64 // live objects plus garbage not yet collected
	live    uint64 // live heap at the end of the last collection
}

var heapMetrics = []string{
	"/gc/heap/allocs:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/objects:bytes",
	"/gc/heap/live:bytes",
}

func readHeapStats(samples []metrics.Sample) heapStats {
	metrics.Read(samples)
	return heapStats{
		allocs:  samples[0].Value.Uint64(),
		free:    samples[1].Value.Uint64(),
		objects: samples[2].Value.Uint64(),
		live:    samples[3].Value.Uint64(),
	}
}

// shouldRelease reports whether, between the readings prev and cur, the
// process was quiet and holds enough free heap and garbage to be worth a
// collection that returns it.
func shouldRelease(prev, cur heapStats) bool {
	quiet := cur.allocs-prev.allocs < quietAllocs
	garbage := cur.objects - min(cur.objects, cur.live)
	return quiet && cur.free+garbage >= releaseMin
}

// releaseIdleMemory collects and returns the free heap to the OS at the
// end of every period of length every in which the process was quiet,
// until ctx is done. It costs one collection of the live heap per quiet
// period with memory to return, and nothing while the process is busy.
func releaseIdleMemory(ctx context.Context, every time.Duration) {
	samples := make([]metrics.Sample, len(heapMetrics))
	for i, name := range heapMetrics {
		samples[i].Name = name
	}
	t := time.NewTicker(every)
	defer t.Stop()
	releaseOnTicks(ctx, t.C, func() heapStats { return readHeapStats(samples) }, debug.FreeOSMemory)
}

// releaseOnTicks is releaseIdleMemory's loop: at every tick it reads the
// heap and calls release if the period since the last tick was quiet
// with memory to return.
func releaseOnTicks(ctx context.Context, ticks <-chan time.Time, read func() heapStats, release func()) {
	prev := read()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		cur := read()
		if shouldRelease(prev, cur) {
			release()
			cur = read() // the collection's own allocations are not load
		}
		prev = cur
	}
}
