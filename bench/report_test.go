package bench

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"
)

func TestBreakEven(t *testing.T) {
	f := func(partition, run, reduce float64, want int) {
		t.Helper()
		if got := BreakEven(partition, run, reduce); got != want {
			t.Errorf("BreakEven(%v, %v, %v) = %d, want %d", partition, run, reduce, got, want)
		}
	}
	f(10, 4, 1, 4)  // 10+4·1 = 14 < 16; 10+3 = 13 ≥ 12
	f(9, 4, 1, 4)   // 9+3 = 12 is not < 12
	f(0.5, 4, 1, 1) // cheaper from the first job
	f(10, 4, 4, 0)  // reduce not faster: never
	f(10, 4, 5, 0)
	f(10, 0, 0, 0)
}

func res(system string, wallS float64, rssMiB int64) *Result {
	return &Result{System: system, What: system, CPUs: 2, Status: StatusOK,
		Wall: time.Duration(wallS * float64(time.Second)), CPU: time.Duration(wallS * 1.5 * float64(time.Second)),
		PeakRSSBytes: rssMiB << 20}
}

// testReport is a report of 300 MB on 2 CPUs with made-up figures.
func testReport() *Report {
	run, part, red := res(SysRun, 1.5, 400), res(SysPartition, 2.5, 300), res(SysReduce, 0.5, 100)
	part.StoreBytes = 120e6
	part.Spill = "spilled 90 MiB of runs, stored"
	run.Skew = &Skew{Files: 6, Overall: 1.05, HeavyMax: 1.1, Max: 1.3, MaxFile: "invoices_2024_07"}
	red.Skew = &Skew{Files: 6, Overall: 1.4, HeavyMax: 1.6, Max: 1.6, MaxFile: "invoices_2024_12"}
	duck := res(SysDuckDB, 4, 900)
	duck.Note = "DuckDB v1.5.6"
	return &Report{
		Date:    time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC),
		Machine: Machine{Host: "box 1", Cores: 2, RAMBytes: 8 << 30, CPUModel: "Test CPU", LoadStart: "3.0", WorkFreeBytes: 3 << 29},
		Config:  Config{CPUs: 2, Runs: 3, PartitionMem: "256MiB", Results: "x"},
		Data:    &Dataset{Files: make([]string, 6), RawBytes: 300e6, DiskBytes: 300e6, Rows: 2e6, Desc: "test data"},
		Results: []*Result{run, res(SysRunGroup, 2.4, 900), res(SysRunReduce, 1.6, 700), part, red, res(SysReduceReduce, 0.9, 150),
			{System: SysUnix, Status: StatusFailed, Reason: "bash sort: exit status 2: sort: cannot | read\nmore"},
			duck, res(SysFloor, 1, 10),
			{System: SysCSVFloor, Status: StatusUnavailable, Reason: "no Go"}},
		Gate: []string{"unix agrees with run on 10 rows"},
		Flat: &Flat{HalfBytes: 150e6, FullBytes: 300e6, Half: res(SysReduce, 0.3, 96), Full: res(SysReduce, 0.5, 100)},
	}
}

func TestEvaluate(t *testing.T) {
	rep := testReport()
	got := map[string]Target{}
	for _, tg := range evaluate(rep) {
		got[tg.Name] = tg
	}
	f := func(prefix string, want Verdict, figure string) {
		t.Helper()
		for name, tg := range got {
			if strings.HasPrefix(name, prefix) {
				if tg.Verdict != want || !strings.Contains(tg.Figure, figure) {
					t.Errorf("%s: %v %q, want %v %q", name, tg.Verdict, tg.Figure, want, figure)
				}
				return
			}
		}
		t.Errorf("no target %q in %v", prefix, got)
	}
	f("mce run ≥ 150 MB/s", Met, "200 MB/s")
	f("mce run ≥ 4× DuckDB", NotMet, "2.67×")
	f("the one pass ≥ 1.5× faster", Met, "1.60× faster, 0.44× the RSS")
	f("the Reduce-form f.go ≥ 3× DuckDB", NotMet, "2.50×")
	f("mce reduce ≥ 2× mce run", Met, "3.00×")
	f("mce reduce peak RSS ≤ 256", Met, "100 MiB")
	f("mce reduce peak RSS flat", NotMeasured, "96 MiB at 0.15 GB, 100 at 0.30 GB: 1.04×") // below 1 GB: no verdict
	f("store ≤ 50%", Met, "40.0%")
	f("partition peak RSS", Met, "1.17×")
	f("partition ≤ 1.2", NotMet, "1.67 passes")
	f("partition ≥ 150 MB/s", NotMet, "120 MB/s")
	f("mce run ≥ 60% of the floor", Met, "67%")
	f("mce run skew", Met, "1.05×")
	f("mce reduce skew", NotMet, "1.40×")

	// Flat within flatGrowth and just past it; not measured, and why.
	for _, tc := range []struct {
		half, full int64
		flat       *Flat
		want       Verdict
		figure     string
	}{
		{half: 100, full: 110, want: Met, figure: "1.10×"},
		{half: 100, full: 112, want: NotMet, figure: "1.12×"},
		{flat: &Flat{Reason: "the data was given"}, want: NotMeasured, figure: "–"},
		{flat: &Flat{Half: res(SysReduce, 1, 90), Full: &Result{System: SysReduce, Status: StatusFailed}}, want: NotMeasured, figure: "–"},
	} {
		rep := testReport()
		rep.Flat = tc.flat
		if tc.flat == nil {
			rep.Flat = &Flat{HalfBytes: 1e9, FullBytes: 2e9, Half: res(SysReduce, 1, tc.half), Full: res(SysReduce, 2, tc.full)}
		}
		found := false
		for _, tg := range evaluate(rep) {
			if strings.HasPrefix(tg.Name, "mce reduce peak RSS flat") {
				found = true
				if tg.Verdict != tc.want || !strings.Contains(tg.Figure, tc.figure) {
					t.Errorf("flat %d → %d MiB (%v): %v %q, want %v %q", tc.half, tc.full, tc.flat, tg.Verdict, tg.Figure, tc.want, tc.figure)
				}
			}
		}
		if !found {
			t.Errorf("no flat target for %+v", tc)
		}
	}
	rep.Flat = nil
	for _, tg := range evaluate(rep) {
		if strings.Contains(tg.Name, "flat") {
			t.Errorf("a flat target without its measurement: %+v", tg)
		}
	}

	// Another CPU count and no sweep: the 2-core target is not measured.
	rep.Config.CPUs = 4
	for _, tg := range evaluate(rep) {
		if strings.HasPrefix(tg.Name, "mce run ≥ 150") && tg.Verdict != NotMeasured {
			t.Errorf("150 MB/s target judged at 4 CPUs: %+v", tg)
		}
	}
	// The sweep's 2-CPU point decides it then.
	rep.Sweep = []SweepPoint{{CPUs: 2, Run: res(SysRun, 3, 100), Reduce: res(SysReduce, 1, 50)}}
	for _, tg := range evaluate(rep) {
		if strings.HasPrefix(tg.Name, "mce run ≥ 150") && (tg.Verdict != NotMet || tg.Figure != "100 MB/s") {
			t.Errorf("150 MB/s target from the sweep: %+v", tg)
		}
	}
}

func TestReport_Markdown(t *testing.T) {
	rep := testReport()
	rep.Targets = evaluate(rep)
	rep.Sweep = []SweepPoint{
		{CPUs: 1, Run: res(SysRun, 3, 100), Reduce: res(SysReduce, 1, 50)},
		{CPUs: 2, Run: rep.Result(SysRun), Reduce: rep.Result(SysReduce)},
	}
	red := rep.Result(SysReduce)
	red.Runs = []Sample{{Wall: 600 * time.Millisecond}, {Wall: 500 * time.Millisecond}, {Wall: 450 * time.Millisecond}}
	// What the bench found cached before three runs: 3,000 of 4,000 bytes
	// in all, 50% before the coldest.
	red.Runs[0].Warm = warmStats{Bytes: 1000, Cached: 1000}
	red.Runs[1].Warm = warmStats{Bytes: 2000, Cached: 1000}
	red.Runs[2].Warm = warmStats{Bytes: 1000, Cached: 1000}
	rep.Flat.Full.Runs = []Sample{{Wall: 500 * time.Millisecond, PeakRSSBytes: 100 << 20}, {Wall: 400 * time.Millisecond, PeakRSSBytes: 108 << 20}, {Wall: 550 * time.Millisecond, PeakRSSBytes: 95 << 20}}
	// DuckDB failed in its third round: its row of every run ends blank.
	rep.Result(SysDuckDB).Runs = []Sample{
		{Wall: 3900 * time.Millisecond, UserCPU: 5 * time.Second, SysCPU: 800 * time.Millisecond, PeakRSSBytes: 880 << 20},
		{Wall: 4100 * time.Millisecond, UserCPU: 6 * time.Second, PeakRSSBytes: 910 << 20},
	}
	md := rep.Markdown()
	reportHas(t, md,
		"## Reduce's memory at half the data",
		"| half | 0.15 GB | 0.30 | 96 (96–96) |",
		"| whole | 0.30 GB | 0.50 (0.40–0.55) | 100 (95–108) |",
		"| mce reduce peak RSS flat from half the data to all of it (issue 13) | 96 MiB at 0.15 GB, 100 at 0.30 GB: 1.04× | **not measured** | the target is stated from 1 to 2 GB;",
		"2 cores (Test CPU), 8.0 GiB RAM",
		"| reduce | reduce | 0.50 (0.45–0.60) |",
		"other work was running",
		"; 1.5 GiB free where it works.",
		"| run | run | 1.50 | 2.25 | 75% | 400 | 200 | 1.33M | skew 1.05× (largest file 1.10×) |",
		"store 120.0 MB = 40.0% of raw; spilled 90 MiB of runs, stored |",
		`| unix | sort \| awk per file | | | | | | | failed: bash sort: exit status 2: sort: cannot \| read … |`,
		"| csvfloor | mce's CSV reader, no-op callback | | | | | | | not available: no Go |",
		"**Break-even**: partition + k·reduce < k·run from **k = 3**",                                     // 2.5 + 3·0.5 = 4 < 4.5
		"**Break-even of a Reduce-form f.go**: partition + k·reduce-reduce < k·run-reduce from **k = 4**", // 2.5 + 4·0.9 = 6.1 < 6.4
		"| mce reduce skew: slowest worker ≤ 1.15× the mean (issue 3) | 1.40×",
		"**not met**",
		"| 1 | 3.00 | 1.00× | 100 | 1.00 | 1.00× | 300 |",
		"| 2 | 1.50 | 2.00× | 200 | 0.50 | 2.00× | 600 |",
		"(2026-01-02-box_1.svg)",
		"which held 75.0% of the runs' input bytes (50.0% before the coldest run)",
		"## Every run\n\nEach run of the systems table, in the order of the rounds: wall s / CPU s / peak RSS MiB.",
		"| system | round 1 | round 2 | round 3 |\n|---|--:|--:|--:|\n| reduce | 0.60 / 0.00 / 0 | 0.50 / 0.00 / 0 | 0.45 / 0.00 / 0 |\n| duckdb | 3.90 / 5.80 / 880 | 4.10 / 6.00 / 910 | |\n\n",
	)
	// Systems without runs have no row; one round alone needs no table.
	if _, runs, _ := strings.Cut(md, "## Every run"); strings.Contains(runs, "\n| run |") {
		t.Errorf("a row of every run for a system without runs:\n%s", md)
	}
	if md := testReport().Markdown(); strings.Contains(md, "## Every run") {
		t.Errorf("every run, with no system run twice:\n%s", md)
	}
}

func TestReport_SVG(t *testing.T) {
	for _, rep := range []*Report{testReport(), {Data: &Dataset{}, Config: Config{Runs: 1}}} {
		svg := rep.SVG()
		d := xml.NewDecoder(strings.NewReader(svg))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
			}
		}
	}
	svg := testReport().SVG()
	for _, want := range []string{">duckdb<", ">4.00 s<", ">900 MiB<", "peak RSS"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if strings.Contains(svg, ">unix<") {
		t.Error("SVG draws a failed system")
	}
}

// reportHas fails t for each of wants that the report md lacks.
func reportHas(t *testing.T, md string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestPerRound(t *testing.T) {
	runs := func(walls ...float64) *Result {
		r := &Result{Status: StatusOK}
		for _, w := range walls {
			r.Runs = append(r.Runs, Sample{Wall: time.Duration(w * float64(time.Second))})
		}
		return r
	}
	for _, tc := range []struct {
		name       string
		slow, fast *Result
		at         float64 // the target's ratio
		want       string
	}{
		{"three rounds", runs(4, 5, 6), runs(1, 2, 2), 3, "round by round 3.00× (2.50–4.00×), 3× or more in 2 of 3 rounds"},
		// Paired by round; the medians' ratio would be 8/3 = 2.67×. A
		// round exactly at the target reaches it.
		{"paired, not medians", runs(4, 8, 12), runs(1, 4, 3), 4, "round by round 4.00× (2.00–4.00×), 4× or more in 2 of 3 rounds"},
		{"a fractional target", runs(3, 3), runs(2, 2), 1.5, "round by round 1.50× (1.50–1.50×), 1.5× or more in 2 of 2 rounds"},
		{"rounds differ in number", runs(4, 5), runs(1, 2, 2), 2, ""},
		{"one round", runs(4), runs(1), 2, ""},
		{"none", runs(), runs(), 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PerRound(tc.slow, tc.fast, tc.at); got != tc.want {
				t.Errorf("PerRound = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestEvaluate_PerRound: the targets that compare two systems' times say
// their round-by-round ratio when both ran in the same rounds.
func TestEvaluate_PerRound(t *testing.T) {
	rep := testReport()
	for _, r := range rep.Results {
		if r.OK() {
			r.Runs = []Sample{{Wall: r.Wall}, {Wall: r.Wall}, {Wall: r.Wall}}
		}
	}
	want := map[string]string{
		"mce run ≥ 4× DuckDB":              "round by round 2.67× (2.67–2.67×), 4× or more in 0 of 3 rounds",
		"the one pass ≥ 1.5× faster":       "round by round 1.60× (1.60–1.60×), 1.5× or more in 3 of 3 rounds",
		"the Reduce-form f.go ≥ 3× DuckDB": "round by round 2.50× (2.50–2.50×), 3× or more in 0 of 3 rounds",
		"mce reduce ≥ 2× mce run":          "round by round 3.00× (3.00–3.00×), 2× or more in 3 of 3 rounds",
	}
	for _, tg := range evaluate(rep) {
		for prefix, note := range want {
			if strings.HasPrefix(tg.Name, prefix) {
				if !strings.HasPrefix(tg.Note, note) {
					t.Errorf("%s: note %q, want it to start with %q", tg.Name, tg.Note, note)
				}
				delete(want, prefix)
			}
		}
	}
	for prefix := range want {
		t.Errorf("no target %q", prefix)
	}
}
