package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kintsugi-store/kintsugi/scrubber"
)

// TestPrintIncomplete: with one node down, the text report gives one
// INCOMPLETE line per kind with its count and five examples, not a line
// per object.
func TestPrintIncomplete(t *testing.T) {
	r := &scrubber.Report{}
	for i := range 1200 {
		r.Incomplete = append(r.Incomplete, fmt.Sprintf("photos/k%04d version V: shard 2: its node n3 did not answer", i))
	}
	r.Incomplete = append(r.Incomplete, "node n3: listing hints: connection refused")
	r.IncompleteKinds = scrubber.SummariseIncomplete(r.Incomplete)
	r.IncompleteCount = int64(len(r.Incomplete))
	var b strings.Builder
	printIncomplete(&b, r)
	want := `INCOMPLETE node n3 did not answer: 1200
  photos/k0000 version V: shard 2: its node n3 did not answer
  photos/k0001 version V: shard 2: its node n3 did not answer
  photos/k0002 version V: shard 2: its node n3 did not answer
  photos/k0003 version V: shard 2: its node n3 did not answer
  photos/k0004 version V: shard 2: its node n3 did not answer
  ... and 1195 more (see --report json)
INCOMPLETE node n3: listing failed: 1
  node n3: listing hints: connection refused
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestBelowFullStatus: kintsugi admin status says how many objects are
// below full redundancy and why, from the scrubber daemon's last pass, or
// that it does not know and why not.
func TestBelowFullStatus(t *testing.T) {
	finished := time.Date(2026, 12, 6, 3, 17, 0, 0, time.UTC)
	status := func(lp *scrubber.Report) json.RawMessage {
		b, err := json.Marshal(scrubber.Status{LastPass: lp})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name, addr string
		raw        json.RawMessage
		err        string
		want       string
	}{
		{"no scrubber", "", nil, "",
			"below full redundancy: unknown: no scrub report (name a scrubber daemon with --scrubber HOST:PORT)\n"},
		{"scrubber unreachable", "10.0.0.9:9300", nil, "scrubber 10.0.0.9:9300: connection refused",
			"below full redundancy: unknown: scrubber 10.0.0.9:9300: connection refused\n"},
		{"no pass yet", "10.0.0.9:9300", status(nil), "",
			"below full redundancy: unknown: scrubber 10.0.0.9:9300 has finished no pass yet\n"},
		{"healthy", "10.0.0.9:9300", status(&scrubber.Report{Finished: finished, RedundancyAfter: map[int]int64{6: 40}}), "",
			"below full redundancy: 0 objects (scrubber 10.0.0.9:9300, pass finished 2026-12-06T03:17:00Z)\n"},
		{"node down", "10.0.0.9:9300", status(&scrubber.Report{
			Finished: finished, RedundancyAfter: map[int]int64{6: 10, 5: 30},
			ShardsMissing: 30, ShardsCorrupt: 1, ShardsRebuilt: 1, RepairsFailed: 30,
			IncompleteKinds: []scrubber.IncompleteKind{{Kind: "node n3 did not answer", Count: 30}},
		}), "",
			"below full redundancy: 30 objects (scrubber 10.0.0.9:9300, pass finished 2026-12-06T03:17:00Z): " +
				"node n3 down (30); 30 shards missing; 1 shards corrupt; 1 rebuilt, 30 rebuilds failed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			printBelowFull(&b, belowFullOf(tt.addr, tt.raw, tt.err, 6))
			if b.String() != tt.want {
				t.Errorf("got  %q\nwant %q", b.String(), tt.want)
			}
		})
	}
}
