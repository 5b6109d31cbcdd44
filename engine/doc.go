// Package engine is the Multiple Cluster Engine behind `mce run`: many
// large input files, one machine, per-user features for every file.
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
// runs in its own process group, which is what the parent kills.
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
// # One file in one cluster
//
// The file is read once per cluster, parsed on all its CPUs, and each row
// goes (in batches) to the worker that owns its user by a stable hash
// (internal/userhash); the users are then reduced biggest first with work
// stealing, huge users of a mergeable feature set split across workers
// (package inram). The features file is written under a temporary name,
// synced and renamed to <input base name>.features.csv.
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
// one features file per input, status.log, failure.log, ram_usage.log,
// timings.csv (per file: bytes, rows, users, map and reduce seconds, peak
// RSS, the slowest reduce worker against the mean), plan.json (for
// --resume) and summary.json. Resume finishes an interrupted run: files
// whose features file exists are skipped, temporary files removed.
//
// # Other modes
//
// The engine runs generic Tasks: `mce run` plans one KindFile task per
// input, and other modes pass Options.Tasks of their own kinds, whose
// Handlers they add to the worker through WorkerOptions.Handlers. The
// scheduler, RAM monitor, logs, resume and progress view are shared. A
// task's Phase orders dependent work: tasks of a phase start once every
// task of the phases below has finished (`mce reduce` merges its shard
// tasks' partial outputs into per-file features files that way).
package engine
