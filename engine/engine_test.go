package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/internal/csvread"
)

func TestCreateRunDir(t *testing.T) {
	f := func(existing []string, job, want string) {
		t.Helper()
		out := t.TempDir()
		for _, e := range existing {
			if err := os.Mkdir(filepath.Join(out, e), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		got, err := CreateRunDir(out, job)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(got) != want {
			t.Errorf("existing %v: run dir %s, want %s", existing, filepath.Base(got), want)
		}
	}
	f(nil, "job", "job0")
	f([]string{"job0"}, "job", "job1")
	f([]string{"job0", "job7", "job3"}, "job", "job8")
	f([]string{"job07", "job-1", "jobx", "job1a", "other9"}, "job", "job0")
	f([]string{"job12"}, "job", "job13")
	f([]string{"jan0", "job5"}, "jan", "jan1")
}

func TestFileTasks(t *testing.T) {
	tasks, err := FileTasks([]csvread.Input{
		{Path: "/a/jan.csv", Size: 10},
		{Path: "/b/jan.csv.gz", Size: 30},
		{Path: "/c/feb.tsv", Size: 20},
		{Path: "/d/jan.csv", Size: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, tk := range tasks {
		if tk.ID != i || tk.Kind != KindFile {
			t.Errorf("task %d: %+v", i, tk)
		}
		got = append(got, tk.Input+" "+tk.Output)
	}
	want := []string{
		"/b/jan.csv.gz jan.csv.features.csv",
		"/c/feb.tsv feb.tsv.features.csv",
		"/a/jan.csv jan.csv-2.features.csv",
		"/d/jan.csv jan.csv-3.features.csv",
	}
	if !slices.Equal(got, want) {
		t.Errorf("tasks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseClusters(t *testing.T) {
	f := func(in string, want []int, ok bool) {
		t.Helper()
		got, err := ParseClusters(in)
		if (err == nil) != ok || !slices.Equal(got, want) {
			t.Errorf("ParseClusters(%q) = %v, %v; want %v, ok=%v", in, got, err, want, ok)
		}
	}
	f("3,2,1", []int{3, 2, 1}, true)
	f(" 4 ", []int{4}, true)
	f("", nil, false)
	f("2,0", nil, false)
	f("a", nil, false)
}

func TestParseRAMLimit(t *testing.T) {
	parse := func(s string) (int64, error) {
		if s == "12GiB" {
			return 12 << 30, nil
		}
		return 0, io.EOF
	}
	if n, err := ParseRAMLimit("12GiB", parse); err != nil || n != 12<<30 {
		t.Errorf("12GiB: %d, %v", n, err)
	}
	total, err := PhysicalRAM()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := ParseRAMLimit("50%", parse); err != nil || n != total/2 {
		t.Errorf("50%%: %d, %v; want %d", n, err, total/2)
	}
	for _, bad := range []string{"0%", "101%", "x%", "lots"} {
		if _, err := ParseRAMLimit(bad, parse); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestDefaultClusters(t *testing.T) {
	for n, want := range map[int][]int{1: {1}, 2: {2}, 4: {4}, 5: {4}, 16: {15}} {
		if got := DefaultClusters(n); !slices.Equal(got, want) {
			t.Errorf("DefaultClusters(%d) = %v, want %v", n, got, want)
		}
	}
}

// TestServe_handlers drives a worker over its protocol with a task kind of
// its own (the extension point other modes use) and an unknown kind.
func TestServe_handlers(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	dir := t.TempDir()
	echo := HandlerFunc(func(ctx context.Context, env *TaskEnv, tk *Task) (*Result, error) {
		o, err := CreateOutput(env.OutputPath(tk))
		if err != nil {
			return nil, err
		}
		defer o.Abort()
		if _, err := io.WriteString(o, tk.Args["text"]+" "+env.Params["p"]); err != nil {
			return nil, err
		}
		return &Result{Rows: int64(env.CPUs)}, o.Commit()
	})
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), WorkerOptions{
			Spec: feature.Invoice(), Handlers: map[string]Handler{"echo": echo}, In: inR, Out: outW,
		})
		outW.Close()
	}()
	enc := json.NewEncoder(inW)
	sc := bufio.NewScanner(outR)
	next := func(typ string) *fromWorker {
		t.Helper()
		for sc.Scan() {
			m := &fromWorker{}
			if err := json.Unmarshal(sc.Bytes(), m); err != nil {
				t.Fatal(err)
			}
			if m.Type == typ {
				return m
			}
		}
		t.Fatalf("no %s message: %v", typ, sc.Err())
		return nil
	}
	enc.Encode(toWorker{Type: "config", Config: &workerConfig{Cluster: 3, CPUs: 2, RunDir: dir, Params: feature.Params{"p": "q"}}})
	if m := next("ready"); m.PID != os.Getpid() {
		t.Errorf("ready pid %d", m.PID)
	}
	enc.Encode(toWorker{Type: "task", Task: &Task{ID: 7, Kind: "echo", Output: "out.txt", Args: map[string]string{"text": "hi"}}})
	m := next("result")
	if m.Task != 7 || m.Error != nil || m.Result.Rows != 2 {
		t.Errorf("echo result %+v %+v", m, m.Error)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out.txt")); string(b) != "hi q" {
		t.Errorf("output %q", b)
	}
	enc.Encode(toWorker{Type: "task", Task: &Task{ID: 8, Kind: "nope", Input: "x"}})
	if m := next("result"); m.Error == nil || !strings.Contains(m.Error.Message, `no handler for tasks of kind "nope"`) {
		t.Errorf("unknown kind: %+v", m.Error)
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestRun_badWorker checks that a worker binary that cannot serve ends
// the run with an error instead of hanging.
func TestRun_badWorker(t *testing.T) {
	in := filepath.Join(t.TempDir(), "a.csv")
	os.WriteFile(in, []byte("invoice_id,issuer,receiver,issued_at,amount,currency,description\n1,U,R,2024-01-01,1.00,MXN,x\n"), 0o644)
	for _, exe := range []string{"/bin/false", filepath.Join(t.TempDir(), "missing")} {
		s, err := Run(context.Background(), Options{
			Paths: []string{in}, Out: t.TempDir(), WorkerExe: exe, Clusters: []int{1}, RAMLimitBytes: 1 << 30,
		})
		if err == nil {
			t.Errorf("%s: no error; summary %+v", exe, s)
			continue
		}
		t.Logf("%s: %v", exe, err)
	}
}

func TestChooseMode(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct {
		mode      string
		mergeable bool
		input     string
		size, mem int64
		want      string
	}{
		{ModeAuto, true, "/d/jan.csv", 1 * gib, 8 * gib, ModeGroup},
		{ModeAuto, true, "/d/jan.csv", 4 * gib, 8 * gib, ModeStream},    // 5 GiB of rows > half of 8
		{ModeAuto, true, "/d/jan.csv.gz", 1 * gib, 8 * gib, ModeStream}, // ~10 GiB once decompressed
		{ModeAuto, true, "/d/jan.csv.zst", 100 << 20, 8 * gib, ModeGroup},
		{ModeAuto, false, "/d/jan.csv", 40 * gib, 8 * gib, ModeGroup}, // only a mergeable set can stream
		{ModeAuto, true, "/d/jan.csv", 40 * gib, 0, ModeGroup},        // no limit known
		{ModeGroup, true, "/d/jan.csv", 40 * gib, 8 * gib, ModeGroup},
		{ModeStream, true, "/d/jan.csv", 1, 8 * gib, ModeStream},
		{ModeStream, false, "/d/jan.csv", 1, 8 * gib, ModeGroup},
	} {
		if got := chooseMode(tc.mode, tc.mergeable, tc.input, tc.size, tc.mem); got != tc.want {
			t.Errorf("chooseMode(%s, mergeable %v, %s, %d MiB, limit %d MiB) = %s, want %s",
				tc.mode, tc.mergeable, tc.input, tc.size>>20, tc.mem>>20, got, tc.want)
		}
	}
}
