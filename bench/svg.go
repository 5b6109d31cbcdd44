package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// SVG draws the measured systems as two bar charts side by side: median
// wall time and median peak RSS.
func (r *Report) SVG() string {
	var ok []*Result
	for _, res := range r.Results {
		if res.OK() {
			ok = append(ok, res)
		}
	}
	const (
		labelW = 90  // system names
		panelW = 330 // each chart
		gap    = 40
		barH   = 20
		rowH   = 28
		top    = 56
	)
	width := labelW + 2*panelW + gap + 20
	height := top + max(1, len(ok))*rowH + 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	title := fmt.Sprintf("mce benchmark: %.0f MB raw, %d CPUs, %d cores, median of %d runs",
		float64(r.Data.RawBytes)/1e6, r.Config.CPUs, r.Machine.Cores, r.Config.Runs)
	fmt.Fprintf(&b, `<text x="10" y="18" font-size="14" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	if len(ok) == 0 {
		b.WriteString(`<text x="10" y="60">no system was measured</text>` + "\n</svg>\n")
		return b.String()
	}
	panel := func(x0 int, heading, unit string, val func(*Result) float64, color string) {
		maxV := 0.0
		for _, res := range ok {
			maxV = math.Max(maxV, val(res))
		}
		if maxV <= 0 {
			maxV = 1
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, top-14, html.EscapeString(heading))
		for i, res := range ok {
			y := top + i*rowH
			v := val(res)
			w := int(math.Round(float64(panelW-70) * v / maxV))
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", x0, y, max(w, 1), barH, color)
			fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", x0+max(w, 1)+4, y+barH-5, html.EscapeString(fmtUnit(v, unit)))
		}
	}
	for i, res := range ok {
		fmt.Fprintf(&b, `<text x="10" y="%d">%s</text>`+"\n", top+i*rowH+barH-5, html.EscapeString(res.System))
	}
	panel(labelW, "wall time (s)", "s", func(res *Result) float64 { return res.Wall.Seconds() }, "#4472c4")
	panel(labelW+panelW+gap, "peak RSS of the process tree (MiB)", "MiB", func(res *Result) float64 { return mibOf(res.PeakRSSBytes) }, "#ed7d31")
	fmt.Fprintf(&b, `<text x="10" y="%d" fill="#555">%s</text>`+"\n", height-10,
		html.EscapeString(fmt.Sprintf("%s, %s; %s", r.Machine.CPUModel, r.Date.Format("2006-01-02"), "warm page cache")))
	b.WriteString("</svg>\n")
	return b.String()
}

func fmtUnit(v float64, unit string) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f %s", v, unit)
	case v >= 10:
		return fmt.Sprintf("%.1f %s", v, unit)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}
