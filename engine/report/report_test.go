package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// copyRun copies a run folder of testdata into a new temporary folder, so
// that Write does not write into testdata.
func copyRun(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

var (
	reRef    = regexp.MustCompile(`(?i)\b(?:src|href|action|poster|data)\s*=\s*"([^"]*)"`)
	reCSSURL = regexp.MustCompile(`(?i)url\(\s*['"]?([^'")]*)`)
	reSVG    = regexp.MustCompile(`(?s)<svg\b.*?</svg>`)
)

// checkSelfContained fails when the page refers to anything but itself:
// every src or href is data: or a fragment, every CSS url() a fragment.
func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	for _, m := range reRef.FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(m[1], "data:") && !strings.HasPrefix(m[1], "#") {
			t.Errorf("the page refers to %q", m[0])
		}
	}
	for _, m := range reCSSURL.FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(m[1], "#") {
			t.Errorf("the page's CSS loads %q", m[0])
		}
	}
	for _, bad := range []string{"@import", "<link rel=\"stylesheet\"", "<iframe", "fetch(", "XMLHttpRequest", "@font-face"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page has %q", bad)
		}
	}
}

// checkSVG parses every inline SVG as XML.
func checkSVG(t *testing.T, page string) {
	t.Helper()
	for _, svg := range reSVG.FindAllString(page, -1) {
		d := xml.NewDecoder(strings.NewReader(svg))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("an SVG is not well-formed XML: %v", err)
				break
			}
		}
	}
}

// TestWrite writes the report of every run folder of testdata and checks
// it: one bar per attempt, one RSS line per cluster with samples, a
// self-contained page, sections that say what is not recorded.
func TestWrite(t *testing.T) {
	for _, src := range runDirs(t) {
		t.Run(filepath.Base(src), func(t *testing.T) {
			dir := copyRun(t, src)
			path, err := Write(dir)
			if err != nil {
				t.Fatal(err)
			}
			if path != filepath.Join(dir, FileName) {
				t.Errorf("Write returned %s", path)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			page := string(b)
			r, _ := readRun(dir)
			if got, want := strings.Count(page, `<rect class="bar `), len(r.attempts); got != want {
				t.Errorf("%d bars, %d attempts", got, want)
			}
			lines := map[int]bool{}
			for _, s := range r.rss {
				lines[s.cluster] = true
			}
			if got := strings.Count(page, `<polyline class="rss"`); got != len(lines) {
				t.Errorf("%d RSS lines, %d clusters with samples", got, len(lines))
			}
			if len(r.rss) == 0 && !strings.Contains(page, "no RSS sample was recorded") && !strings.Contains(page, "has no ram_usage.log") {
				t.Error("no RSS samples, and the page does not say so")
			}
			for _, m := range r.missing {
				if !strings.Contains(page, m+" <span class=\"missing\">(not recorded)") && !strings.Contains(page, "<code>"+m+"</code> <span class=\"missing\">") {
					t.Errorf("the page does not say %s is not recorded", m)
				}
			}
			checkSelfContained(t, page)
			checkSVG(t, page)
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.Contains(e.Name(), ".tmp-") {
					t.Errorf("temporary file %s left", e.Name())
				}
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		dir := t.TempDir()
		path, err := Write(dir)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		for _, want := range []string{"nothing recorded", "not recorded: the run folder has no status.log", "not recorded: the run folder has no ram_usage.log", "No advice"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("the report of an empty folder lacks %q", want)
			}
		}
	})
	t.Run("not a folder", func(t *testing.T) {
		if _, err := Write(filepath.Join(t.TempDir(), "nope")); err == nil {
			t.Error("no error")
		}
	})
}

// TestWrite_Escapes puts markup in a file name, a user and a message: the
// page must show it as text.
func TestWrite_Escapes(t *testing.T) {
	dir := copyRun(t, "testdata/runs/crash")
	evil := `<script>alert(1)</script>`
	add := func(name, text string) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(text)
		f.Close()
	}
	add(statusLog, "2026-03-02T08:00:05.700Z file /data/"+evil+".csv (#9) -> cluster 1\n")
	add(failureLog, "2026-03-02T08:00:05.800Z cluster 1 file /data/"+evil+`.csv user "`+evil+`": `+evil+"\n")
	path, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), evil) {
		t.Error("the page holds unescaped markup from the logs")
	}
	if strings.Count(string(b), "&lt;script&gt;") < 3 {
		t.Error("the escaped name is missing")
	}
	checkSVG(t, string(b))
}

// TestWrite_BadValues gives the ok run's summary.json bad values, emptied
// or with their rows left out, and a timings.csv that counts them: the
// page says how many and what became of them.
func TestWrite_BadValues(t *testing.T) {
	for _, c := range []struct {
		name          string
		values, empty int64
		timingsOnly   bool
		want, wantNot string
	}{
		{"left out", 3, 0, false, "3: their rows left out (among the bad rows)", "emptied"},
		{"emptied", 3, 3, false, "3: emptied, their rows kept", "left out"},
		{"both", 5, 2, false, "5: 2 emptied in kept rows, the others&#39; rows left out", ""},
		{"timings.csv alone", 4, 0, true, "4: their rows left out", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyRun(t, filepath.Join("testdata", "runs", "ok"))
			if c.timingsOnly {
				timingsOnly(t, dir, "bad_values", fmt.Sprint(c.values))
			} else {
				setFirstResult(t, dir, map[string]any{"bad_values": c.values, "bad_values_emptied": c.empty})
			}
			page := renderPage(t, dir)
			i := strings.Index(page, "bad values")
			if i < 0 || !strings.Contains(page[i:], c.want) {
				t.Fatalf("the page lacks bad values %q", c.want)
			}
			if c.wantNot != "" && strings.Contains(page[i:min(len(page), i+200)], c.wantNot) {
				t.Errorf("the page's bad values say %q:\n%s", c.wantNot, page[i:min(len(page), i+200)])
			}
		})
	}
}

// TestWrite_ModeReason: the files table's mode cell says why the file
// took that mode (a hover title), from summary.json, or from timings.csv
// when summary.json is missing.
func TestWrite_ModeReason(t *testing.T) {
	const why = "one pass outgrew 40% of the cluster's share: 930025 users"
	for _, only := range []bool{false, true} {
		t.Run(fmt.Sprintf("timings.csv alone=%v", only), func(t *testing.T) {
			dir := copyRun(t, filepath.Join("testdata", "runs", "ok"))
			if only {
				timingsOnly(t, dir, "mode_reason", why)
			} else {
				setFirstResult(t, dir, map[string]any{"mode_reason": why})
			}
			page := renderPage(t, dir)
			if want := `title="` + html.EscapeString(why) + `"`; !strings.Contains(page, want) {
				t.Errorf("the page has no cell titled %s", want)
			}
		})
	}
}

// setFirstResult sets fields of the first task's result in the run
// folder dir's summary.json.
func setFirstResult(t *testing.T, dir string, fields map[string]any) {
	t.Helper()
	path := filepath.Join(dir, "summary.json")
	var s map[string]any
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		t.Fatal(err)
	}
	res := s["tasks"].([]any)[0].(map[string]any)["result"].(map[string]any)
	for k, v := range fields {
		res[k] = v
	}
	if b, err = json.Marshal(s); err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// timingsOnly removes the run folder dir's summary.json, so that the
// report reads timings.csv, and sets column col of timings.csv's first
// line to v (adding the column, empty on the other lines, when it is
// missing).
func timingsOnly(t *testing.T, dir, col, v string) {
	t.Helper()
	os.Remove(filepath.Join(dir, "summary.json"))
	path := filepath.Join(dir, "timings.csv")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	c := slices.Index(recs[0], col)
	if c < 0 {
		for i := range recs {
			recs[i] = append(recs[i], "")
		}
		c = len(recs[0]) - 1
		recs[0][c] = col
	}
	recs[1][c] = v
	var out bytes.Buffer
	w := csv.NewWriter(&out)
	if err := w.WriteAll(recs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// renderPage writes the run folder dir's report and returns the page.
func renderPage(t *testing.T, dir string) string {
	t.Helper()
	out, err := Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestWarm checks Warm, which `mce run` and `mce reduce` call while their
// clusters start: it renders an empty run without failing, runs beside a
// report being written, and leaves every recorded run's page as it was.
func TestWarm(t *testing.T) {
	dirs, err := filepath.Glob("testdata/runs/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no recorded runs: %v", err)
	}
	pages := func() []string {
		var out []string
		for _, d := range dirs {
			r, err := readRun(d)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := render(&buf, r, time.Unix(0, 0)); err != nil {
				t.Fatalf("%s: %v", d, err)
			}
			out = append(out, buf.String())
		}
		return out
	}
	done := make(chan struct{})
	go func() { Warm(); close(done) }()
	before := pages()
	<-done
	Warm()
	after := pages()
	for i := range dirs {
		if before[i] != after[i] {
			t.Errorf("%s: the page changed after Warm", dirs[i])
		}
	}
}

// TestWrite_Settings: a plan.json of version 2 keeps the reader's options
// under settings, and the command line that started the run. The page
// lists those settings, the delimiter as its character and the encoding by
// name, and shows that command line as the run's own; a version 1 plan
// (the ok run's) gets a rebuilt one, said to be so.
func TestWrite_Settings(t *testing.T) {
	dir := copyRun(t, filepath.Join("testdata", "runs", "ok"))
	b, err := os.ReadFile(filepath.Join(dir, "plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	v1 := html.UnescapeString(renderPage(t, dir))
	for _, want := range []string{"Equivalent command line (rebuilt from the run folder", "reader MaxBadRowShare"} {
		if !strings.Contains(v1, want) {
			t.Errorf("the page of a version 1 plan lacks %q", want)
		}
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	delete(p, "reader")
	p["version"] = 2
	p["settings"] = map[string]any{
		"reader": map[string]any{"Delimiter": ';', "Encoding": 2, "MaxBadRowShare": 0.01, "Aliases": map[string]any{}, "OnBadValue": "empty", "TZ": "America/Mexico_City"},
		"mode":   "stream",
		"output": map[string]any{"format": "parquet", "key_name": ""},
	}
	p["command"] = []string{"mce", "run", "--delimiter", ";", "--format", "parquet", "/data/month's files"}
	p["features_source"] = map[string]any{"path": "/home/a/f.go", "sha256": "0123456789abcdef0123"}
	b, err = json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plan.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	page := html.UnescapeString(renderPage(t, dir))
	for _, want := range []string{
		"<dt>reader Delimiter</dt><dd>';'</dd>",
		"<dt>reader Encoding</dt><dd>cp1252</dd>",
		"<dt>reader OnBadValue</dt><dd>empty</dd>",
		"<dt>reader TZ</dt><dd>America/Mexico_City</dd>",
		"<dt>mode</dt><dd>stream</dd>",
		"<dt>output format</dt><dd>parquet</dd>",
		"<dt>features file</dt><dd>/home/a/f.go (sha256 0123456789ab…)</dd>",
		"The command line that started the run (recorded in plan.json)",
		`mce run --delimiter ';' --format parquet '/data/month'\''s files'`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, not := range []string{"Equivalent command line", "reader Aliases", "output key_name"} {
		if strings.Contains(page, not) {
			t.Errorf("the page has %q", not)
		}
	}
}
