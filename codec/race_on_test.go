//go:build race

package codec

// raceEnabled: the race detector makes sync.Pool drop a random share of
// the buffers put back, so allocation counts mean nothing under it.
const raceEnabled = true
