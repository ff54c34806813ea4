package storagenode

import (
	"bytes"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/kintsugi-store/kintsugi/storagenode/client"
)

// goldenScrubStatus is the status whose checkpoint, as the verifier wrote
// it when it stored the whole ScrubStatus, testdata/scrub-checkpoint.json
// holds. Never regenerate that file: it is what data directories hold.
func goldenScrubStatus() client.ScrubStatus {
	return client.ScrubStatus{
		Rate: 1 << 20, PeriodSeconds: 86400, Running: true,
		Pass: 7, PassStarted: time.Date(2025, 5, 6, 7, 8, 9, 10, time.UTC), Position: "photos/2025/cat.jpg",
		PassShards: 1234, PassBytes: 5 << 30,
		LastPassStarted: time.Date(2025, 5, 5, 7, 8, 9, 0, time.UTC), LastPassFinished: time.Date(2025, 5, 5, 9, 0, 0, 0, time.UTC),
		Shards: 99999, Bytes: 1 << 40, Corrupt: 3, Missing: 2,
		Quarantined:       1,
		QuarantinedShards: []client.QuarantinedShard{{Bucket: "photos", Key: "k", Version: "01JGQ4M6Q8XW2Z3C5V7B9N1M3K", Shard: 2, Reason: "block 3", Time: time.Date(2025, 5, 5, 8, 0, 0, 0, time.UTC)}},
	}
}

// TestCheckpointGolden checks that a checkpoint written in the first
// format still loads, with everything a restart resumes from.
func TestCheckpointGolden(t *testing.T) {
	b, err := os.ReadFile("testdata/scrub-checkpoint.json")
	if err != nil {
		t.Fatal(err)
	}
	var cp checkpoint
	if err := json.Unmarshal(bytes.TrimSpace(b), &cp); err != nil {
		t.Fatal(err)
	}
	want := goldenScrubStatus()
	want.Rate, want.PeriodSeconds, want.Quarantined, want.QuarantinedShards = 0, 0, 0, nil
	if got := cp.status(); !reflect.DeepEqual(got, want) {
		t.Errorf("loaded %+v, want %+v", got, want)
	}
	if got := checkpointOf(want).status(); !reflect.DeepEqual(got, want) {
		t.Errorf("round trip %+v, want %+v", got, want)
	}
}
