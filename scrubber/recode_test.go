package scrubber

import (
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// TestRecodeNamesKeepTheirBaseTime: a re-code's name counts as its base
// version for the version a lifecycle marker takes above it and for a
// marker's age.
func TestRecodeNamesKeepTheirBaseTime(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	ahead := ulid.MustNew(ulid.Timestamp(now.Add(time.Hour)), ulid.DefaultEntropy()).String()
	r := client.RecodeVersion(ahead)
	got := versionAbove(r, now)
	if got <= r || client.CheckVersion(got) != nil || client.IsRecode(got) {
		t.Fatalf("versionAbove(%s) = %s, want a plain version above it", r, got)
	}
	m := client.ObjectMeta{Version: r, Deleted: true}
	if at := markerTime(m); !at.Equal(now.Add(time.Hour)) {
		t.Fatalf("markerTime of %s = %v, want %v", r, at, now.Add(time.Hour))
	}
}
