// Package report draws a run folder (of `mce run` or `mce reduce`) as one
// self-contained HTML page, report.html, and advises a cluster layout for
// the next run over the same files.
//
//	path, err := report.Write(runDir)   // runDir/report.html
//	a, err := report.Advise(runDir)     // fmt.Print(a) for `mce report --advise`
//
// # What it reads
//
// Only the files the engine leaves in a run folder, each optional:
//
//	status.log     every start, assignment, result, kill, crash, restart: the timeline
//	failure.log    failures with cluster, file, user, message and a panic's stack
//	ram_usage.log  each cluster's RSS every poll: the RSS chart
//	timings.csv    one line per finished file
//	summary.json   the run's outcome and each task's last attempt
//	plan.json      the tasks in scheduling order, --param and reader settings
//
// The package repeats their formats instead of importing the engine, which
// may call it at the end of a run. A missing file leaves its section saying
// "not recorded"; a line it cannot read is skipped and counted, so an old,
// partial, failed or interrupted run folder still gets a report.
//
// # The page
//
// One HTML file with its CSS and a few lines of JavaScript (sortable tables)
// inline and its charts as SVG drawn in Go: no font, script or style is
// fetched, so it opens from disk with no network. It shows a timeline per
// cluster (one bar per attempt of a file, its map and reduce phases,
// retries dashed; kills, crashes, restarts and idle clusters asked for
// memory marked), each cluster's RSS over time
// with the --ram-limit line and the kills, a sortable table of the files
// (size, rows, bad rows, users, map and reduce seconds, MB/s, peak RSS,
// skew, mode, status), the failures, the settings and the command line
// that started the run (plan.json's; a run folder of an older mce gets an
// equivalent one rebuilt from its settings), and the advice.
//
// # The advice
//
// Advise replays this run's measured per-file times and peak RSS through
// the engine's scheduler (replay.go follows engine/run.go's dispatch, take
// and startable: files largest first; with deque cluster 0 takes the
// largest and the others the smallest, with fifo the largest goes to any
// free cluster; a later phase waits for the earlier one) for every way to
// split the run's CPUs into clusters, and suggests the layout with the
// lowest predicted wall time whose clusters' RSS stays under the RAM limit.
//
// A file is read by one goroutine and parsed, grouped and reduced on all its
// cluster's CPUs, so the model is Amdahl's law: a task of one-CPU time w
// takes w·(s + (1−s)/cpus). When the run's files ran on clusters of
// different sizes, the serial share s is fitted so that their one-CPU time
// per byte agrees best; otherwise it is DefaultSerialShare. The replay adds
// the run's median pause between a result and a cluster's next file (the
// parent's bookkeeping), and counts a waiting cluster's RSS as its last
// file's (a cluster keeps its memory for the next file). Kills and retries
// are not replayed; their cost is reported in the notes.
package report
