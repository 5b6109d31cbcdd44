// Package bench measures mce's two modes side by side with the tools a user
// would otherwise pick, on generated invoice data, and says which targets
// are met.
//
// It is shaped like a benchmark harness of the Pebble kind: a Config struct
// and Run functions, the command line binding flags into the Config, and no
// package-level mutable state. Every system runs as a child process and is
// measured the same way (see [Measure]): wall time, CPU time of the whole
// process tree (user+sys from the rusage of the waited child, which includes
// every descendant it waited for), and peak RSS of the whole tree (the sum
// over the child and all its descendants, sampled from /proc every 50 ms,
// and never less than the rusage max RSS). Each system runs Config.Runs
// times and each figure is the median over the runs, taken figure by
// figure. Page caches cannot be dropped without root, so every figure is
// with a warm page cache: the data was just written or read, and before
// each run the bench reads again the run's input files the cache does not
// hold whole (some VMs evict file pages within minutes, with memory
// free); the report gives the share of the inputs it found cached.
//
// The systems:
//
//	run            mce run DATA --clusters N                (built-in invoice features: the one pass)
//	run-group      the same with --mode group                (grouped in RAM)
//	run-disk       the same with --mode disk                 (grouped through sorted runs on disk)
//	run-1cpu       the same with --clusters 1,1,…            (a cluster of one CPU per CPU)
//	run-reduce     mce run --features examples/invoice-reduce/f.go DATA (the built-in features as a plain Reduce)
//	partition      mce partition DATA --out STORE --cpus N --mem M (a fresh store each time)
//	reduce         mce reduce --store STORE --clusters N     (the built-in features from the store)
//	reduce-reduce  mce reduce --features examples/invoice-reduce/f.go --store STORE (run-reduce's f.go from the store)
//	unix           per file: tail | LC_ALL=C sort -t, -k2,2 --parallel=N | mawk
//	duckdb         the same features in SQL through @duckdb/node-api with N threads
//	floor          read the same bytes and split them on '\n' and ',' with N threads
//	csvfloor       mce's own CSV reader (internal/csvread) with a no-op callback
//
// Before any figure is printed, the features of every system are compared
// with those of mce run (or, while mce run is not available, with the first
// system that has all the features) and with the generator's truth.csv. Any
// difference fails the benchmark and shows the first rows that differ.
//
// The unix baseline splits rows on the delimiter and so needs the default
// (non-messy) generated files: a comma delimiter, the schema's column order,
// no line breaks inside quoted fields and no compression. The description,
// the only field that may be quoted, is the last column, so a quoted comma
// in it cannot move the fields the baseline reads. DuckDB is given the same
// files with explicit columns and types. It reads UTF-8, UTF-16 and latin-1
// but not cp1252 (its encodings extension is a download, and latin-1
// rejects cp1252's bytes 0x80-0x9F: € “ ” —), so the bench generates UTF-8
// text by default; --encoding cp1252 measures the real data's encoding
// without DuckDB. With --messy both baselines are skipped.
//
// A system whose mce command does not exist yet, or whose tool (node, npm,
// mawk, a Go toolchain) is missing, is reported as not available and the
// rest still runs.
package bench
