package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/bytesize"
)

// FileName is the report's name in the run folder.
const FileName = "report.html"

var (
	//go:embed assets/report.html
	pageHTML string
	//go:embed assets/report.css
	pageCSS string
	//go:embed assets/report.js
	pageJS string

	// pageTmpl is parsed when the first report is written, not when a
	// process starts (see lazyRegexp).
	pageTmpl = sync.OnceValue(func() *template.Template {
		return template.Must(template.New("report").Parse(pageHTML))
	})
)

// Write reads the run folder runDir and writes its report, runDir/report.html
// (under a temporary name first, then renamed), and returns its path. It
// draws what the folder records and says "not recorded" for the rest, so
// it works on old, partial, failed and interrupted runs.
func Write(runDir string) (path string, err error) {
	r, err := readRun(runDir)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := render(&buf, r, time.Now()); err != nil {
		return "", fmt.Errorf("report %s: %w", runDir, err)
	}
	path = filepath.Join(runDir, FileName)
	if err := writeAtomic(path, buf.Bytes()); err != nil {
		return "", fmt.Errorf("report %s: %w", runDir, err)
	}
	return path, nil
}

// Warm does ahead of time what a process's first report costs beyond its
// run folder: the page's template parsed and escaped (html/template
// escapes a template when it first runs it) and the run logs' patterns
// compiled, some 4 ms on a 2-core VM that `mce run` and `mce reduce`
// otherwise spent after their last file, before they could exit. They
// call it on a goroutine of its own while their clusters start. It is
// safe to call at any time, also while a report is written.
func Warm() {
	for _, re := range lazyREs {
		re()
	}
	var buf bytes.Buffer
	_ = render(&buf, &run{dir: "."}, time.Time{})
}

// writeAtomic writes b to a temporary file next to path, syncs it, renames
// it to path and syncs the folder, so that a reader sees the old report or
// the new one, never half of one.
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// page is what the template shows.
type page struct {
	Title, RunDir, Generated string
	Status, StatusClass      string
	Facts                    []fact

	Timeline     template.HTML
	TimelineNote string
	Legend       []legendItem
	RSS          template.HTML
	RSSNote      string

	FileCols  []column
	Files     [][]cell
	FilesNote string

	Failures     []failureView
	FailuresNote string

	Params  []fact
	Command string
	// CommandRecorded says Command is the run's own, from plan.json, not
	// one rebuilt from the settings.
	CommandRecorded bool
	ParamsNote      string

	Advice     *Advice
	AdviceGain string
	Layouts    []layoutView
	Samples    []sampleView
	Recorded   []recordedView

	CSS template.CSS
	JS  template.JS
}

type fact struct{ Label, Value string }

// layoutView is one row of the advice's table of layouts.
type layoutView struct {
	Flags, Seconds, PeakMiB, Note string
	Current                       bool
}

type legendItem struct {
	Label, Color string
}

type column struct {
	Name, Title string
	Num         bool
}

// cell is one table cell: its text and the key it sorts by.
type cell struct {
	Text, Sort, Title, Class string
}

type failureView struct {
	At, Cluster, File, Path, User, Message, Stack string
}

type sampleView struct {
	File    string
	Samples []string
}

type recordedView struct {
	Name, Note string
	OK         bool
}

func render(w *bytes.Buffer, r *run, now time.Time) error {
	files := r.files()
	sx := newXScale(r)
	p := &page{
		RunDir: r.dir, Generated: now.Format("2006-01-02 15:04:05 MST"),
		CSS: template.CSS(pageCSS), JS: template.JS(pageJS),
	}
	p.Title = "mce run " + filepath.Base(r.dir)
	p.Status, p.StatusClass = status(r, files)
	p.Facts = facts(r, files)

	if len(r.attempts) > 0 {
		p.Timeline = template.HTML(timeline(r, sx))
	} else {
		p.TimelineNote = notRecorded(r, statusLog, "no file was started")
	}
	if len(r.rss) > 0 {
		svg, note := rssChart(r, sx)
		p.RSS, p.RSSNote = template.HTML(svg), note
	} else {
		p.RSSNote = notRecorded(r, ramLog, "no RSS sample was recorded (the run was shorter than --poll)")
	}
	for c := 0; c < r.clusterCount(); c++ {
		p.Legend = append(p.Legend, legendItem{Label: fmt.Sprintf("cluster %d", c), Color: clusterColor(c)})
	}

	p.FileCols, p.Files = fileTable(files)
	if len(files) == 0 {
		p.FilesNote = "not recorded: the run folder has no plan.json, summary.json, timings.csv or status.log lines about files"
	}
	p.Failures = failureViews(r, sx)
	if len(p.Failures) == 0 {
		p.FailuresNote = notRecorded(r, failureLog, "none")
	}
	p.Params, p.Command, p.CommandRecorded = params(r, files)
	if len(p.Params) == 0 {
		p.ParamsNote = "not recorded: the run folder has no status.log start line, summary.json or plan.json"
	}
	p.Advice = advise(r, files)
	if g := p.Advice.Gain(); p.Advice.Best != nil && !p.Advice.Best.equal(p.Advice.Current) && g > 0 {
		p.AdviceGain = fmt.Sprintf("%.0f%% less than %s", 100*g, p.Advice.gainBase())
	}
	for _, c := range p.Advice.Ranked {
		v := layoutView{Flags: c.Flags(), Seconds: fmt.Sprintf("%.2f", c.PredictedSeconds), PeakMiB: "—", Current: c.equal(p.Advice.Current)}
		if c.PeakRAMMiB > 0 {
			v.PeakMiB = fmt.Sprintf("%.0f", c.PeakRAMMiB)
		}
		var notes []string
		if v.Current {
			notes = append(notes, "this run")
		}
		if c.OverRAMLimit {
			notes = append(notes, "over the RAM limit")
		}
		v.Note = strings.Join(notes, "; ")
		p.Layouts = append(p.Layouts, v)
	}
	p.Samples = samples(r)
	for _, name := range recordedFiles {
		v := recordedView{Name: name, OK: true}
		for _, m := range r.missing {
			if m == name || strings.HasPrefix(m, name+" ") {
				v.OK, v.Note = false, "not recorded"
				if m != name {
					v.Note = strings.TrimPrefix(m, name+" ")
				}
			}
		}
		if n := r.bad[name]; n > 0 {
			v.Note = fmt.Sprintf("%d lines not understood", n)
			if n == 1 {
				v.Note = "1 line not understood"
			}
		}
		p.Recorded = append(p.Recorded, v)
	}
	return pageTmpl().Execute(w, p)
}

// notRecorded says why a section is empty: its file is missing, or it
// recorded nothing (empty).
func notRecorded(r *run, name, empty string) string {
	for _, m := range r.missing {
		if m == name || strings.HasPrefix(m, name+" ") {
			return "not recorded: the run folder has no " + name
		}
	}
	return empty
}

// status is the run's outcome in one line, and its class (ok, failed,
// interrupted, unknown).
func status(r *run, files []*fileRow) (string, string) {
	var done, failed, total int
	for _, f := range files {
		total++
		switch f.status {
		case "done", "skipped":
			done++
		case "failed":
			failed++
		}
	}
	if n := len(r.sessions); n > 0 && r.sessions[n-1].endLine != "" {
		line := r.sessions[n-1].endLine
		switch {
		case strings.HasPrefix(line, "finished: "):
			line = strings.TrimPrefix(line, "finished: ")
			if i := strings.LastIndex(line, " in "); i > 0 {
				line = line[:i]
			}
			if failed > 0 {
				return line, "failed"
			}
			return line, "ok"
		default:
			return line, "interrupted"
		}
	}
	if s := r.summary; s != nil {
		switch {
		case s.Interrupted:
			return fmt.Sprintf("interrupted: %d of %d files done, %d failed", s.Done+s.Skipped, s.Files, s.Failed), "interrupted"
		case s.Error != "":
			return fmt.Sprintf("stopped by an error: %s", s.Error), "interrupted"
		case s.Done+s.Skipped+s.Failed == s.Files && s.Files > 0:
			if s.Failed > 0 {
				return fmt.Sprintf("%d of %d files failed", s.Failed, s.Files), "failed"
			}
			return fmt.Sprintf("all %d files ok", s.Files), "ok"
		}
	}
	if total == 0 {
		return "nothing recorded", "unknown"
	}
	return fmt.Sprintf("no end recorded (the run was stopped abruptly, or still runs): %d of %d files done, %d failed", done, total, failed), "interrupted"
}

func facts(r *run, files []*fileRow) []fact {
	var out []fact
	add := func(label, value string) {
		if value != "" {
			out = append(out, fact{label, value})
		}
	}
	job, feat := "", ""
	if n := len(r.sessions); n > 0 {
		job, feat = r.sessions[n-1].job, r.sessions[n-1].features
	}
	if r.summary != nil {
		job, feat = or(job, r.summary.Job), or(feat, r.summary.Feature)
	}
	if r.plan != nil {
		job, feat = or(job, r.plan.Job), or(feat, r.plan.Feature)
	}
	add("job", job)
	add("features", feat)
	if t := r.started(); !t.IsZero() {
		add("started", t.Format("2006-01-02 15:04:05 MST"))
	}
	if s := r.wallSeconds(); s > 0 {
		add("wall time", seconds(s))
	}
	if cl := r.clusterCPUs(); len(cl) > 0 {
		add("clusters", Layout{Clusters: cl, Queue: r.queue()}.String())
	}
	var counts = map[string]int{}
	var bytesRead, rows, bad, badValues, emptied int64
	for _, f := range files {
		counts[f.status]++
		bytesRead += f.bytes
		rows += f.rows
		bad += f.badRows
		badValues += f.badValues
		emptied += f.emptiedValues
	}
	if len(files) > 0 {
		var parts []string
		for _, st := range []string{"done", "skipped", "failed", "running", "pending", "killed", "crashed", "lost"} {
			if counts[st] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
			}
		}
		add("files", fmt.Sprintf("%d: %s", len(files), strings.Join(parts, ", ")))
	}
	if rows > 0 || bad > 0 {
		add("rows", fmt.Sprintf("%s good, %s bad", group(rows), group(bad)))
	}
	if badValues > 0 {
		add("bad values", badValuesText(badValues, emptied))
	}
	if bytesRead > 0 {
		v := bytesize.Format(bytesRead)
		if s := r.wallSeconds(); s > 0 {
			v += fmt.Sprintf(" at %.1f MB/s", float64(bytesRead)/1e6/s)
		}
		add("data read", v)
	}
	var peak float64
	for _, s := range r.rss {
		peak = max(peak, s.totalMiB)
	}
	if r.summary != nil {
		peak = max(peak, mibOf(r.summary.PeakRSSBytes))
	}
	if peak > 0 {
		v := fmt.Sprintf("%.0f MiB", peak)
		if l := r.ramLimitMiB(); l > 0 {
			v += fmt.Sprintf(" of the %.0f MiB limit", l)
		}
		add("peak RSS", v)
	}
	kills, restarts := 0, 0
	for _, e := range r.events {
		switch e.kind {
		case eventKill:
			kills++
		case eventRestart:
			restarts++
		}
	}
	if kills+restarts > 0 {
		add("kills, restarts", fmt.Sprintf("%d, %d", kills, restarts))
	}
	return out
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// group writes n with thin spaces between groups of three digits.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "\u202f" + s[i:]
	}
	return s
}

// fileTable returns the per-file table's columns and rows.
func fileTable(files []*fileRow) ([]column, [][]cell) {
	cols := []column{
		{Name: "#", Num: true, Title: "the task's number in the plan"}, {Name: "file"}, {Name: "size", Num: true, Title: "on disk"},
		{Name: "rows", Num: true}, {Name: "bad", Num: true, Title: "bad rows"}, {Name: "users", Num: true},
		{Name: "map s", Num: true}, {Name: "reduce s", Num: true}, {Name: "total s", Num: true, Title: "the last attempt, from its start to its result"},
		{Name: "MB/s", Num: true, Title: "uncompressed bytes over total seconds"}, {Name: "RSS MiB", Num: true, Title: "peak RSS: the cluster's largest RSS while it held the file, over all attempts"},
		{Name: "skew", Num: true, Title: "the slowest reduce worker's time over the mean"}, {Name: "mode"},
		{Name: "cl.", Num: true, Title: "the cluster of the last attempt"}, {Name: "tries", Num: true, Title: "attempts"}, {Name: "status"},
	}
	hasPhase := false
	for _, f := range files {
		hasPhase = hasPhase || f.phase > 0
	}
	if hasPhase {
		cols = append(cols[:2], append([]column{{Name: "phase", Num: true}}, cols[2:]...)...)
	}
	num := func(v float64, format string, known bool) cell {
		if !known {
			return cell{Text: "—", Sort: "-1"}
		}
		return cell{Text: fmt.Sprintf(format, v), Sort: strconv.FormatFloat(v, 'g', -1, 64)}
	}
	count := func(v int64, known bool) cell {
		if !known {
			return cell{Text: "—", Sort: "-1"}
		}
		return cell{Text: group(v), Sort: strconv.FormatInt(v, 10)}
	}
	var rows [][]cell
	for _, f := range files {
		res := f.hasResult
		row := []cell{
			count(int64(f.id), f.id >= 0),
			{Text: f.name(), Sort: f.name(), Title: f.input, Class: "file"},
		}
		if hasPhase {
			row = append(row, count(int64(f.phase), true))
		}
		size := cell{Text: bytesize.Format(f.size), Sort: strconv.FormatInt(f.size, 10)}
		if f.size <= 0 {
			size = cell{Text: "—", Sort: "-1"}
		}
		skew := num(f.skew, "%.2f", res && f.skew > 0)
		if f.skew >= 1.5 {
			skew.Class = "warn"
		}
		st := cell{Text: f.status, Sort: f.status, Class: "st-" + f.status, Title: f.message}
		row = append(row, size,
			count(f.rows, res), count(f.badRows, res), count(f.users, res),
			num(f.mapSeconds, "%.2f", res), num(f.reduceSeconds, "%.2f", res), num(f.seconds, "%.2f", f.seconds > 0),
			num(f.mbPerSec(), "%.1f", f.mbPerSec() > 0), num(f.peakRSSMiB, "%.0f", f.peakRSSMiB > 0),
			skew, cell{Text: or(f.mode, "—"), Sort: f.mode, Title: f.modeReason},
			count(int64(f.cluster), f.cluster >= 0), count(int64(f.attempts), true), st,
		)
		rows = append(rows, row)
	}
	return cols, rows
}

func failureViews(r *run, sx xScale) []failureView {
	var out []failureView
	for _, f := range r.failures {
		v := failureView{
			At: clock(sx.sec(f.time), 0.01), File: filepath.Base(f.file), Path: f.file,
			User: f.user, Message: f.message, Stack: strings.TrimRight(f.stack, "\n"),
		}
		if f.file == "" {
			v.File = "—"
		}
		if f.cluster >= 0 {
			v.Cluster = strconv.Itoa(f.cluster)
		}
		out = append(out, v)
	}
	return out
}

// params lists the run's settings as recorded, and its command line: the
// one plan.json records, or else an equivalent one rebuilt from the
// settings (recorded is false).
func params(r *run, files []*fileRow) (_ []fact, cmdLine string, recorded bool) {
	var out []fact
	add := func(label, value string) {
		if value != "" {
			out = append(out, fact{label, value})
		}
	}
	var s *session
	if n := len(r.sessions); n > 0 {
		s = &r.sessions[n-1]
	}
	cl := r.clusterCPUs()
	queue := r.queue()
	limit := r.ramLimitMiB()
	if len(cl) > 0 {
		add("--clusters", Layout{Clusters: cl}.ClustersFlag())
	}
	add("--queue", queue)
	if limit > 0 {
		add("--ram-limit", fmt.Sprintf("%.0f MiB", limit))
	}
	measure := ""
	if s != nil {
		measure = s.ramMeasure
	}
	add("--ram-measure", measure)
	var job, feat, worker string
	if s != nil {
		job, feat, worker = s.job, s.features, s.worker
		if len(r.sessions) > 1 {
			add("sessions", fmt.Sprintf("%d (resumed %d times)", len(r.sessions), len(r.sessions)-1))
		}
	}
	if r.summary != nil {
		job, feat = or(job, r.summary.Job), or(feat, r.summary.Feature)
	}
	if r.plan != nil {
		job, feat = or(job, r.plan.Job), or(feat, r.plan.Feature)
	}
	add("--job", job)
	add("features", feat)
	add("worker", worker)
	var paramFlags []string
	if r.plan != nil {
		keys := make([]string, 0, len(r.plan.Params))
		for k := range r.plan.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			add("--param", k+"="+r.plan.Params[k])
			paramFlags = append(paramFlags, "--param "+shellQuote(k+"="+r.plan.Params[k]))
		}
		reader := r.plan.Reader
		if m, ok := r.plan.Settings["reader"].(map[string]any); ok {
			reader = m
		}
		for _, k := range nonZeroKeys(reader) {
			add("reader "+k, readerValue(k, reader[k]))
		}
		for _, k := range nonZeroKeys(r.plan.Settings) {
			switch v := r.plan.Settings[k].(type) {
			case map[string]any:
				if k != "reader" {
					for _, k2 := range nonZeroKeys(v) {
						add(k+" "+k2, fmt.Sprint(v[k2]))
					}
				}
			default:
				add(k, fmt.Sprint(v))
			}
		}
		if f := r.plan.Features; f != nil {
			add("features file", fmt.Sprintf("%s (sha256 %.12s…)", f.Path, f.SHA256))
		}
		if !r.plan.Created.IsZero() {
			add("planned", r.plan.Created.Format("2006-01-02 15:04:05 MST"))
		}
	}
	if len(out) == 0 {
		return nil, "", false
	}
	if r.plan != nil && len(r.plan.Command) > 0 {
		quoted := make([]string, len(r.plan.Command))
		for i, a := range r.plan.Command {
			quoted[i] = shellQuote(a)
		}
		return out, strings.Join(quoted, " "), true
	}
	// The equivalent command line.
	cmd := []string{"mce", "run"}
	var inputs []string
	store := ""
	for _, f := range files {
		switch {
		case strings.HasPrefix(f.kind, "store-"):
			if i := strings.Index(f.input, "#"); i > 0 && store == "" && f.kind == "store-read" {
				store = f.input[:i]
			}
		case f.input != "":
			inputs = append(inputs, f.input)
		}
	}
	isReduce := false
	for _, f := range files {
		isReduce = isReduce || strings.HasPrefix(f.kind, "store-")
	}
	if isReduce {
		cmd = []string{"mce", "reduce"}
		if store != "" {
			cmd = append(cmd, "--store", shellQuote(store))
		}
	}
	if job != "" && job != "job" {
		cmd = append(cmd, "--job", shellQuote(job))
	}
	if len(cl) > 0 {
		cmd = append(cmd, "--clusters", Layout{Clusters: cl}.ClustersFlag())
	}
	if queue != "" && queue != queueDeque {
		cmd = append(cmd, "--queue", queue)
	}
	if limit > 0 {
		cmd = append(cmd, "--ram-limit", fmt.Sprintf("%.0fMiB", limit))
	}
	if measure != "" && measure != "rss" {
		cmd = append(cmd, "--ram-measure", measure)
	}
	cmd = append(cmd, paramFlags...)
	if !isReduce {
		if dir := commonDir(inputs); dir != "" && len(inputs) > 3 {
			cmd = append(cmd, shellQuote(dir)+"/…")
		} else {
			for _, in := range inputs {
				cmd = append(cmd, shellQuote(in))
			}
		}
	}
	return out, strings.Join(cmd, " "), false
}

// nonZeroKeys returns m's keys whose values are not zero, sorted.
func nonZeroKeys(m map[string]any) []string {
	var keys []string
	for k, v := range m {
		if !isZero(v) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// readerValue shows a reader option of plan.json: the delimiter as its
// character and the encoding by its name (both are numbers there).
func readerValue(k string, v any) string {
	n, ok := v.(float64)
	switch {
	case ok && k == "Delimiter":
		return strconv.QuoteRune(rune(n))
	case ok && k == "Encoding":
		return feature.Encoding(n).String()
	}
	return fmt.Sprint(v)
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case float64:
		return x == 0
	case string:
		return x == ""
	case bool:
		return !x
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// commonDir returns the folder all paths are in, "" when they differ.
func commonDir(paths []string) string {
	dir := ""
	for i, p := range paths {
		d := filepath.Dir(p)
		if i == 0 {
			dir = d
		} else if d != dir {
			return ""
		}
	}
	return dir
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./=:,+@%", c))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// samples returns the bad row samples of status.log by file.
func samples(r *run) []sampleView {
	var out []sampleView
	for f, s := range r.samples {
		out = append(out, sampleView{File: filepath.Base(f), Samples: s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out
}

// badValuesText says what became of the amounts and dates that did not
// read: their rows left out (--on-bad-value skip-row, counted among the
// bad rows) or the values emptied in kept rows (empty).
func badValuesText(n, emptied int64) string {
	switch {
	case emptied == 0:
		return group(n) + ": their rows left out (among the bad rows)"
	case emptied == n:
		return group(n) + ": emptied, their rows kept"
	}
	return fmt.Sprintf("%s: %s emptied in kept rows, the others' rows left out", group(n), group(emptied))
}
