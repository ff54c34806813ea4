package console

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/kintsugi-store/kintsugi/internal/health"
	"github.com/kintsugi-store/kintsugi/placement"
)

// view is what the templates render: every figure already formatted, so
// the templates hold layout only.
type view struct {
	At           time.Time
	Epoch        uint64
	Data, Parity int
	Zones        []zoneView
	Answered     int // nodes that answered their health call
	Asked        int
	Seen         []seenRow
	Down         int // nodes this gateway sees down
	Scrub        *scrubView
	ScrubErr     string
	Charts       []chartView
	Durability   durabilityView
}

type zoneView struct {
	Name  string
	Nodes []nodeRow
}

// nodeRow is one node of the map with its own health answer and the
// gateway's view of it.
type nodeRow struct {
	ID, Addr, Zone, State string
	Weight                string
	Answered              bool
	Err                   string
	Objects               int64
	NodeEpoch             uint64
	DiskUsed, DiskTotal   string
	DiskPct               float64
	Seen                  string // up, suspect, down, as this gateway sees it
}

type seenRow struct {
	ID, State, Breaker, Since, P95, LastErr string
}

type scrubView struct {
	Running          bool
	Phase            string
	Checked          int64
	Estimated        int64
	PassPct          float64
	Queue            int
	Rebuilt          int64
	RepairsInFlight  int64
	MovesInFlight    int64
	MovesDone        int64
	MovesPlanned     int64
	MovesFailed      int64
	MovesPct         float64
	BytesMoved       string
	Levels           []ScrubLevel
	Oldest           string
	Window           string
	OldestPct        float64
	OldestLate       bool
	LastPass         string
	LastPassDetail   string
	NextPass         string
	LastError        string
	MapEpoch         uint64
	LastRebuilt      int64
	LastRepairFailed int64
}

type chartView struct {
	Title, Latest, Max, Unit string
	Points                   template.HTMLAttr // points="..." of an SVG polyline
	// Last marks the newest point with a short vertical tick, visible
	// even before the chart has a second point to draw a line to.
	Last  template.HTMLAttr
	Empty bool
	Key   string // for tests and styles
}

type durabilityView struct {
	Known      bool
	Nines      string
	Loss       string
	Objects    int64
	Unreadable int64
	AFR        string
	Window     string
	WindowFrom string
	PerLevel   []levelNines
}

type levelNines struct {
	Healthy int
	Objects string // "unknown" without a scrubber
	Nines   string
}

// build assembles the view from the collected answers.
func (c *Console) build(m *placement.Map, answers []nodeAnswer, seen []health.NodeStatus, scrub *ScrubStatus, scrubErr error) *view {
	now := c.cfg.Now()
	v := &view{At: now, Epoch: m.Epoch, Data: m.DataShards, Parity: m.ParityShards}
	seenBy := map[string]string{}
	for _, s := range seen {
		seenBy[s.ID] = s.State.String()
		row := seenRow{ID: s.ID, State: s.State.String(), Breaker: s.Breaker, LastErr: s.LastErr}
		if !s.Since.IsZero() {
			row.Since = ago(now.Sub(s.Since)) + " ago"
		}
		if s.P95 > 0 {
			row.P95 = fmtDuration(s.P95)
		}
		if s.State == health.Down {
			v.Down++
		}
		v.Seen = append(v.Seen, row)
	}
	var rows []nodeRow
	for i, n := range m.Nodes {
		a := answers[i]
		w := n.Weight
		if w == 0 {
			w = 1
		}
		r := nodeRow{ID: n.ID, Addr: n.Addr, Zone: n.Zone, State: n.State, Weight: strconv.FormatFloat(w, 'g', 4, 64), Seen: seenBy[n.ID]}
		if r.Seen == "" {
			r.Seen = "untracked"
		}
		switch {
		case a.skipped:
			r.Err = "removed: not asked"
		case a.err != nil:
			r.Err = shortErr(a.err)
			v.Asked++
		default:
			v.Asked++
			v.Answered++
			r.Answered = true
			r.Objects, r.NodeEpoch = a.h.Objects, a.h.Epoch
			if a.h.DiskTotal > 0 {
				used := a.h.DiskTotal - min(a.h.DiskFree, a.h.DiskTotal)
				r.DiskUsed, r.DiskTotal = bytesIEC(used), bytesIEC(a.h.DiskTotal)
				r.DiskPct = 100 * float64(used) / float64(a.h.DiskTotal)
			}
		}
		rows = append(rows, r)
	}
	for _, z := range sortedZones(rows) {
		zv := zoneView{Name: z}
		for _, r := range rows {
			if r.Zone == z {
				zv.Nodes = append(zv.Nodes, r)
			}
		}
		v.Zones = append(v.Zones, zv)
	}
	if scrubErr != nil {
		v.ScrubErr = shortErr(scrubErr)
	}
	if scrub != nil {
		v.Scrub = buildScrub(scrub, now)
	}
	v.Charts = c.charts()
	v.Durability = c.durability(m, scrub)
	return v
}

func buildScrub(s *ScrubStatus, now time.Time) *scrubView {
	sv := &scrubView{
		Running:         s.Running,
		RepairsInFlight: s.RepairsInFlight,
		MovesInFlight:   s.MovesInFlight,
		Levels:          s.Redundancy,
		LastError:       s.LastError,
		MapEpoch:        s.MapEpoch,
	}
	oldest := time.Duration(s.OldestUnverifiedSeconds * float64(time.Second))
	window := time.Duration(s.IntervalSeconds * float64(time.Second))
	sv.Oldest, sv.Window = ago(oldest), ago(window)
	if window > 0 {
		sv.OldestPct = min(100, 100*oldest.Seconds()/window.Seconds())
		sv.OldestLate = oldest > window
	}
	if p := s.Progress; p != nil {
		sv.Phase, sv.Checked, sv.Estimated, sv.Queue, sv.Rebuilt = p.Phase, p.Objects, p.Estimated, p.Queue, p.Rebuilt
		if p.Estimated > 0 {
			sv.PassPct = min(100, 100*float64(p.Objects)/float64(p.Estimated))
		}
		sv.MovesDone, sv.MovesPlanned, sv.MovesFailed, sv.BytesMoved = p.MovesDone, p.MovesPlanned, p.MovesFailed, bytesIEC(uint64(max(p.BytesMoved, 0)))
	} else if lp := s.LastPass; lp != nil {
		sv.MovesDone, sv.MovesPlanned, sv.MovesFailed, sv.BytesMoved = lp.MovesDone, lp.MovesPlanned, lp.MovesFailed, bytesIEC(uint64(max(lp.BytesMoved, 0)))
	}
	if sv.MovesPlanned > 0 {
		sv.MovesPct = min(100, 100*float64(sv.MovesDone)/float64(sv.MovesPlanned))
	}
	if lp := s.LastPass; lp != nil && !lp.Finished.IsZero() {
		sv.LastPass = ago(now.Sub(lp.Finished)) + " ago"
		sv.LastPassDetail = fmt.Sprintf("%d objects in %s", lp.Objects, ago(time.Duration(lp.Seconds*float64(time.Second))))
		sv.LastRebuilt, sv.LastRepairFailed = lp.ShardsRebuilt, lp.RepairsFailed
	} else {
		sv.LastPass = "none yet"
	}
	switch {
	case s.Running:
		sv.NextPass = "running now"
	case s.NextPass.IsZero():
		sv.NextPass = "not scheduled"
	case s.NextPass.Before(now):
		sv.NextPass = "due now"
	default:
		sv.NextPass = "in " + ago(s.NextPass.Sub(now))
	}
	return sv
}

// durability estimates the nines from the scrubber's levels when there
// is a finished pass, and always lists what one object at each level
// would have.
func (c *Console) durability(m *placement.Map, s *ScrubStatus) durabilityView {
	dv := durabilityView{Nines: "unknown", AFR: strconv.FormatFloat(100*c.cfg.DriveAFR, 'g', 3, 64) + "%"}
	window, from := c.cfg.RepairWindow, "assumed (--repair-window)"
	if s != nil {
		if w := s.RepairWindow(); w > 0 {
			window = w
			from = "measured: scrub interval + last pass"
		}
	}
	dv.Window, dv.WindowFrom = ago(window), from
	counts := map[int]int64{}
	var levels []LevelCount
	if s != nil && s.LastPass != nil {
		levels = s.Levels(m.DataShards, m.N())
		for _, l := range levels {
			counts[l.Healthy] += l.Objects
		}
	}
	for h := m.N(); h >= m.DataShards; h-- {
		ln := levelNines{Healthy: h, Objects: "unknown", Nines: nines(-math.Log10(ObjectLoss(h, m.DataShards, c.cfg.DriveAFR, window)))}
		if levels != nil {
			ln.Objects = strconv.FormatInt(counts[h], 10)
		}
		dv.PerLevel = append(dv.PerLevel, ln)
	}
	if levels == nil {
		return dv
	}
	est := Estimate(levels, m.DataShards, c.cfg.DriveAFR, window)
	if est.Objects == 0 {
		return dv
	}
	dv.Known, dv.Objects, dv.Unreadable = true, est.Objects, est.Unreadable
	dv.Nines = nines(est.Nines)
	dv.Loss = strconv.FormatFloat(est.LossPerYear, 'g', 3, 64)
	return dv
}

func nines(n float64) string {
	switch {
	case math.IsNaN(n):
		return "unknown"
	case math.IsInf(n, 1) || n > 99:
		return "more than 99"
	}
	return strconv.FormatFloat(n, 'f', 1, 64)
}

// charts turns the samples into three small SVG line charts.
func (c *Console) charts() []chartView {
	if c.cfg.Requests == nil {
		return nil
	}
	pts := c.ring.points()
	rate := make([]float64, len(pts))
	errs := make([]float64, len(pts))
	p99 := make([]float64, len(pts))
	for i, p := range pts {
		rate[i], errs[i] = p.Rate, p.Errors
		if p.P99Known {
			p99[i] = float64(p.P99) / float64(time.Millisecond)
		}
	}
	return []chartView{
		chart("requests", "Requests", "/s", rate, c.cfg.Samples-1),
		chart("errors", "Errors (5xx)", "/s", errs, c.cfg.Samples-1),
		chart("p99", "p99 latency", " ms", p99, c.cfg.Samples-1),
	}
}

// Chart geometry, in SVG user units; the SVG scales to its box.
const chartW, chartH = 300.0, 60.0

func chart(key, title, unit string, ys []float64, slots int) chartView {
	cv := chartView{Key: key, Title: title, Unit: unit}
	if len(ys) == 0 {
		cv.Empty, cv.Latest, cv.Max = true, "–", "–"
		return cv
	}
	top := 0.0
	for _, y := range ys {
		top = max(top, y)
	}
	cv.Latest, cv.Max = num(ys[len(ys)-1]), num(top)
	scale := top
	if scale == 0 {
		scale = 1
	}
	// Newest at the right edge; a chart that has not filled yet starts
	// part way across.
	step := chartW / float64(max(slots-1, 1))
	x0 := chartW - step*float64(len(ys)-1)
	var b strings.Builder
	var lastY float64
	for i, y := range ys {
		if i > 0 {
			b.WriteByte(' ')
		}
		lastY = chartH - 2 - (chartH-4)*y/scale
		fmt.Fprintf(&b, "%.1f,%.1f", x0+step*float64(i), lastY)
	}
	cv.Points = template.HTMLAttr(`points="` + b.String() + `"`)
	cv.Last = template.HTMLAttr(fmt.Sprintf(`x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"`, chartW-1, max(lastY-3, 0), chartW-1, min(lastY+3, chartH)))
	return cv
}

func num(f float64) string {
	switch {
	case f == 0:
		return "0"
	case f < 10:
		return strconv.FormatFloat(f, 'f', 2, 64)
	case f < 100:
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'f', 0, 64)
}

// ago formats a duration for people: "3s", "4m10s", "2h5m", "3d4h".
func ago(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

func fmtDuration(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

func bytesIEC(b uint64) string {
	const unit = 1024
	if b < unit {
		return strconv.FormatUint(b, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

// shortErr keeps the last part of an error chain: the page has a narrow
// column for it.
func shortErr(err error) string {
	s := err.Error()
	if len(s) > 90 {
		s = "…" + s[len(s)-89:]
	}
	return s
}

var funcs = template.FuncMap{
	"pct": func(f float64) string { return strconv.FormatFloat(f, 'f', 0, 64) },
	"date": func(t time.Time) string {
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
}
