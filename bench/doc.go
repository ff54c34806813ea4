// Package bench measures Kintsugi, or any other S3 server, the way its
// users would: through the S3 API.
//
// It owns the load generator behind `kintsugi bench` (Run, Config, Report,
// Main) and the end-to-end Go benchmarks in its test files: PUT and GET
// through the AWS SDK against an in-process cluster (6 storage nodes and a
// gateway on loopback HTTP servers) and, with KINTSUGI_BENCH_PROCS=1,
// against a multi-process one. Every end-to-end benchmark also reports its
// efficiency: its throughput divided by the pipeline bound, the same bytes
// pushed through MD5, Reed-Solomon and blake3 in memory on the same number
// of goroutines (see docs/benchmarks.md).
//
// # Load generator
//
// Workloads are put, get, mixed (weighted put/get/delete/list), list and
// delete, at a fixed object size or a uniform size range, with a given
// number of requests in flight, for a duration or a number of operations,
// after an optional warm-up. Objects are named <prefix>obj-<n>-<size>, and
// their content is a pure function of (seed, key, size) (Source), so every
// GET is checked byte for byte against what was written, by this run or by
// an earlier one with the same seed, without keeping any record of it. A
// body that differs counts as a verify failure, never as a success. A run
// lists its prefix first and numbers the objects it writes after the
// highest n there, so repeated put runs add objects instead of replacing
// them, and a later get reads all of them.
//
// Results are latency histograms (Histogram: log-linear buckets, 3%
// precision) per kind of operation and per second, rendered as a table,
// one JSON object, or a self-contained HTML chart.
//
// The generator speaks plain S3 (SigV4, path-style) and nothing else: it
// must never use Kintsugi internals, so that its figures for Kintsugi and
// for any other S3 server are comparable. It only ever deletes or
// overwrites keys of its own naming under the prefix it is given.
package bench
