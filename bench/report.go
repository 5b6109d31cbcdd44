package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Verdict says whether a target is met.
type Verdict uint8

// Verdicts.
const (
	NotMeasured Verdict = iota
	Met
	NotMet
)

func (v Verdict) String() string {
	switch v {
	case Met:
		return "met"
	case NotMet:
		return "not met"
	}
	return "not measured"
}

// Target is one goal from the issues, with the figure that decides it.
type Target struct {
	Name    string
	Figure  string
	Verdict Verdict
	Note    string
}

func verdict(ok bool) Verdict {
	if ok {
		return Met
	}
	return NotMet
}

// mbPerSec is the raw input throughput of a wall time.
func (r *Report) mbPerSec(res *Result) float64 {
	if !res.OK() || res.Wall <= 0 {
		return 0
	}
	return float64(r.Data.RawBytes) / 1e6 / res.Wall.Seconds()
}

// rows is the number of data rows, from the truth file, the reference's
// counts or the floor.
func (r *Report) rows() int64 {
	if r.Data.Rows > 0 {
		return r.Data.Rows
	}
	for _, sys := range []string{SysRun, SysReduce, SysDuckDB, SysUnix} {
		if res := r.Result(sys); res.OK() && res.Features != nil {
			return res.Rows
		}
	}
	return 0
}

// BreakEven returns the smallest number of feature jobs k for which
// partition + k·reduce takes less time than k·run, or 0 when reduce is not
// faster than run.
func BreakEven(partition, run, reduce float64) int {
	if reduce >= run || run <= 0 {
		return 0
	}
	return int(math.Floor(partition/(run-reduce))) + 1
}

// PerRound gives slow's wall time over fast's round by round: the median
// over the rounds of the ratio of the two runs in each, the lowest and
// highest, and in how many rounds it reached want. A round runs every
// system once, back to back, so the VM's drift from hour to hour, which
// moves the medians' ratio, mostly cancels out of it. "" unless both ran
// the same number of rounds.
func PerRound(slow, fast *Result, want float64) string {
	n := len(slow.Runs)
	if n < 2 || n != len(fast.Runs) {
		return ""
	}
	xs := make([]float64, n)
	reached := 0
	for i := range xs {
		xs[i] = slow.Runs[i].Wall.Seconds() / fast.Runs[i].Wall.Seconds()
		if xs[i] >= want {
			reached++
		}
	}
	return fmt.Sprintf("round by round %.2f× (%.2f–%.2f×), %g× or more in %d of %d rounds",
		Median(xs), slices.Min(xs), slices.Max(xs), want, reached, n)
}

// evaluate states every target of the issues against the figures.
func evaluate(r *Report) []Target {
	run, part, red := r.Result(SysRun), r.Result(SysPartition), r.Result(SysReduce)
	duck, floor := r.Result(SysDuckDB), r.Result(SysFloor)
	var ts []Target
	add := func(name string, measured bool, ok bool, figure, note string) {
		t := Target{Name: name, Figure: figure, Note: note}
		if measured {
			t.Verdict = verdict(ok)
		}
		ts = append(ts, t)
	}

	// Issue 3: at least 150 MB/s on 2 cores.
	run2 := run
	if r.Config.CPUs != 2 {
		run2 = nil
		for _, p := range r.Sweep {
			if p.CPUs == 2 {
				run2 = p.Run
			}
		}
	}
	switch {
	case run2.OK():
		mb := r.mbPerSec(run2)
		add("mce run ≥ 150 MB/s on 2 cores (issue 3)", true, mb >= 150, fmt.Sprintf("%.0f MB/s", mb), "")
	case run2 == nil:
		add("mce run ≥ 150 MB/s on 2 cores (issue 3)", false, false, "–", "needs a run at 2 CPUs (--cpus 2 or --sweep)")
	default:
		add("mce run ≥ 150 MB/s on 2 cores (issue 3)", false, false, "–", unmeasured(run2))
	}
	ratio := func(slow, fast *Result) float64 { return slow.Wall.Seconds() / fast.Wall.Seconds() }
	if run.OK() && duck.OK() {
		x := ratio(duck, run)
		add("mce run ≥ 4× DuckDB, same files and threads (issue 13)", true, x >= 4, fmt.Sprintf("%.2f×", x), PerRound(duck, run, 4))
	} else {
		add("mce run ≥ 4× DuckDB, same files and threads (issue 13)", false, false, "–", unmeasured(run, duck))
	}
	if grp := r.Result(SysRunGroup); run.OK() && grp.OK() {
		x, m := ratio(grp, run), float64(run.PeakRSSBytes)/float64(grp.PeakRSSBytes)
		add("the one pass ≥ 1.5× faster than grouping, ≤ half its peak RSS (issue 13)", true, x >= 1.5 && m <= 0.5,
			fmt.Sprintf("%.2f× faster, %.2f× the RSS", x, m), PerRound(grp, run, 1.5))
	} else {
		add("the one pass ≥ 1.5× faster than grouping, ≤ half its peak RSS (issue 13)", false, false, "–", unmeasured(run, grp))
	}
	if rf := r.Result(SysRunReduce); rf.OK() && duck.OK() {
		x := ratio(duck, rf)
		add("the Reduce-form f.go ≥ 3× DuckDB (issue 13)", true, x >= 3, fmt.Sprintf("%.2f×", x), PerRound(duck, rf, 3))
	} else {
		add("the Reduce-form f.go ≥ 3× DuckDB (issue 13)", false, false, "–", unmeasured(rf, duck))
	}
	if run.OK() && red.OK() {
		x := ratio(run, red)
		note := PerRound(run, red, 2)
		if x < 2 {
			note = joinNote(note, "reduce saves the CSV parsing but pays store reads and decompression, and its Reduce-style pass over each user's rows; CPU by phase in bench/results/profile-reduce.md")
		}
		add("mce reduce ≥ 2× mce run (issue 13)", true, x >= 2, fmt.Sprintf("%.2f×", x), note)
	} else {
		add("mce reduce ≥ 2× mce run (issue 13)", false, false, "–", unmeasured(run, red))
	}
	if red.OK() {
		mib := mibOf(red.PeakRSSBytes)
		note := ""
		if r.Data.RawBytes < 2<<30 {
			note = fmt.Sprintf("the target is stated for ≥ 2 GiB raw; this data is %.2f GiB", float64(r.Data.RawBytes)/(1<<30))
		}
		add("mce reduce peak RSS ≤ 256 MiB (issue 5)", true, mib <= 256, fmt.Sprintf("%.0f MiB", mib), note)
	} else {
		add("mce reduce peak RSS ≤ 256 MiB (issue 5)", false, false, "–", unmeasured(red))
	}
	if f := r.Flat; f != nil {
		const name = "mce reduce peak RSS flat from half the data to all of it (issue 13)"
		if f.OK() {
			figure := fmt.Sprintf("%.0f MiB at %s, %.0f at %s: %.2f×",
				mibOf(f.Half.PeakRSSBytes), gbOf(f.HalfBytes), mibOf(f.Full.PeakRSSBytes), gbOf(f.FullBytes), f.Growth())
			note := fmt.Sprintf("met at ≤ %.2f×; the two measured in turn, %d runs each", flatGrowth, len(f.Full.Runs))
			judged := f.HalfBytes >= flatFromBytes
			if !judged {
				note = fmt.Sprintf("the target is stated from 1 to 2 GB; below it reduce's buffers still grow to their caps "+
					"(the merge's read buffers share at most 32 MiB); %s", note)
			}
			add(name, judged, f.Growth() <= flatGrowth, figure, note)
		} else {
			why := f.Reason
			if why == "" {
				why = unmeasured(f.Half, f.Full)
			}
			add(name, false, false, "–", why)
		}
	}
	if part.OK() && part.StoreBytes > 0 {
		share := float64(part.StoreBytes) / float64(r.Data.RawBytes)
		add("store ≤ 50% of raw (issue 4)", true, share <= 0.5, fmt.Sprintf("%.1f%%", 100*share), "")
	} else {
		add("store ≤ 50% of raw (issue 4)", false, false, "–", unmeasured(part))
	}
	if part.OK() {
		mem, _ := ParseBytes(r.Config.PartitionMem)
		x := float64(part.PeakRSSBytes) / float64(mem)
		add("partition peak RSS ≤ 1.5× --mem (issue 4)", true, x <= 1.5,
			fmt.Sprintf("%.0f MiB = %.2f× of %s", mibOf(part.PeakRSSBytes), x, r.Config.PartitionMem), "")
	} else {
		add("partition peak RSS ≤ 1.5× --mem (issue 4)", false, false, "–", unmeasured(part))
	}
	if part.OK() && run.OK() {
		x := ratio(part, run)
		note := ""
		if x > 1.2 {
			note = "partition parses, sorts, spills and compresses every row; a run pass is the yardstick, and it got faster"
		}
		add("partition ≤ 1.2 mce run passes (issue 13)", true, x <= 1.2, fmt.Sprintf("%.2f passes", x), note)
		mb := r.mbPerSec(part)
		add("partition ≥ 150 MB/s (issue 13)", true, mb >= 150, fmt.Sprintf("%.0f MB/s", mb), "")
	} else {
		add("partition ≤ 1.2 mce run passes (issue 13)", false, false, "–", unmeasured(part, run))
	}
	if run.OK() && floor.OK() {
		x := r.mbPerSec(run) / r.mbPerSec(floor)
		note := ""
		if x < 0.6 {
			note = "the floor only splits bytes; the rest is grouping and the features' own work: CPU by phase in bench/results/profile-run.md"
			if csv := r.Result(SysCSVFloor); csv.OK() {
				note = fmt.Sprintf("the floor only splits bytes; mce's reader alone (csvfloor) is at %.0f%% of it; "+
					"the rest is grouping and the features' own work: CPU by phase in bench/results/profile-run.md",
					100*r.mbPerSec(csv)/r.mbPerSec(floor))
			}
		}
		add("mce run ≥ 60% of the floor per core (issue 6)", true, x >= 0.6, fmt.Sprintf("%.0f%%", 100*x), note)
	} else {
		add("mce run ≥ 60% of the floor per core (issue 6)", false, false, "–", unmeasured(run, floor))
	}
	for _, res := range []*Result{run, red} {
		name := fmt.Sprintf("mce %s skew: slowest worker ≤ 1.15× the mean (issue 3)", res.System)
		if res.OK() && res.Skew != nil && res.Skew.Files > 0 {
			sk := res.Skew
			add(name, true, sk.Overall <= 1.15,
				fmt.Sprintf("%.2f× over all files (largest file %.2f×, worst %.2f× in %s)", sk.Overall, sk.HeavyMax, sk.Max, sk.MaxFile),
				"Σ slowest worker s / Σ mean worker s from timings.csv; it cannot credit the heavy user's own time, which timings.csv does not give")
		} else {
			why := unmeasured(res)
			if res.OK() {
				why = "no timings.csv with worker times"
				if res.Note != "" {
					why = res.Note
				}
			}
			add(name, false, false, "–", why)
		}
	}
	return ts
}

// gbOf writes bytes in GB (10⁹ bytes), as the data's sizes are given.
func gbOf(bytes int64) string { return fmt.Sprintf("%.2f GB", float64(bytes)/1e9) }

func unmeasured(rs ...*Result) string {
	var parts []string
	for _, r := range rs {
		if r == nil {
			parts = append(parts, "a system not run")
		} else if !r.OK() {
			parts = append(parts, fmt.Sprintf("%s %s", r.System, r.Status))
		}
	}
	return strings.Join(parts, ", ")
}

// Markdown is the report: machine, data, method, the table, store, skew,
// break-even, targets and the sweep.
func (r *Report) Markdown() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "# mce benchmark, %s\n\n", r.Date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- **Machine**: %d cores (%s), %.1f GiB RAM, %s, %s; load average %s at the start, %s at the end",
		m.Cores, orDash(m.CPUModel), float64(m.RAMBytes)/(1<<30), orDash(m.Kernel), m.GoVersion, orDash(m.LoadStart), orDash(m.LoadEnd))
	if loadBusy(m.LoadStart, m.Cores) {
		b.WriteString(" (other work was running: the figures are indicative)")
	}
	if m.WorkFreeBytes > 0 {
		fmt.Fprintf(&b, "; %.1f GiB free where it works", float64(m.WorkFreeBytes)/(1<<30))
	}
	b.WriteString(".\n")
	fmt.Fprintf(&b, "- **mce**: %s.\n", orDash(r.MCE))
	d := r.Data
	fmt.Fprintf(&b, "- **Data**: %d files, %.1f MB raw", len(d.Files), float64(d.RawBytes)/1e6)
	if d.DiskBytes != d.RawBytes {
		fmt.Fprintf(&b, " (%.1f MB on disk)", float64(d.DiskBytes)/1e6)
	}
	if rows := r.rows(); rows > 0 {
		fmt.Fprintf(&b, ", %s rows", human(float64(rows)))
	}
	fmt.Fprintf(&b, "; %s", d.Desc)
	if d.GenSeconds > 0 {
		fmt.Fprintf(&b, " in %.1f s", d.GenSeconds)
	}
	b.WriteString(".\n")
	fmt.Fprintf(&b, "- **Method**: every system gets %d CPUs (threads, cluster size or sort --parallel); each runs %d times, "+
		"in rounds (one run of every system, then the next round), and every figure is the median of its runs, figure by figure; %s; "+
		"CPU is user+sys of the whole process tree (CPU use: CPU s / (wall s × CPUs)), peak RSS the peak of the tree's summed RSS sampled every 50 ms; MB/s is of raw input bytes.\n",
		r.Config.CPUs, r.Config.Runs, r.warmNote())
	fmt.Fprintf(&b, "- **Correctness**: %s.\n\n", strings.Join(r.Gate, "; "))

	b.WriteString("| system | what | wall s (fastest–slowest run) | CPU s | CPU use | peak RSS MiB | MB/s | rows/s | notes |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|---|\n")
	rows := r.rows()
	for _, res := range r.Results {
		if !res.OK() {
			what := res.What
			if what == "" {
				what = systemWhat(res.System)
			}
			fmt.Fprintf(&b, "| %s | %s | | | | | | | %s: %s |\n", res.System, cell(what), res.Status, cell(res.Reason))
			continue
		}
		rps := "–"
		if rows > 0 {
			rps = human(float64(rows) / res.Wall.Seconds())
		}
		note := res.Note
		if res.System == SysPartition {
			if res.StoreBytes > 0 {
				note = joinNote(note, fmt.Sprintf("store %.1f MB = %.1f%% of raw", float64(res.StoreBytes)/1e6, 100*float64(res.StoreBytes)/float64(r.Data.RawBytes)))
			}
			if res.Spill != "" {
				note = joinNote(note, res.Spill)
			}
		}
		if res.Skew != nil && res.Skew.Files > 0 {
			note = joinNote(note, fmt.Sprintf("skew %.2f× (largest file %.2f×)", res.Skew.Overall, res.Skew.HeavyMax))
		}
		// CPU use is the share of the CPUs given that the system kept busy.
		use := res.CPU.Seconds() / (res.Wall.Seconds() * float64(max(res.CPUs, 1)))
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f | %.0f%% | %.0f | %.0f | %s | %s |\n", res.System, cell(res.What),
			wallCell(res), res.CPU.Seconds(), 100*use, mibOf(res.PeakRSSBytes), r.mbPerSec(res), rps, cell(note))
	}
	b.WriteString("\n")

	part := r.Result(SysPartition)
	for _, be := range []struct{ label, run, reduce string }{
		{"**Break-even**", SysRun, SysReduce},
		{"**Break-even of a Reduce-form f.go**", SysRunReduce, SysReduceReduce},
	} {
		run, red := r.Result(be.run), r.Result(be.reduce)
		if !run.OK() || !part.OK() || !red.OK() {
			continue
		}
		P, R, D := part.Wall.Seconds(), run.Wall.Seconds(), red.Wall.Seconds()
		if k := BreakEven(P, R, D); k > 0 {
			fmt.Fprintf(&b, "%s: partition + k·%s < k·%s from **k = %d** feature jobs on the same data "+
				"(%.2f + %d×%.2f = %.2f s against %d×%.2f = %.2f s).\n\n", be.label, be.reduce, be.run, k, P, k, D, P+float64(k)*D, k, R, float64(k)*R)
		} else {
			fmt.Fprintf(&b, "%s: never: %s (%.2f s) is not faster than %s (%.2f s).\n\n", be.label, be.reduce, D, be.run, R)
		}
	}

	b.WriteString("## Targets\n\n| target | figure | status | note |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		fmt.Fprintf(&b, "| %s | %s | **%s** | %s |\n", t.Name, t.Figure, t.Verdict, cell(t.Note))
	}
	b.WriteString("\n")

	if len(r.Sweep) > 0 {
		b.WriteString("## CPU sweep\n\n| CPUs | run wall s | run speed-up | run MB/s | reduce wall s | reduce speed-up | reduce MB/s |\n|--:|--:|--:|--:|--:|--:|--:|\n")
		var run1, red1 float64
		for _, p := range r.Sweep {
			if p.CPUs == 1 {
				if p.Run.OK() {
					run1 = p.Run.Wall.Seconds()
				}
				if p.Reduce.OK() {
					red1 = p.Reduce.Wall.Seconds()
				}
			}
		}
		col := func(res *Result, base float64) string {
			if !res.OK() {
				return fmt.Sprintf("%s | | ", res.Status)
			}
			w := res.Wall.Seconds()
			sp := "–"
			if base > 0 {
				sp = fmt.Sprintf("%.2f×", base/w)
			}
			return fmt.Sprintf("%.2f | %s | %.0f", w, sp, r.mbPerSec(res))
		}
		for _, p := range r.Sweep {
			fmt.Fprintf(&b, "| %d | %s | %s |\n", p.CPUs, col(p.Run, run1), col(p.Reduce, red1))
		}
		b.WriteString("\n")
	}
	if f := r.Flat; f.OK() {
		fmt.Fprintf(&b, "## Reduce's memory at half the data\n\n"+
			"The same `mce gen` at half the size, partitioned, then `mce reduce` on it and on this bench's store in turn, %d runs each (medians):\n\n"+
			"| data | raw | wall s (fastest–slowest run) | peak RSS MiB (lowest–highest run) |\n|---|--:|--:|--:|\n", len(f.Full.Runs))
		for _, row := range []struct {
			name  string
			bytes int64
			res   *Result
		}{{"half", f.HalfBytes, f.Half}, {"whole", f.FullBytes, f.Full}} {
			lo, hi := spread(row.res, row.res.PeakRSSBytes, func(s Sample) int64 { return s.PeakRSSBytes })
			fmt.Fprintf(&b, "| %s | %s | %s | %.0f (%.0f–%.0f) |\n", row.name, gbOf(row.bytes), wallCell(row.res),
				mibOf(row.res.PeakRSSBytes), mibOf(lo), mibOf(hi))
		}
		b.WriteString("\n")
	}
	r.writeRuns(&b)
	r.writeProfiles(&b)
	if name := r.chartName(); name != "" {
		fmt.Fprintf(&b, "![wall time and peak RSS per system](%s)\n", name)
	}
	return b.String()
}

func (r *Report) baseName() string {
	host := regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(r.Machine.Host, "_")
	if host == "" {
		host = "host"
	}
	return r.Date.Format("2006-01-02") + "-" + host
}

func (r *Report) chartName() string {
	if r.Config.Results == "-" {
		return ""
	}
	return r.baseName() + ".svg"
}

// WriteFiles writes the report and the chart under dir as
// <date>-<host>.md and .svg, and copies them to latest.md and latest.svg.
func (r *Report) WriteFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	md := r.Markdown()
	svg := r.SVG()
	latest := strings.Replace(md, "]("+r.chartName()+")", "](latest.svg)", 1)
	files := []struct{ name, body string }{
		{r.baseName() + ".md", md}, {r.chartName(), svg}, {"latest.md", latest}, {"latest.svg", svg},
	}
	if len(r.Profiles) > 0 {
		js, err := json.MarshalIndent(savedProfiles{Date: r.Date, MCE: r.MCE, Profiles: r.Profiles}, "", "  ")
		if err != nil {
			return nil, err
		}
		files = append(files, struct{ name, body string }{profileFile, string(js) + "\n"})
	}
	var paths []string
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, []byte(f.body), 0o644); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// systemWhat describes a system that was not measured.
func systemWhat(system string) string {
	switch system {
	case SysRun:
		return "mce run (built-in features; --mode auto: the one pass)"
	case SysRunGroup:
		return "mce run --mode group (built-in features, grouped in RAM)"
	case SysRunDisk:
		return "mce run --mode disk (built-in features, grouped through sorted runs on local disk: RAM bounded whatever the file)"
	case SysRun1CPU:
		return "mce run --clusters 1,1,… (one cluster of one CPU per CPU, each on its own file; the one pass)"
	case SysRunReduce:
		return "mce run --features " + ReduceFormFeatures + " (the built-in features as a plain Reduce that declares the three columns it reads: grouped)"
	case SysPartition:
		return "mce partition into a fresh store"
	case SysReduce:
		return "mce reduce from the store"
	case SysReduceReduce:
		return "mce reduce --features " + ReduceFormFeatures + " from the store (the Reduce-form f.go of run-reduce)"
	case SysUnix:
		return "sort | awk per file"
	case SysDuckDB:
		return "DuckDB SQL"
	case SysFloor:
		return "read + split on '\\n' and ','"
	case SysCSVFloor:
		return "mce's CSV reader, no-op callback"
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// writeRuns writes every measured run of each system, round by round,
// so that a reader can pair any two systems' runs of the same round (as
// PerRound does for the targets) or look for an outlier behind a median.
func (r *Report) writeRuns(b *strings.Builder) {
	rounds := 0
	for _, res := range r.Results {
		rounds = max(rounds, len(res.Runs))
	}
	if rounds < 2 {
		return
	}
	b.WriteString("## Every run\n\n" +
		"Each run of the systems table, in the order of the rounds: wall s / CPU s / peak RSS MiB. The systems table gives their medians.\n\n" +
		"| system |")
	for i := range rounds {
		fmt.Fprintf(b, " round %d |", i+1)
	}
	b.WriteString("\n|---|" + strings.Repeat("--:|", rounds) + "\n")
	for _, res := range r.Results {
		if len(res.Runs) == 0 {
			continue
		}
		fmt.Fprintf(b, "| %s |", res.System)
		for i := range rounds {
			if i < len(res.Runs) {
				s := res.Runs[i]
				fmt.Fprintf(b, " %.2f / %.2f / %.0f |", s.Wall.Seconds(), s.CPU().Seconds(), mibOf(s.PeakRSSBytes))
			} else {
				b.WriteString(" |")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

// wallCell is the median wall time and, over several runs, the fastest
// and slowest: on a shared machine the spread says how far to trust a
// difference between two systems.
func wallCell(res *Result) string {
	if len(res.Runs) < 2 {
		return fmt.Sprintf("%.2f", res.Wall.Seconds())
	}
	lo, hi := spread(res, res.Wall, func(s Sample) time.Duration { return s.Wall })
	return fmt.Sprintf("%.2f (%.2f–%.2f)", res.Wall.Seconds(), lo.Seconds(), hi.Seconds())
}

// spread returns the lowest and the highest of v over res's runs, and
// median (the figure the report gives) when it has none.
func spread[T int64 | time.Duration](res *Result, median T, v func(Sample) T) (lo, hi T) {
	lo, hi = median, median
	for i, s := range res.Runs {
		if i == 0 {
			lo, hi = v(s), v(s)
		}
		lo, hi = min(lo, v(s)), max(hi, v(s))
	}
	return lo, hi
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// cell makes s fit in one Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(firstLine(s), "|", `\|`)
	return truncate(s, 300)
}

func parseFloat(s string) (float64, error) {
	var f float64
	_, err := fmt.Sscanf(s, "%g", &f)
	return f, err
}

// human writes a count with a k/M/G suffix.
func human(x float64) string {
	switch {
	case x >= 1e9:
		return fmt.Sprintf("%.2fG", x/1e9)
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}

// writeProfiles writes the report's CPU by phase (--profile): one table
// per profiled system, with the previous report's figures beside when the
// results folder had them.
func (r *Report) writeProfiles(b *strings.Builder) {
	if len(r.Profiles) == 0 {
		return
	}
	b.WriteString("## Where the CPU goes\n\n")
	fmt.Fprintf(b, "%d extra runs of each system with %s set, not measured ones: the samples of every process (the parent and the clusters) together, "+
		"in CPU seconds per run (profiling adds a little). A sample counts for the innermost function of its stack that a phase names (`bench/profile.go`).", ProfileRuns, ProfileEnv)
	before := r.Before
	if before != nil {
		fmt.Fprintf(b, " \"Before\" is the last report in this folder that had them, %s UTC (%s).", before.Date.UTC().Format("2006-01-02 15:04"), before.MCE)
	}
	b.WriteString("\n\n")
	for _, p := range r.Profiles {
		title := profileTitle(p.System)
		if p.Err != "" {
			fmt.Fprintf(b, "**%s**: no profile: %s\n\n", title, firstLine(p.Err))
			continue
		}
		var old *Profile
		if before != nil {
			old = profileOf(before.Profiles, p.System)
		}
		// row writes a table row: the before column only beside a profile
		// of the same system.
		row := func(name, was, now, share string) {
			if old != nil {
				fmt.Fprintf(b, "| %s | %s | %s | %s |\n", name, was, now, share)
			} else {
				fmt.Fprintf(b, "| %s | %s | %s |\n", name, now, share)
			}
		}
		nowHead, shareHead := "CPU s", "share"
		if old != nil {
			nowHead, shareHead = "now, CPU s", "share now"
		}
		row(title+": phase", "before, CPU s", nowHead, shareHead)
		row("---", "--:", "--:", "--:")
		total := p.Total()
		for _, ph := range p.Phases {
			was := "–"
			if old != nil {
				if s, ok := old.Seconds(ph.Name); ok {
					was = fmt.Sprintf("%.3f", s)
				}
			}
			share := "–"
			if total > 0 {
				share = fmt.Sprintf("%.0f%%", 100*ph.Seconds/total)
			}
			row(ph.Name, was, fmt.Sprintf("%.3f", ph.Seconds), share)
		}
		was := ""
		if old != nil {
			was = fmt.Sprintf("**%.3f**", old.Total())
		}
		row("**total**", was, fmt.Sprintf("**%.3f**", total), "100%")
		b.WriteString("\n")
	}
}

// warmNote says how warm the page cache was: before each run the bench
// reads the run's input files the cache does not hold whole
// (warmInputs), and the note gives the share of the inputs' bytes it
// found cached, over every measured run.
func (r *Report) warmNote() string {
	var all warmStats
	worst, runs := 100.0, 0
	look := func(res *Result) {
		if res == nil {
			return
		}
		for _, s := range res.Runs {
			if s.Warm.Bytes > 0 {
				all.add(s.Warm)
				worst = min(worst, s.Warm.share())
				runs++
			}
		}
	}
	for _, res := range r.Results {
		look(res)
	}
	for _, p := range r.Sweep {
		look(p.Run)
		look(p.Reduce)
	}
	const what = "warm page cache (caches cannot be dropped without root)"
	if runs == 0 {
		return what
	}
	return fmt.Sprintf("%s: before each run the bench reads again the input files the cache does not hold whole, "+
		"which held %.1f%% of the runs' input bytes (%.1f%% before the coldest run)", what, all.share(), worst)
}
