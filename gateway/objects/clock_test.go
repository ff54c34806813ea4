package objects

import (
	"strconv"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

func TestVersionClock(t *testing.T) {
	at := func(d time.Duration) string {
		id := newULID(ulid.Timestamp(testNow.Add(d)))
		return id.String()
	}
	tests := []struct {
		name    string
		observe []string // before the stage version is named
		after   []string // after it, before the commit version
		keep    bool     // the commit keeps the stage version
		junk    bool     // after names no version: the clock ignores it
	}{
		{name: "nothing seen", keep: true},
		{name: "older versions seen", observe: []string{at(-time.Hour)}, after: []string{at(-time.Second)}, keep: true},
		{name: "a version 5s ahead seen before", observe: []string{at(5 * time.Second)}, keep: true},
		{name: "a version 5s ahead seen after", after: []string{at(5 * time.Second)}},
		{name: "the largest version", after: []string{maxVersion}},
		{name: "not a version", after: []string{"v1", ""}, keep: true, junk: true},
		// A re-code names the version it replaced plus a generation:
		// the clock must name the next version above the re-code.
		{name: "a re-code 5s ahead seen before", observe: []string{client.RecodeVersion(at(5 * time.Second))}, keep: true},
		{name: "a re-code 5s ahead seen after", after: []string{client.RecodeVersion(at(5 * time.Second))}},
		// So must a later generation of it, up to the last.
		{name: "a second re-code 5s ahead seen after", after: []string{at(5*time.Second) + ".2"}},
		{name: "a last re-code 5s ahead seen after", after: []string{at(5*time.Second) + "." + strconv.Itoa(client.MaxRecodeGeneration)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := versionClock{now: func() time.Time { return testNow }}
			seen := ""
			for _, v := range tt.observe {
				c.observe(v)
				seen = max(seen, v)
			}
			stage := c.next()
			if stage <= seen {
				t.Fatalf("stage version %s not above %s", stage, seen)
			}
			for _, v := range tt.after {
				c.observe(v)
				if !tt.junk {
					seen = max(seen, v)
				}
			}
			commit := c.after(stage)
			if got := commit == stage; got != tt.keep {
				t.Errorf("commit %s, stage %s: kept %v, want %v", commit, stage, got, tt.keep)
			}
			if commit < stage || (commit <= seen && seen != maxVersion) {
				t.Errorf("commit %s not above stage %s and every version seen (%s)", commit, stage, seen)
			}
		})
	}
}

// TestBumpOverflows: the entropy increment carries into the high bits and
// reports an overflow of all 80.
func TestBumpOverflows(t *testing.T) {
	var id ulid.ULID
	id.SetTime(1)
	for i := 8; i < 16; i++ {
		id[i] = 0xff
	}
	next, ok := bump(id)
	if !ok || next.Compare(id) <= 0 || next[7] != 1 {
		t.Fatalf("bump(%x) = %x, %v; want a carry into the high entropy bits", id[:], next[:], ok)
	}
	for i := 6; i < 16; i++ {
		id[i] = 0xff
	}
	if _, ok := bump(id); ok {
		t.Fatal("bump of the largest entropy did not report an overflow")
	}
}
