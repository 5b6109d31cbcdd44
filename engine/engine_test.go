package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mce-engine/mce/engine/feature"
	"github.com/mce-engine/mce/engine/output"
	"github.com/mce-engine/mce/internal/prefork"
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
	if n, err := ParseRAMLimit("12GiB"); err != nil || n != 12<<30 {
		t.Errorf("12GiB: %d, %v", n, err)
	}
	total, err := PhysicalRAM()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := ParseRAMLimit("50%"); err != nil || n != total/2 {
		t.Errorf("50%%: %d, %v; want %d", n, err, total/2)
	}
	for _, bad := range []string{"0%", "101%", "x%", "lots"} {
		if _, err := ParseRAMLimit(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestDefaultClusters(t *testing.T) {
	for n, want := range map[int][]int{1: {1}, 2: {2}, 4: {4}, 5: {4}, 9: {8}, 10: {5, 4}, 16: {8, 7}, 17: {8, 8}, 18: {6, 6, 5}, 64: {8, 8, 8, 8, 8, 8, 8, 7}} {
		if got := DefaultClusters(n); !slices.Equal(got, want) {
			t.Errorf("DefaultClusters(%d) = %v, want %v", n, got, want)
		}
	}
}

// TestServe_handlers drives a worker over its protocol with a task kind of
// its own (the extension point other modes use) and an unknown kind.
func TestServe_handlers(t *testing.T) {
	dir := t.TempDir()
	echo := HandlerFunc(func(ctx context.Context, env *TaskEnv, tk *Task) (*Result, error) {
		o, err := output.Create(env.OutputPath(tk))
		if err != nil {
			return nil, err
		}
		defer o.Abort()
		if _, err := io.WriteString(o, string(tk.Args)+" "+env.Params["p"]); err != nil {
			return nil, err
		}
		return &Result{Rows: int64(env.CPUs)}, o.Commit()
	})
	inW, outR, done := serveOverPipes(map[string]Handler{"echo": echo})
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
	enc.Encode(toWorker{Type: "task", Task: &Task{ID: 7, Kind: "echo", Output: "out.txt", Args: json.RawMessage(`"hi"`)}})
	m := next("result")
	if m.Task != 7 || m.Error != nil || m.Result.Rows != 2 {
		t.Errorf("echo result %+v %+v", m, m.Error)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out.txt")); string(b) != `"hi" q` {
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

// serveOverPipes runs Serve with the built-in features and handlers on
// pipes: the parent writes messages to in and reads the worker's from
// out; done gets Serve's error once in is closed.
func serveOverPipes(handlers map[string]Handler) (in *io.PipeWriter, out *io.PipeReader, done <-chan error) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	d := make(chan error, 1)
	go func() {
		d <- Serve(context.Background(), WorkerOptions{Spec: feature.Invoice(), Handlers: handlers, In: inR, Out: outW})
		outW.Close()
	}()
	return inW, outR, d
}

// TestServe_limits: a worker package prefork started (its environment
// has prefork.ChildEnv) takes the cluster's CPUs and memory limit from a
// first "limits" message, and refuses to start on anything else.
func TestServe_limits(t *testing.T) {
	t.Setenv(prefork.ChildEnv, "1")
	procs, limit := runtime.GOMAXPROCS(0), debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		debug.SetMemoryLimit(limit)
	})
	serve := func(first toWorker) (ready bool, err error) {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		done := make(chan error, 1)
		go func() {
			done <- Serve(context.Background(), WorkerOptions{Spec: feature.Invoice(), In: inR, Out: outW})
			outW.Close()
		}()
		enc := json.NewEncoder(inW)
		enc.Encode(first)
		enc.Encode(toWorker{Type: "config", Config: &workerConfig{RunDir: t.TempDir()}})
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"ready"`) {
				ready = true
				inW.Close()
			}
		}
		inW.Close()
		return ready, <-done
	}
	want := max(procs-1, 1)
	ready, err := serve(toWorker{Type: "limits", Limits: &workerLimits{CPUs: want, MemLimit: 3 << 30}})
	if !ready || err != nil {
		t.Fatalf("with limits first: ready %v, %v", ready, err)
	}
	if got, gotLimit := runtime.GOMAXPROCS(0), debug.SetMemoryLimit(-1); got != want || gotLimit != 3<<30 {
		t.Errorf("after limits: GOMAXPROCS %d, memory limit %d; want %d, %d", got, gotLimit, want, int64(3<<30))
	}
	ready, err = serve(toWorker{Type: "config", Config: &workerConfig{RunDir: t.TempDir()}})
	if ready || err == nil || !strings.Contains(err.Error(), `first message is "config", want limits`) {
		t.Errorf("with the config first: ready %v, %v; want an error asking for limits", ready, err)
	}
}

// TestRun_badWorker checks that a worker binary that cannot serve ends
// the run with an error instead of hanging.
func TestRun_badWorker(t *testing.T) {
	in := filepath.Join(t.TempDir(), "a.csv")
	os.WriteFile(in, []byte("invoice_id,issuer,receiver,issued_at,amount,currency,description\n1,U,R,2024-01-01,1.00,MXN,x\n"), 0o644)
	for _, exe := range []string{"/bin/false", filepath.Join(t.TempDir(), "missing")} {
		s, err := Run(context.Background(), Options{
			Tasks: []Task{{Kind: "file", Input: in, Output: "a.out"}}, Out: t.TempDir(), WorkerExe: exe, Clusters: []int{1}, RAMLimitBytes: 1 << 30,
		})
		if err == nil {
			t.Errorf("%s: no error; summary %+v", exe, s)
			continue
		}
		t.Logf("%s: %v", exe, err)
	}
}

// TestTask_JSONNames: a task's input and output names travel exactly
// through JSON, UTF-8 or not; one that is not goes as input_bytes or
// output_bytes, its text left empty.
func TestTask_JSONNames(t *testing.T) {
	for _, name := range []string{"jan.csv", "a\xf1o.csv"} {
		in := Task{ID: 3, Kind: "k", Input: "/data/" + name, Output: name + ".features.csv"}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if bytesField := strings.Contains(string(b), "input_bytes"); bytesField == utf8.ValidString(name) ||
			strings.Contains(string(b), "output_bytes") != bytesField || bytesField && strings.Contains(string(b), `"input":"/`) {
			t.Errorf("%q: JSON %s", name, b)
		}
		var out Task
		if err := json.Unmarshal(b, &out); err != nil || out.Input != in.Input || out.Output != in.Output {
			t.Errorf("%q: read back %q, %q (%v)", name, out.Input, out.Output, err)
		}
	}
}

// TestServe_overlap: with Overlap, a task that said it is computed
// (TaskEnv.Computed) lets the worker take the next task while it commits;
// a second task that is computed before the first's result holds its
// "computed" back until that result is sent, so that the parent never
// sees two tasks committing at once; the results keep their tasks' peak
// RSS. Without Overlap no "computed" goes out.
func TestServe_overlap(t *testing.T) {
	for _, overlap := range []bool{true, false} {
		t.Run(map[bool]string{true: "overlap", false: "off"}[overlap], func(t *testing.T) {
			dir := t.TempDir()
			commit := map[int]chan struct{}{1: make(chan struct{}), 2: make(chan struct{})}
			h := HandlerFunc(func(ctx context.Context, env *TaskEnv, tk *Task) (*Result, error) {
				o, err := output.Create(env.OutputPath(tk))
				if err != nil {
					return nil, err
				}
				defer o.Abort()
				if _, err := io.WriteString(o, tk.Input); err != nil {
					return nil, err
				}
				env.Computed()
				if overlap {
					<-commit[tk.ID]
				}
				return &Result{Rows: int64(tk.ID)}, o.Commit()
			})
			inW, outR, done := serveOverPipes(map[string]Handler{"h": h})
			enc := json.NewEncoder(inW)
			msgs := make(chan *fromWorker, 16)
			go func() {
				sc := bufio.NewScanner(outR)
				for sc.Scan() {
					m := &fromWorker{}
					if err := json.Unmarshal(sc.Bytes(), m); err == nil && m.Type != "progress" {
						msgs <- m
					}
				}
				close(msgs)
			}()
			next := func(typ string, task int) {
				t.Helper()
				m := <-msgs
				if m == nil || m.Type != typ || (typ != "ready" && m.Task != task) {
					t.Fatalf("got %+v, want %s of task %d", m, typ, task)
				}
				if typ == "result" && (m.Error != nil || m.Result.Rows != int64(task) || m.Result.PeakRSSBytes <= 0) {
					t.Fatalf("result of task %d: %+v %+v", task, m.Result, m.Error)
				}
			}
			enc.Encode(toWorker{Type: "config", Config: &workerConfig{CPUs: 1, RunDir: dir, Overlap: overlap}})
			next("ready", 0)
			task := func(id int) {
				enc.Encode(toWorker{Type: "task", Task: &Task{ID: id, Kind: "h", Input: fmt.Sprint("in", id), Output: fmt.Sprint("out", id)}})
			}
			task(1)
			if !overlap {
				next("result", 1)
				task(2)
				next("result", 2)
			} else {
				next("computed", 1)
				task(2) // while task 1 commits
				select {
				case m := <-msgs:
					t.Fatalf("task 2's computed was not held back: %+v", m)
				case <-time.After(100 * time.Millisecond):
				}
				close(commit[1])
				next("result", 1)
				next("computed", 2)
				close(commit[2])
				next("result", 2)
			}
			for id := 1; id <= 2; id++ {
				if b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprint("out", id))); string(b) != fmt.Sprint("in", id) {
					t.Errorf("output %d: %q", id, b)
				}
			}
			inW.Close()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
}
