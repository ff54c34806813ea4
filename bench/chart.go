package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
)

// WriteChart writes a self-contained HTML page charting rep's timeline:
// throughput (MB/s and objects/s) and p99 latency for every second of the
// measured phase. The charts are inline SVG: no scripts, no external
// resources, so the file can be mailed or attached to an issue as is.
func WriteChart(w io.Writer, rep *Report) error {
	mbps := make([]float64, len(rep.Timeline))
	ops := make([]float64, len(rep.Timeline))
	p99 := make([]float64, len(rep.Timeline))
	for i, s := range rep.Timeline {
		mbps[i] = float64(s.Bytes) / 1e6
		ops[i] = float64(s.Objects)
		p99[i] = float64(s.P99) / 1e6
	}
	title := fmt.Sprintf("kintsugi bench: %s, size %s, concurrency %d", rep.Workload, rep.Size, rep.Concurrency)
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>")
	b.WriteString(html.EscapeString(title))
	b.WriteString("</title>\n<style>body{font-family:sans-serif;margin:2em;color:#222}" +
		"svg{display:block;margin-bottom:1.5em}table{border-collapse:collapse}" +
		"td,th{padding:.2em .8em;text-align:right;border-bottom:1px solid #ddd}</style></head><body>\n")
	fmt.Fprintf(&b, "<h1>%s</h1>\n<p>%s, bucket %s, prefix %s; %.2f s measured after %s warm-up.</p>\n",
		html.EscapeString(title), html.EscapeString(rep.Endpoint), html.EscapeString(rep.Bucket),
		html.EscapeString(strconv.Quote(rep.Prefix)), rep.Elapsed.Seconds(), rep.Warmup)
	b.WriteString("<table><tr><th>op</th><th>objects</th><th>MB/s</th><th>objects/s</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th><th>errors</th><th>verify failures</th></tr>\n")
	rows := append([]OpStats(nil), rep.Ops...)
	if len(rows) != 1 {
		rows = append(rows, rep.Total)
		rows[len(rows)-1].Op = "total"
	}
	for i := range rows {
		j := rows[i].json(rep.Elapsed)
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%d</td><td>%d</td></tr>\n",
			html.EscapeString(j.Op), j.Objects, num(j.MBPerSec), num(j.OpsPerSec), num(j.P50ms), num(j.P99ms), num(j.MaxMs), j.Errors, j.VerifyFailures)
	}
	b.WriteString("</table>\n")
	lineChart(&b, "Throughput (MB/s) per second", "MB/s", mbps, "#1f77b4")
	lineChart(&b, "Objects per second", "objects/s", ops, "#2ca02c")
	lineChart(&b, "p99 latency (ms) per second", "ms", p99, "#d62728")
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// lineChart appends one SVG line chart of ys against seconds 1..len(ys).
func lineChart(b *strings.Builder, title, unit string, ys []float64, color string) {
	const (
		width, height            = 820, 240
		left, right, top, bottom = 70, 20, 30, 40
		plotW, plotH             = width - left - right, height - top - bottom
	)
	peak := 0.0
	for _, y := range ys {
		peak = math.Max(peak, y)
	}
	ceil := niceCeil(peak)
	x := func(i int) float64 {
		if len(ys) <= 1 {
			return left + plotW/2
		}
		return left + float64(i)*plotW/float64(len(ys)-1)
	}
	y := func(v float64) float64 { return top + plotH - v/ceil*plotH }

	fmt.Fprintf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\">\n",
		width, height, width, height, html.EscapeString(title))
	fmt.Fprintf(b, "<text x=\"%d\" y=\"18\" font-size=\"14\" font-weight=\"bold\">%s</text>\n", left, html.EscapeString(title))
	// Horizontal grid with value labels.
	for i := 0; i <= 4; i++ {
		v := ceil * float64(i) / 4
		fmt.Fprintf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>", left, width-right, y(v), y(v))
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%s</text>\n", left-6, y(v)+4, label(v))
	}
	fmt.Fprintf(b, "<text x=\"14\" y=\"%d\" font-size=\"11\" transform=\"rotate(-90 14 %d)\" text-anchor=\"middle\">%s</text>\n",
		top+plotH/2, top+plotH/2, html.EscapeString(unit))
	// Time axis: about ten ticks, in whole seconds.
	step := max(1, (len(ys)+9)/10)
	for i := 0; i < len(ys); i += step {
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%ds</text>", x(i), height-bottom+16, i+1)
	}
	fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">second of the measured phase</text>\n",
		left+plotW/2, height-6)
	if len(ys) > 0 {
		var pts strings.Builder
		for i, v := range ys {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(i), y(v))
		}
		fmt.Fprintf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>\n", color, strings.TrimSpace(pts.String()))
		for i, v := range ys {
			fmt.Fprintf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"><title>%ds: %s %s</title></circle>",
				x(i), y(v), color, i+1, label(v), html.EscapeString(unit))
		}
		b.WriteString("\n")
	}
	b.WriteString("</svg>\n")
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, for axis tops.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// label formats an axis value with as few digits as it needs.
func label(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
