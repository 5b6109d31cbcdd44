package report_test

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/mce-engine/mce/engine/report"
	"github.com/mce-engine/mce/internal/e2etest"
)

var screenshot = flag.String("screenshot", "", "write a screenshot of the demo run's report to this PNG `file` too "+
	"(the README's: go test ./engine/report -run TestReport_Browser -screenshot ../../docs/report.png)")

// The binaries under test, built once by TestMain: mce and the faulty
// features binary (a panic or a RAM hog on chosen users).
var mceBin, faultyBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // the browser test needs the binaries; it skips
	}
	os.Exit(e2etest.Main("mce-report-test-", map[string]string{"mce": "../../cmd/mce", "faulty": "../../internal/e2etest/testdata/faulty/f.go"},
		func(dir string, bins map[string]string) int {
			mceBin, faultyBin = bins["mce"], bins["faulty"]
			return m.Run()
		}))
}

// chromium returns the path of a Chromium or Chrome binary. Without one the
// test fails when CI is set and skips otherwise.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "no Chromium binary on PATH: install it with apt-get install -y chromium (.ci/run does)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg + "; with CI set this test fails instead")
	return ""
}

// usersOnlyIn returns, for each data file, its users with at least two
// rows that no other file has, from the generator's _truth.csv.
func usersOnlyIn(t *testing.T, dataDir string) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dataDir, "_truth.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]map[string]bool{}
	rows := map[string]int{}
	for _, r := range recs[1:] { // file,user,rows,amount_total
		if files[r[1]] == nil {
			files[r[1]] = map[string]bool{}
		}
		files[r[1]][r[0]] = true
		n, _ := strconv.Atoi(r[2])
		rows[r[1]] += n
	}
	out := map[string][]string{}
	for u, fs := range files {
		if len(fs) == 1 && rows[u] >= 2 {
			for f := range fs {
				out[f] = append(out[f], u)
			}
		}
	}
	for f := range out {
		sort.Strings(out[f])
	}
	return out
}

// demoRun generates six invoice files and runs the faulty features binary
// on them with --clusters 2,1 and --ram-limit 200MiB: a user of the
// largest file holds 256 MiB for a moment (its cluster is killed, and the
// file's retry alone succeeds), and the feature function panics on a user
// of another file (that file fails). It returns the run folder.
func demoRun(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	data := filepath.Join(root, "data")
	if r := e2etest.Run(t, mceBin, "gen", "--out", data, "--seed", "3", "--files", "6", "--size", "48MB", "--messy"); r.Code != 0 {
		t.Fatalf("mce gen: exit %d", r.Code)
	}
	inputs, err := filepath.Glob(filepath.Join(data, "invoices_*"))
	if err != nil || len(inputs) != 6 {
		t.Fatalf("generated %v, %v", inputs, err)
	}
	sort.Slice(inputs, func(i, j int) bool { return size(t, inputs[i]) > size(t, inputs[j]) })
	only := usersOnlyIn(t, data)
	largest, third := filepath.Base(inputs[0]), filepath.Base(inputs[2])
	if len(only[largest]) == 0 || len(only[third]) == 0 {
		t.Fatalf("no user found in %s or %s only", largest, third)
	}
	args := append([]string{"run"}, inputs...)
	args = append(args, "--out", filepath.Join(root, "out"), "--job", "demo", "--clusters", "2,1", "--poll", "50ms",
		"--ram-limit", "200MiB", "--no-progress",
		"--param", "hog_user="+only[largest][0], "--param", "hog_mib=256", "--param", "hog_ms=800",
		"--param", "hog_once="+filepath.Join(root, "hogged"),
		"--param", "panic_user="+only[third][0])
	r := e2etest.Run(t, faultyBin, args...)
	if r.Code != 1 || r.RunDir == "" {
		t.Fatalf("faulty run: exit %d (want 1: one file fails), run folder %q\n%s", r.Code, r.RunDir, e2etest.Tail(r.Stderr, 2000))
	}
	status := e2etest.ReadLog(t, r.RunDir, "status.log")
	failures := e2etest.ReadLog(t, r.RunDir, "failure.log")
	if !strings.Contains(status, "killed over the RAM limit") || !strings.Contains(failures, "panic: faulty: panic on user") {
		t.Fatalf("the run has no RAM kill or no failed file:\n%s\n%s", status, failures)
	}
	return r.RunDir
}

func size(t *testing.T, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// pageEvents collects what the page does that it should not: console
// errors, uncaught exceptions, error log entries, failed requests, and
// every request that is not for a file: or data: URL.
type pageEvents struct {
	mu       sync.Mutex
	problems []string
	requests []string
}

func (p *pageEvents) add(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

func (p *pageEvents) listen(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == "error" || ev.Type == "assert" || ev.Type == "warning" {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			p.add("console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		if d.Exception != nil {
			p.add("exception: %s %s", d.Text, d.Exception.Description)
		} else {
			p.add("exception: %s", d.Text)
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == "error" || ev.Entry.Level == "warning" {
			p.add("log %s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		}
	case *network.EventLoadingFailed:
		p.add("request failed: %s (%s, blocked: %q)", ev.RequestID, ev.ErrorText, ev.BlockedReason)
	case *network.EventRequestWillBeSent:
		p.mu.Lock()
		p.requests = append(p.requests, ev.Request.URL)
		p.mu.Unlock()
		if !strings.HasPrefix(ev.Request.URL, "file://") && !strings.HasPrefix(ev.Request.URL, "data:") {
			p.add("request to the network: %s", ev.Request.URL)
		}
	}
}

// TestReport_Browser runs a job with a RAM-limit kill and a failed file,
// writes its report and opens it in headless Chromium with the network
// off: no console error, no failed or outside request, one timeline bar
// per attempt that status.log records, one RSS line per cluster, a
// sortable table, and a screenshot (in the test's temporary folder, and
// where -screenshot says).
func TestReport_Browser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs mce, then a browser")
	}
	exe := chromium(t)
	runDir := demoRun(t)
	page, err := report.Write(runDir)
	if err != nil {
		t.Fatal(err)
	}

	// What the page must show, counted from the logs independently.
	status := e2etest.ReadLog(t, runDir, "status.log")
	attempts := len(regexp.MustCompile(`(?m)^\S+ file .* \(#\d+\) -> cluster \d+`).FindAllString(status, -1))
	m := regexp.MustCompile(`(?m)^\S+ start job .* clusters \[([\d ]+)\]`).FindStringSubmatch(status)
	if m == nil || attempts == 0 {
		t.Fatalf("status.log has no start line or no attempt:\n%s", status)
	}
	clusters := len(strings.Fields(m[1]))

	start := time.Now()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.DisableGPU, chromedp.WindowSize(1280, 1000),
		// No network at all: every proxied request goes to a closed port.
		chromedp.Flag("proxy-server", "http://127.0.0.1:9"), chromedp.Flag("proxy-bypass-list", "<-loopback>"),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", exe, err)
	}
	events := &pageEvents{}
	if err := chromedp.Listen(bctx, events.listen); err != nil {
		t.Fatal(err)
	}
	// Offline, and every http(s) and ws(s) URL blocked: the page may load
	// nothing but itself.
	var blocked []*network.BlockPattern
	for _, scheme := range []string{"http", "https", "ws", "wss"} {
		blocked = append(blocked, &network.BlockPattern{URLPattern: scheme + "://*:*/*", Block: true})
	}
	if _, err := chromedp.Call(bctx, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: blocked}); err != nil {
		t.Fatalf("block URLs: %v", err)
	}
	if _, err := chromedp.Call(bctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: true, DownloadThroughput: -1, UploadThroughput: -1}); err != nil {
		t.Fatalf("go offline: %v", err)
	}
	if _, err := chromedp.Call(bctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{Offline: true, DownloadThroughput: -1, UploadThroughput: -1}},
	}); err != nil {
		t.Fatalf("emulate offline: %v", err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate("file://"+page), chromedp.WaitReady(chromedp.CSS("#files tbody tr"))); err != nil {
		t.Fatalf("open %s: %v", page, err)
	}

	count := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(bctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
		if err != nil {
			t.Fatalf("count %s: %v", sel, err)
		}
		return n
	}
	if n := count("#timeline rect.bar"); n != attempts {
		t.Errorf("the timeline has %d bars; status.log records %d attempts", n, attempts)
	}
	if n := count("#rss polyline.rss"); n != clusters {
		t.Errorf("the RAM chart has %d lines; the run had %d clusters", n, clusters)
	}
	if n := count("#timeline .mark.kill"); n == 0 {
		t.Error("the timeline marks no kill")
	}
	if n := count("#rss .kill-line"); n == 0 {
		t.Error("the RAM chart marks no kill")
	}
	if n := count("#rss line.limit"); n != 1 {
		t.Errorf("the RAM chart has %d limit lines", n)
	}
	if n := count("#failures tbody tr"); n < 2 {
		t.Errorf("%d failures listed; want the kill and the panic", n)
	}
	if n := count("#files tbody tr"); n != 6 {
		t.Errorf("%d files in the table, want 6", n)
	}
	// The command line shown is the run's own, as plan.json recorded it:
	// its --param flags and --clusters as given.
	cmdLine, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector("#params-section pre.cmd").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{faultyBin + " run ", "--clusters 2,1 --poll 50ms", "--param hog_mib=256"} {
		if !strings.Contains(cmdLine, want) {
			t.Errorf("the page's command line %q lacks %q", cmdLine, want)
		}
	}
	// Every line the run wrote to status.log is one the report reads (a
	// kill, an alone retry, a panic and both modes among them).
	footer, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector("footer").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(footer, "not understood") {
		t.Errorf("the report did not read every line of the run's files: %s\n%s", footer, e2etest.ReadLog(t, filepath.Dir(page), "status.log"))
	}
	// A click on "size" sorts the table by size, another click reverses it.
	const sortBySize = `(() => {
		const th = [...document.querySelectorAll("#files thead th")].find(h => h.textContent.trim() === "size");
		th.click();
		return [...document.querySelectorAll("#files tbody tr")].map(r => parseFloat(r.cells[th.cellIndex].dataset.sort));
	})()`
	for _, asc := range []bool{true, false} {
		sizes, err := chromedp.Run(bctx, chromedp.Evaluate[[]float64](sortBySize))
		if err != nil {
			t.Fatal(err)
		}
		sorted := sort.SliceIsSorted(sizes, func(i, j int) bool { return (sizes[i] < sizes[j]) == asc && sizes[i] != sizes[j] })
		if !sorted || len(sizes) != 6 {
			t.Errorf("after a click on size (ascending %v): %v", asc, sizes)
		}
	}

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "report.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Errorf("the screenshot is not a PNG (%d bytes)", len(png))
	}
	t.Logf("report %s; screenshot %s (%d KiB); browser checks took %s", page, shot, len(png)>>10, time.Since(start).Round(time.Millisecond))

	if *screenshot != "" {
		// The top of the page (header, advice, timeline, RSS chart) at
		// README width; the temporary folder's name means nothing there.
		if err := chromedp.Do(bctx, chromedp.Evaluate[chromedp.Void](`document.querySelector(".where code").textContent = "out/demo0"`)); err != nil {
			t.Fatal(err)
		}
		top, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`document.querySelector("#files-section").getBoundingClientRect().top + window.scrollY`))
		if err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(bctx, chromedp.EmulateViewport(1100, int64(top))); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d KiB)", *screenshot, len(png)>>10)
	}

	events.mu.Lock()
	defer events.mu.Unlock()
	for _, p := range events.problems {
		t.Errorf("the page: %s", p)
	}
	if len(events.requests) == 0 || !strings.HasPrefix(events.requests[0], "file://") {
		t.Errorf("requests seen: %v; want the page's own file: URL first", events.requests)
	}
}
