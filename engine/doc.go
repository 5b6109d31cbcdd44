// Package engine is the Multiple Cluster Engine's runtime: clusters of
// CPUs, each one OS process, taking tasks from a deque, watched by a RAM
// monitor, with a run folder that records everything and can be resumed.
// It knows no mode and no input format: a mode plans Tasks (with typed
// Args, a json.RawMessage only its Handler decodes) and registers a
// Handler per task kind in the cluster processes (WorkerOptions.Handlers);
// `mce run` is package engine/filejob, `mce reduce` package reduce.
//
// The files: run.go (Run, creating or resuming a run), scheduler.go
// (which task goes to which cluster), cluster.go (starting, watching and
// restarting cluster processes), prestart.go (clusters started before
// Run), monitor.go (the RAM monitor), proc.go (the processes themselves),
// worker.go (the cluster's side of the protocol), rundir.go and summary.go
// (the run folder), progress.go (the live view) and statuslog.go (every
// log record also in status.log).
//
// # Clusters
//
// A cluster is one child process (the hidden `worker` command of mce, or
// of a features binary compiled from the user's f.go) whose CPUs are
// goroutines: GOMAXPROCS is its CPU count and GOMEMLIMIT its share of the
// RAM limit, in proportion to its CPUs. The parent process is light: it
// plans, schedules, watches RAM and writes the logs; it never reads input
// data. Parent and cluster speak JSON lines over the cluster's stdin and
// stdout (config and tasks in; ready, progress and results out); a cluster
// exits when its stdin closes, dies with the parent (PR_SET_PDEATHSIG), and
// runs in its own process group, which is what the parent kills. A mode
// may start the clusters before it plans (Prestart, prestart.go: a
// cluster takes about as long to start as `mce reduce` takes to open its
// store and plan); Run adopts the processes that fit its layout, sending
// them their config then, and kills the others. The first cluster of `mce
// run` and `mce reduce` may be started earlier still, while mce
// initialises (package prefork):
// its environment cannot carry its GOMAXPROCS and GOMEMLIMIT, so Prestart
// sends them first, in a "limits" message.
//
// # Scheduling
//
// Input files are sorted by size, largest first. In the original engine's
// deque order cluster 0 (give it the most CPUs) takes files from the large
// end and the other clusters from the small end, each file going to the
// next free cluster, so that the largest files are not all in RAM at once;
// QueueFIFO hands them out in size order. status.log records every start,
// assignment ("file X (#i) -> cluster j", i being the file's place in the
// size order), finish, kill and restart.
//
// # One task in one cluster
//
// A cluster runs one task at a time on all its CPUs: for `mce run` one raw
// file, read once, its users hashed to the cluster's workers and reduced
// with work stealing (engine/filejob, engine/inram); for `mce reduce` a
// range of store shards. Outputs are written through engine/output under
// a temporary name, synced and renamed. A task whose output is written
// and only waits for the disk (TaskEnv.Computed: `mce run`'s) lets its
// cluster start the next file meanwhile; it counts as running until its
// output is renamed, and a cluster that dies before that fails it over
// as a crash does.
//
// # RAM, failures and regeneration
//
// Every Poll the RSS of every cluster process is written to ram_usage.log.
// When the total passes the RAM limit, the busy cluster using the most is
// killed and failure.log says which cluster, which file and how much; the
// cluster is started again and the file is retried once, alone (no other
// cluster working), before it counts as failed. A cluster that crashes is
// handled the same way. An error or panic in the feature code or a bad file
// fails that file only (failure.log names cluster, file and user); the
// other files go on. Clusters are also restarted after RecycleAfter files
// or when their RSS between files exceeds RecycleRSSBytes (with that bound
// set, a cluster gives its free heap back to the OS after each file, so that
// the RSS between files is its live size; without it, a cluster keeps its
// pages for the next file, which saves the page faults of refilling them).
// RSS counts shared pages in every process, so the total may overstate a
// little.
//
// # Run directory
//
// Each run makes OUT/JOBNAME<n> (n one more than the largest used) holding
// one features file per input, status.log (the run's events in words, and
// every log record Options.Logger gets, so that a terminal may show only
// the live view), failure.log, ram_usage.log,
// timings.csv (per file: bytes, rows, users, map and reduce seconds, peak
// RSS, the slowest reduce worker against the mean), plan.json (for
// --resume) and summary.json. Resume finishes an interrupted run: files
// whose features file exists are skipped, temporary files removed.
//
// # Modes
//
// The engine runs generic Tasks: a mode passes Options.Tasks of its own
// kinds and Options.Job (its settings for the whole run, kept in plan.json
// for --resume), and adds its Handlers to the worker through
// WorkerOptions.Handlers. The scheduler, RAM monitor, logs, resume and
// progress view are shared. A task's Phase orders dependent work: tasks of
// a phase start once every task of the phases below has finished (`mce
// reduce` merges its shard tasks' partial outputs into per-file features
// files that way).
package engine
