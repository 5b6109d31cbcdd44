package report

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// task makes a replay task: size, one-CPU seconds, peak RSS; phase 0.
func task(id int, size int64, work, peak float64) replayTask {
	return replayTask{id: id, size: size, work: work, peakMiB: peak}
}

// runsString writes a replay's runs as "cluster:task@start-end ...".
func runsString(res replayResult) string {
	var s []string
	for _, r := range res.runs {
		s = append(s, fmt.Sprintf("%d:%d@%g-%g", r.cluster, r.task, round3(r.start), round3(r.end)))
	}
	return strings.Join(s, " ")
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func TestReplay(t *testing.T) {
	five := []replayTask{task(0, 5, 5, 0), task(1, 4, 4, 0), task(2, 3, 3, 0), task(3, 2, 2, 0), task(4, 1, 1, 0)}
	for _, tc := range []struct {
		name    string
		tasks   []replayTask
		layout  Layout
		m       model
		seconds float64
		runs    string
	}{
		{
			// Cluster 0 takes from the large end, cluster 1 from the small end.
			name: "deque", tasks: five, layout: Layout{[]int{1, 1}, queueDeque},
			seconds: 9, runs: "0:0@0-5 1:4@0-1 1:3@1-3 1:2@3-6 0:1@5-9",
		},
		{
			// Largest first to whichever is free; at 7 both are free and
			// cluster 0 is served first.
			name: "fifo", tasks: five, layout: Layout{[]int{1, 1}, queueFIFO},
			seconds: 8, runs: "0:0@0-5 1:1@0-4 1:2@4-7 0:3@5-7 0:4@7-8",
		},
		{
			// Equal sizes go in plan order (the task id).
			name: "ties by id", tasks: []replayTask{task(2, 1, 1, 0), task(0, 1, 1, 0), task(1, 1, 1, 0)}, layout: Layout{[]int{1, 1}, queueDeque},
			seconds: 2, runs: "0:0@0-1 1:2@0-1 0:1@1-2",
		},
		{
			// A phase 1 task waits until no phase 0 task runs.
			name: "phases",
			tasks: []replayTask{
				{id: 0, size: 10, work: 4}, {id: 1, size: 1, work: 1},
				{id: 2, phase: 1, size: 6, work: 2}, {id: 3, phase: 1, size: 5, work: 2},
			},
			layout:  Layout{[]int{1, 1}, queueDeque},
			seconds: 6, runs: "0:0@0-4 1:1@0-1 0:2@4-6 1:3@4-6",
		},
		{
			// Amdahl: 4·(0.5 + 0.5/4) on 4 CPUs.
			name: "cpus", tasks: []replayTask{task(0, 1, 4, 0)}, layout: Layout{[]int{4}, queueDeque}, m: model{serial: 0.5},
			seconds: 2.5, runs: "0:0@0-2.5",
		},
		{
			name: "overhead", tasks: []replayTask{task(0, 2, 1, 0), task(1, 1, 1, 0)}, layout: Layout{[]int{1}, queueDeque}, m: model{overhead: 0.5},
			seconds: 3, runs: "0:0@0-1.5 0:1@1.5-3",
		},
		{
			name: "more clusters than tasks", tasks: []replayTask{task(0, 2, 1, 0)}, layout: Layout{[]int{1, 1, 1}, queueDeque},
			seconds: 1, runs: "0:0@0-1",
		},
		{name: "nothing", layout: Layout{[]int{2}, queueDeque}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := replay(tc.tasks, tc.layout, tc.m)
			if round3(res.seconds) != tc.seconds || runsString(res) != tc.runs {
				t.Errorf("replay = %g s, %q; want %g s, %q", res.seconds, runsString(res), tc.seconds, tc.runs)
			}
		})
	}
}

// TestReplay_RAM checks the peak sum of the clusters' RSS: a cluster keeps
// its last file's RSS while it waits.
func TestReplay_RAM(t *testing.T) {
	tasks := []replayTask{task(0, 3, 1, 100), task(1, 2, 1, 70), task(2, 1, 3, 50)}
	f := func(l Layout, want float64) {
		t.Helper()
		if got := replay(tasks, l, model{}).peakMiB; got != want {
			t.Errorf("%s: peak %g MiB, want %g", l, got, want)
		}
	}
	f(Layout{[]int{1, 1}, queueDeque}, 150) // 100+50, then 70+50
	f(Layout{[]int{2}, queueDeque}, 100)
	f(Layout{[]int{1, 1, 1}, queueDeque}, 220)
}

// TestReplay_RecordedRun replays the measured times of testdata/runs/ok
// on its own layout and checks that every cluster gets the files it got in
// that run: the replay follows the engine's scheduler.
func TestReplay_RecordedRun(t *testing.T) {
	for _, name := range []string{"ok", "resumed"} {
		t.Run(name, func(t *testing.T) {
			r, err := readRun("testdata/runs/" + name)
			if err != nil {
				t.Fatal(err)
			}
			files := r.files()
			m := model{serial: DefaultSerialShare, overhead: dispatchGap(r)}
			tasks, _, _ := replayTasks(files, m)
			res := replay(tasks, Layout{Clusters: r.clusterCPUs(), Queue: r.queue()}, m)
			got := map[int][]int{}
			for _, run := range res.runs {
				got[run.cluster] = append(got[run.cluster], run.task)
			}
			want := map[int][]int{}
			last := r.sessions[len(r.sessions)-1].start
			for _, a := range r.attempts {
				if !a.start.Before(last) {
					want[a.cluster] = append(want[a.cluster], a.task)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("replayed clusters' tasks %v, recorded %v", got, want)
			}
			if w := r.sessions[len(r.sessions)-1].end.Sub(last).Seconds(); math.Abs(res.seconds-w) > 0.25*w {
				t.Errorf("replayed %.3f s, the run took %.3f s", res.seconds, w)
			}
		})
	}
}

func TestLayouts(t *testing.T) {
	f := func(cpus, maxClusters, limit int, want string) {
		t.Helper()
		if got := fmt.Sprint(layouts(cpus, maxClusters, limit)); got != want {
			t.Errorf("layouts(%d, %d, %d) = %s, want %s", cpus, maxClusters, limit, got, want)
		}
	}
	f(5, 5, 100, "[[5] [4 1] [3 2] [3 1 1] [2 2 1] [2 1 1 1] [1 1 1 1 1]]")
	f(5, 2, 100, "[[5] [4 1] [3 2]]")
	f(3, 9, 100, "[[3] [2 1] [1 1 1]]")
	// 11 ways for 6 CPUs, 4 in at most 2 clusters: the limit picks those.
	f(6, 6, 5, "[[6] [5 1] [4 2] [3 3]]")
	f(1, 1, 1, "[[1]]")
	f(0, 3, 10, "[]")
	if n := len(layouts(64, 8, maxLayouts)); n == 0 || n > maxLayouts {
		t.Errorf("64 CPUs in 8 clusters: %d layouts", n)
	}
	if n := len(layouts(4096, 256, maxLayouts)); n == 0 || n > maxLayouts {
		t.Errorf("4096 CPUs in 256 clusters: %d layouts", n)
	}
}

func TestPartitions(t *testing.T) {
	f := func(n, k, limit, want int) {
		t.Helper()
		if got := partitions(n, k, limit); got != want {
			t.Errorf("partitions(%d, %d, %d) = %d, want %d", n, k, limit, got, want)
		}
	}
	f(5, 5, 100, 7)
	f(5, 2, 100, 3)
	f(6, 6, 100, 11)
	f(64, 64, 1<<30, 1741630)
	f(64, 64, 1000, 1001)
	f(0, 3, 10, 1)
}

func TestFamilies(t *testing.T) {
	got := fmt.Sprint(families(8, 4))
	want := "[[8] [4 4] [5 3] [6 2] [7 1] [3 3 2] [4 2 2] [6 1 1] [2 2 2 2] [5 1 1 1]]"
	if got != want {
		t.Errorf("families(8, 4) = %s, want %s", got, want)
	}
	for _, l := range families(100, 30) {
		if (Layout{Clusters: l}).CPUs() != 100 {
			t.Errorf("%v does not add up to 100 CPUs", l)
		}
	}
}

// TestFitModel fits the serial share from files measured on clusters of
// different sizes, made with a known one.
func TestFitModel(t *testing.T) {
	const perByte, serial = 1e-8, 0.3
	want := model{serial: serial}
	var files []*fileRow
	for i, cpus := range []int{1, 4, 1, 4, 2} {
		size := int64(1e9 + 2e8*int64(i))
		files = append(files, &fileRow{id: i, status: "done", size: size, bytes: size, cpus: cpus,
			seconds: want.seconds(perByte*float64(size), cpus)})
	}
	m, note, fitted := fitModel(files)
	if !fitted || math.Abs(m.serial-serial) > 0.005 {
		t.Errorf("fitted %.3f (%v, %s), want %.2f", m.serial, fitted, note, serial)
	}
	// One cluster size only: the default.
	for _, f := range files {
		f.cpus = 2
	}
	if m, note, fitted := fitModel(files); fitted || m.serial != DefaultSerialShare || !strings.Contains(note, "clusters of 2 CPUs only") {
		t.Errorf("one cluster size: %.2f, %v, %q", m.serial, fitted, note)
	}
}

// TestAdvise_WrongLayout is the case the advice is for: few large files
// on many 1-CPU clusters. The replay must find a layout that is at least
// 20% faster, under the RAM limit.
func TestAdvise_WrongLayout(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	r := &run{dir: "wrong", bad: map[string]int{}}
	r.sessions = []session{{start: t0, end: t0.Add(81 * time.Second), clusters: []int{1, 1, 1, 1, 1, 1, 1, 1}, queue: queueDeque, ramLimitMiB: 4000}}
	r.summary = &summary{RAMLimitBytes: 4000 << 20}
	var files []*fileRow
	for i, w := range []float64{80, 76, 1, 1} {
		size := int64(w * 1e8)
		files = append(files, &fileRow{id: i, kind: "file", status: "done", size: size, bytes: size, cpus: 1, cluster: i, seconds: w, peakRSSMiB: 900})
	}
	a := advise(r, files)
	if a.Best == nil {
		t.Fatalf("no advice: %s", a.Reason)
	}
	if a.Gain() < 0.2 || a.Best.OverRAMLimit || len(a.Best.Clusters) >= 8 {
		t.Errorf("suggestion %s: %.1f s (gain %.0f%%, over RAM %v); this run %.1f s\n%s",
			a.Best.Layout, a.Best.PredictedSeconds, 100*a.Gain(), a.Best.OverRAMLimit, a.MeasuredSeconds, a)
	}
	if a.CurrentSeconds != 80 {
		t.Errorf("this run's layout replayed in %.2f s, want 80", a.CurrentSeconds)
	}
	s := a.String()
	for _, want := range []string{a.Best.Flags(), "1m21s measured", "serial share 0.10 assumed"} {
		if !strings.Contains(s, want) {
			t.Errorf("String lacks %q:\n%s", want, s)
		}
	}
	// With a RAM limit that two such files do not fit in, one cluster.
	r.summary.RAMLimitBytes = 1000 << 20
	a = advise(r, files)
	if len(a.Best.Clusters) != 1 || a.Best.OverRAMLimit {
		t.Errorf("under 1000 MiB: suggestion %s (peak %.0f MiB)", a.Best.Layout, a.Best.PeakRAMMiB)
	}
}

func TestMixedLayout(t *testing.T) {
	for cpus, want := range map[int]string{3: "2,1", 4: "2,1,1", 6: "3,2,1", 8: "4,2,1,1", 16: "8,4,2,1,1"} {
		if got := mixedLayout(cpus); got != want {
			t.Errorf("mixedLayout(%d) = %s, want %s", cpus, got, want)
		}
	}
}
