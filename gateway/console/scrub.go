package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/kerr"
)

// ScrubStatus is the part of a scrubber daemon's GET /status the console
// shows. The field names are the daemon's JSON (scrubber.Status); the
// console decodes them over HTTP rather than importing the scrubber, so
// that a gateway never links the scrubber's code.
type ScrubStatus struct {
	Running                 bool           `json:"running"`
	Progress                *ScrubProgress `json:"progress"`
	RepairsInFlight         int64          `json:"repairs_in_flight"`
	MovesInFlight           int64          `json:"moves_in_flight"`
	MapEpoch                uint64         `json:"map_epoch"`
	IntervalSeconds         float64        `json:"interval_seconds"`
	NextPass                time.Time      `json:"next_pass"`
	LastError               string         `json:"last_error"`
	Redundancy              []ScrubLevel   `json:"redundancy"`
	OldestUnverifiedSeconds float64        `json:"oldest_unverified_seconds"`
	LastPass                *ScrubReport   `json:"last_pass"`
}

// ScrubProgress is where a running pass stands.
type ScrubProgress struct {
	Phase        string `json:"phase"`
	Objects      int64  `json:"objects"`
	Estimated    int64  `json:"estimated"`
	Queue        int    `json:"queue"`
	Rebuilt      int64  `json:"rebuilt"`
	MovesPlanned int64  `json:"moves_planned"`
	MovesDone    int64  `json:"moves_done"`
	MovesFailed  int64  `json:"moves_failed"`
	BytesMoved   int64  `json:"bytes_moved"`
}

// ScrubLevel is a redundancy level ("6", ..., "4", "below 4", "above 6")
// and the objects at it after the last pass.
type ScrubLevel struct {
	Level   string `json:"level"`
	Objects int64  `json:"objects"`
}

// ScrubReport is the last finished pass.
type ScrubReport struct {
	Started            time.Time `json:"started"`
	Finished           time.Time `json:"finished"`
	Seconds            float64   `json:"duration_seconds"`
	Objects            int64     `json:"objects"`
	ShardsRebuilt      int64     `json:"shards_rebuilt"`
	BytesRebuilt       int64     `json:"bytes_rebuilt"`
	RepairsFailed      int64     `json:"repairs_failed"`
	MovesPlanned       int64     `json:"moves_planned"`
	MovesDone          int64     `json:"moves_done"`
	MovesFailed        int64     `json:"moves_failed"`
	BytesMoved         int64     `json:"bytes_moved"`
	UnrecoverableCount int64     `json:"unrecoverable_count"`
	IncompleteCount    int64     `json:"incomplete_count"`
}

// RepairWindow is how long a shard lost now stays lost, as this
// scrubber works: until the next pass starts (at most an interval away)
// and gets through the objects (as long as the last pass took). Zero when
// the daemon has not finished a pass.
func (s *ScrubStatus) RepairWindow() time.Duration {
	if s.LastPass == nil || s.LastPass.Finished.IsZero() {
		return 0
	}
	return time.Duration((s.IntervalSeconds + s.LastPass.Seconds) * float64(time.Second))
}

// Levels returns the redundancy levels as healthy-shard counts for the
// durability estimate. "below d" counts as d-1 (unreadable); "above n",
// objects of another layout, count as n.
func (s *ScrubStatus) Levels(d, n int) []LevelCount {
	var out []LevelCount
	for _, l := range s.Redundancy {
		switch {
		case strings.HasPrefix(l.Level, "below "):
			out = append(out, LevelCount{Healthy: d - 1, Objects: l.Objects})
		case strings.HasPrefix(l.Level, "above "):
			out = append(out, LevelCount{Healthy: n, Objects: l.Objects})
		default:
			h, err := strconv.Atoi(l.Level)
			if err != nil {
				continue
			}
			out = append(out, LevelCount{Healthy: h, Objects: l.Objects})
		}
	}
	return out
}

// ScrubSource answers a scrubber daemon's status.
type ScrubSource interface {
	ScrubStatus(ctx context.Context) (*ScrubStatus, error)
}

// HTTPScrubber asks a scrubber daemon's GET /status at BaseURL
// (http://HOST:PORT).
type HTTPScrubber struct {
	BaseURL string
	Client  *http.Client // nil: http.DefaultClient
}

// ScrubStatus fetches and decodes the daemon's status. ctx bounds the
// whole call.
func (h *HTTPScrubber) ScrubStatus(ctx context.Context) (*ScrubStatus, error) {
	const op = "console.ScrubStatus"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(h.BaseURL, "/")+"/status", nil)
	if err != nil {
		return nil, kerr.E(op, kerr.Invalid, err)
	}
	cl := h.Client
	if cl == nil {
		cl = http.DefaultClient
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, kerr.E(op, kerr.Unavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, kerr.E(op, kerr.Unavailable, fmt.Errorf("scrubber answered %s", resp.Status))
	}
	var st ScrubStatus
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&st); err != nil {
		return nil, kerr.E(op, kerr.Invalid, fmt.Errorf("decoding the scrubber's status: %w", err))
	}
	return &st, nil
}
