package report

import (
	"fmt"
	"html"
	"math"
	"path/filepath"
	"strings"
	"time"
)

// The charts share one horizontal scale so that the timeline and the RSS
// chart line up: chartWidth wide in the SVG's own units, with the lane
// labels left of plotLeft.
const (
	chartWidth = 1100
	plotLeft   = 118
	plotRight  = chartWidth - 16
	laneHeight = 30
	barHeight  = 20
	axisHeight = 26
	rssHeight  = 240
)

// clusterColors tell clusters apart, in the timeline's labels and the RSS
// chart's lines (Tableau 10).
var clusterColors = []string{"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#bab0ac", "#e15759"}

func clusterColor(c int) string { return clusterColors[c%len(clusterColors)] }

// esc escapes text for SVG and HTML.
func esc(s string) string { return html.EscapeString(s) }

// xScale maps times to the charts' x axis.
type xScale struct {
	t0   time.Time
	span float64 // seconds
}

func newXScale(r *run) xScale {
	t0 := r.started()
	if t0.IsZero() || (!r.first.IsZero() && r.first.Before(t0)) {
		t0 = r.first
	}
	span := r.last.Sub(t0).Seconds()
	if span <= 0 {
		span = 1
	}
	return xScale{t0: t0, span: span}
}

func (s xScale) sec(t time.Time) float64 { return t.Sub(s.t0).Seconds() }

func (s xScale) x(t time.Time) float64 { return s.xs(s.sec(t)) }

func (s xScale) xs(sec float64) float64 {
	return plotLeft + (plotRight-plotLeft)*sec/s.span
}

// niceStep returns a round step (1, 2 or 5 times a power of ten) that cuts
// span into at most n parts.
func niceStep(span float64, n int) float64 {
	if !(span > 0) || math.IsInf(span, 0) {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// timeSteps are the round steps of a time axis, in seconds.
var timeSteps = []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400}

// timeAxis draws the x axis at y: a tick and a label every round step.
func (s xScale) timeAxis(b *strings.Builder, y float64) {
	step := math.Ceil(s.span/10/86400) * 86400 // whole days for a long span
	for _, st := range timeSteps {
		if s.span/st <= 10 {
			step = st
			break
		}
	}
	fmt.Fprintf(b, `<line class="axis" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, plotLeft, y, plotRight, y)
	for t := 0.0; t <= s.span+1e-9; t += step {
		x := s.xs(t)
		fmt.Fprintf(b, `<line class="tick" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, x, y, x, y+4)
		fmt.Fprintf(b, `<text class="tick-label" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x, y+16, esc(clock(t, step)))
	}
}

// clock formats seconds since the start for an axis with the given step.
func clock(t, step float64) string {
	switch {
	case step >= 60:
		h, m := int(t)/3600, int(t)%3600/60
		if h > 0 {
			return fmt.Sprintf("%dh%02d", h, m)
		}
		return fmt.Sprintf("%dm", m)
	case step >= 1:
		if t >= 60 {
			return fmt.Sprintf("%dm%02ds", int(t)/60, int(t)%60)
		}
		return fmt.Sprintf("%.0fs", t)
	case step >= 0.1:
		return fmt.Sprintf("%.1fs", t)
	}
	return fmt.Sprintf("%.2fs", t)
}

// timeline draws one lane per cluster and one bar per attempt of a task:
// its map and reduce phases where the run recorded them, retries dashed,
// failures outlined, kills, crashes and restarts marked.
func timeline(r *run, sx xScale) string {
	n := r.clusterCount()
	// A lane's CPUs: its last start's (a --resume may change the layout).
	cpus := append([]int(nil), r.clusterCPUs()...)
	for _, e := range r.events {
		if e.kind == eventStart || e.kind == eventRestart {
			for len(cpus) <= e.cluster {
				cpus = append(cpus, 0)
			}
			cpus[e.cluster] = e.cpus
		}
	}
	h := float64(n*laneHeight + axisHeight + 8)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="timeline" class="chart" viewBox="0 0 %d %.0f" role="img" aria-label="timeline of the clusters" xmlns="http://www.w3.org/2000/svg">`, chartWidth, h)
	b.WriteString(`<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#f6d6d6"/><line x1="0" y1="0" x2="0" y2="6" stroke="#e15759" stroke-width="3"/></pattern></defs>`)
	laneY := func(c int) float64 { return float64(c*laneHeight) + 4 }
	for c := 0; c < n; c++ {
		y := laneY(c)
		fmt.Fprintf(&b, `<rect class="lane" x="%d" y="%.1f" width="%d" height="%d"/>`, plotLeft, y, plotRight-plotLeft, laneHeight-2)
		label := fmt.Sprintf("cluster %d", c)
		if c < len(cpus) && cpus[c] > 0 {
			label += fmt.Sprintf(" · %d CPU", cpus[c])
		}
		fmt.Fprintf(&b, `<circle cx="8" cy="%.1f" r="4" fill="%s"/>`, y+laneHeight/2-1, clusterColor(c))
		fmt.Fprintf(&b, `<text class="lane-label" x="16" y="%.1f">%s</text>`, y+laneHeight/2+3, esc(label))
	}
	// Sessions after the first (a --resume) start at a dashed line.
	for i, s := range r.sessions {
		if i == 0 {
			continue
		}
		x := sx.x(s.start)
		fmt.Fprintf(&b, `<line class="session" x1="%.1f" y1="0" x2="%.1f" y2="%d"><title>%s</title></line>`, x, x, n*laneHeight+4, esc("run started again (resume) at "+s.start.Format(time.TimeOnly)))
	}
	for i := range r.attempts {
		a := &r.attempts[i]
		y := laneY(a.cluster) + (laneHeight-2-barHeight)/2
		x0, x1 := sx.x(a.start), sx.x(a.end)
		w := math.Max(x1-x0, 2)
		cls := "bar o-" + a.outcome
		if a.alone {
			cls += " retry"
		}
		if a.failedAt {
			cls += " file-failed"
		}
		fmt.Fprintf(&b, `<g class="attempt" data-task="%d" data-cluster="%d" data-outcome="%s">`, a.task, a.cluster, a.outcome)
		fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%d" rx="2"><title>%s</title></rect>`, cls, x0, y, w, barHeight, esc(attemptTitle(a, sx)))
		if a.outcome == outcomeDone && a.seconds > 0 {
			// The phases, scaled into the bar (the done line rounds to 10 ms).
			k := w / math.Max(a.seconds, a.mapSeconds+a.reduceSeconds)
			mw, rw := a.mapSeconds*k, a.reduceSeconds*k
			if mw >= 0.5 {
				fmt.Fprintf(&b, `<rect class="seg-map" x="%.1f" y="%.1f" width="%.1f" height="%d"/>`, x0, y+barHeight-5, mw, 5)
			}
			if rw >= 0.5 {
				fmt.Fprintf(&b, `<rect class="seg-reduce" x="%.1f" y="%.1f" width="%.1f" height="%d"/>`, x0+mw, y+barHeight-5, rw, 5)
			}
		}
		if label := fitLabel(filepath.Base(a.file), w-6); label != "" {
			fmt.Fprintf(&b, `<text class="bar-label" x="%.1f" y="%.1f">%s</text>`, x0+3, y+11, esc(label))
		}
		b.WriteString(`</g>`)
	}
	for _, e := range r.events {
		x, y := sx.x(e.time), laneY(e.cluster)
		switch e.kind {
		case eventKill, eventCrash:
			fmt.Fprintf(&b, `<g class="mark %s"><path d="M%.1f %.1f l6 6 m0 -6 l-6 6" /><title>%s</title></g>`, e.kind, x-3, y+1, esc(eventTitle(e, sx)))
		case eventRestart:
			fmt.Fprintf(&b, `<g class="mark restart"><path d="M%.1f %.1f l0 %d" /><circle cx="%.1f" cy="%.1f" r="3"/><title>%s</title></g>`, x, y, laneHeight-2, x, y+laneHeight-4, esc(eventTitle(e, sx)))
		case eventRecycle:
			fmt.Fprintf(&b, `<g class="mark recycle"><rect x="%.1f" y="%.1f" width="6" height="6"/><title>%s</title></g>`, x-3, y+laneHeight-7, esc(eventTitle(e, sx)))
		case eventRelease:
			fmt.Fprintf(&b, `<g class="mark release"><circle cx="%.1f" cy="%.1f" r="3"/><title>%s</title></g>`, x, y+laneHeight-4, esc(eventTitle(e, sx)))
		}
	}
	sx.timeAxis(&b, float64(n*laneHeight)+6)
	b.WriteString(`</svg>`)
	return b.String()
}

func attemptTitle(a *attempt, sx xScale) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (#%d) on cluster %d", a.file, a.task, a.cluster)
	if a.retry > 0 {
		fmt.Fprintf(&b, ", retry %d alone", a.retry)
	}
	fmt.Fprintf(&b, "\n%s to %s (%.2f s): %s", clock(sx.sec(a.start), 0.01), clock(sx.sec(a.end), 0.01), a.end.Sub(a.start).Seconds(), a.outcome)
	if a.outcome == outcomeDone {
		fmt.Fprintf(&b, "\nmap %.2f s, reduce %.2f s; %d rows, %d bad, %d users", a.mapSeconds, a.reduceSeconds, a.rows, a.badRows, a.users)
		if a.mode != "" {
			b.WriteString(", " + a.mode)
		}
	}
	if a.message != "" {
		b.WriteString("\n" + a.message)
	}
	if a.failedAt && a.outcome != outcomeFailed {
		b.WriteString("\nthe file failed")
	}
	return b.String()
}

func eventTitle(e clusterEvent, sx xScale) string {
	s := fmt.Sprintf("%s cluster %d %s", clock(sx.sec(e.time), 0.01), e.cluster, e.kind)
	if e.file != "" {
		s += " on " + e.file
	}
	if e.text != "" {
		s += ": " + e.text
	}
	return s
}

// fitLabel shortens s to about width units of 11px sans-serif text, ""
// when not even a few letters fit.
func fitLabel(s string, width float64) string {
	const perRune = 6.2
	n := int(width / perRune)
	r := []rune(s)
	switch {
	case n >= len(r):
		return s
	case n < 4:
		return ""
	}
	return string(r[:n-1]) + "…"
}

// rssPoint is one point of a cluster's RSS line, in seconds and MiB.
type rssPoint struct{ sec, mib float64 }

// rssLines returns each cluster's RSS over time: the samples of
// ram_usage.log, dropping to zero between two processes of a cluster (it
// was killed or recycled, and had no memory until its restart).
func rssLines(r *run, sx xScale) [][]rssPoint {
	lines := make([][]rssPoint, r.clusterCount())
	lastPID := make([]int, len(lines))
	for _, s := range r.rss {
		c := s.cluster
		if c < 0 || c >= len(lines) {
			continue
		}
		sec := sx.sec(s.time)
		if n := len(lines[c]); n > 0 && s.pid != lastPID[c] {
			prev := lines[c][n-1]
			lines[c] = append(lines[c], rssPoint{prev.sec, 0}, rssPoint{sec, 0})
		}
		lastPID[c] = s.pid
		lines[c] = append(lines[c], rssPoint{sec, s.rssMiB})
	}
	for c := range lines {
		lines[c] = thin(lines[c], sx.span/float64(plotRight-plotLeft))
	}
	return lines
}

// thin keeps at most about one point per bucket of width dt seconds: the
// first, the highest and the last of each, so that no peak is lost.
func thin(pts []rssPoint, dt float64) []rssPoint {
	if len(pts) < 2*(plotRight-plotLeft) || dt <= 0 {
		return pts
	}
	var out []rssPoint
	for i := 0; i < len(pts); {
		b := math.Floor(pts[i].sec / dt)
		j := i + 1
		hi := i
		for j < len(pts) && math.Floor(pts[j].sec/dt) == b {
			if pts[j].mib > pts[hi].mib {
				hi = j
			}
			j++
		}
		out = append(out, pts[i])
		if hi != i && hi != j-1 {
			out = append(out, pts[hi])
		}
		if j-1 != i {
			out = append(out, pts[j-1])
		}
		i = j
	}
	return out
}

// rssChart draws one line per cluster of RSS over time, the clusters'
// total, the RAM limit and the kills.
func rssChart(r *run, sx xScale) (svg string, note string) {
	lines := rssLines(r, sx)
	limit := r.ramLimitMiB()
	var maxMiB float64
	for _, s := range r.rss {
		maxMiB = max(maxMiB, s.rssMiB, s.totalMiB)
	}
	top := maxMiB * 1.1
	switch {
	case limit > 0 && limit <= maxMiB*2:
		top = max(top, limit*1.08)
	case limit > 0:
		note = fmt.Sprintf("The RAM limit (%.0f MiB) is far above the chart: the clusters used at most %.0f MiB together.", limit, maxMiB)
	}
	if top <= 0 {
		top = 1
	}
	const y0, plotH = 8.0, float64(rssHeight - axisHeight - 12)
	y := func(mib float64) float64 { return y0 + plotH*(1-mib/top) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="rss" class="chart" viewBox="0 0 %d %d" role="img" aria-label="RSS of each cluster over time" xmlns="http://www.w3.org/2000/svg">`, chartWidth, rssHeight)
	step := niceStep(top, 5)
	for v := 0.0; v <= top+1e-9; v += step {
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%.1f" x2="%d" y2="%.1f"/>`, plotLeft, y(v), plotRight, y(v))
		fmt.Fprintf(&b, `<text class="tick-label" x="%d" y="%.1f" text-anchor="end">%s MiB</text>`, plotLeft-6, y(v)+4, esc(trimFloat(v)))
	}
	if limit > 0 && limit <= top {
		fmt.Fprintf(&b, `<line class="limit" x1="%d" y1="%.1f" x2="%d" y2="%.1f"><title>RAM limit %.0f MiB</title></line>`, plotLeft, y(limit), plotRight, y(limit), limit)
		fmt.Fprintf(&b, `<text class="limit-label" x="%d" y="%.1f" text-anchor="end">RAM limit %.0f MiB</text>`, plotRight-4, y(limit)-4, limit)
	}
	// The total of all clusters, as the monitor compares it to the limit.
	var total strings.Builder
	var lastT time.Time
	for _, s := range r.rss {
		if s.time.Equal(lastT) {
			continue
		}
		lastT = s.time
		fmt.Fprintf(&total, "%.1f,%.1f ", sx.x(s.time), y(s.totalMiB))
	}
	if total.Len() > 0 {
		fmt.Fprintf(&b, `<polyline class="total" points="%s"><title>all clusters</title></polyline>`, strings.TrimSpace(total.String()))
	}
	for c, pts := range lines {
		if len(pts) == 0 {
			continue
		}
		var p strings.Builder
		for _, pt := range pts {
			fmt.Fprintf(&p, "%.1f,%.1f ", sx.xs(pt.sec), y(pt.mib))
		}
		fmt.Fprintf(&b, `<polyline class="rss" data-cluster="%d" stroke="%s" points="%s"><title>cluster %d</title></polyline>`, c, clusterColor(c), strings.TrimSpace(p.String()), c)
	}
	for _, e := range r.events {
		if e.kind != eventKill {
			continue
		}
		x := sx.x(e.time)
		fmt.Fprintf(&b, `<g class="kill-line"><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><path d="M%.1f %.1f l8 8 m0 -8 l-8 8"/><title>%s</title></g>`,
			x, y0, x, y(0), x-4, y0, esc(eventTitle(e, sx)))
	}
	sx.timeAxis(&b, y(0)+2)
	b.WriteString(`</svg>`)
	return b.String(), note
}

// trimFloat formats an axis value without needless decimals.
func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}
