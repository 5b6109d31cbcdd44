// Package pipeline runs an mce feature.Spec, unchanged, as an Apache Beam
// pipeline: on Prism (Beam's portable runner, in this process: tests and
// small data), on Google Dataflow, or on Flink and Spark through their Beam
// job servers (the "universal" runner). `mce beam` compiles the user's f.go
// with this package into a pipeline binary whose main calls [Main].
//
// # The pipeline
//
//	Create(files) ─ Reshuffle ─ read ─┬─ rows ─ map ─┬─ CombinePerKey(add) ─ unsalt ─ CombinePerKey(finish) ─┐
//	                                  │              └─ GroupByKey ─ reduce ─────────────────────────────────┤
//	                                  └─ stats ──────────────────────────────────────────── CoGroupByKey(file) ─ write
//
// Its steps:
//
//   - read: one element per input file, read whole with mce's own reader
//     (internal/csvread: delimiter, aliases, cp1252, gzip and zstd, quoted
//     newlines, bad rows counted). A file is never cut into byte ranges,
//     since a quoted field may hold newlines; the rows come out in file
//     order. Remote inputs (gs://, s3://) are copied to the worker's disk.
//   - map: the Spec's Map (drop or re-key a row), with the job's --param
//     values, then the shuffle key: (file, salt, user), or (salt, user)
//     across files.
//   - a mergeable Spec whose Aggregator implements
//     encoding.BinaryMarshaler and BinaryUnmarshaler (the built-in set
//     does) is combined: rows into partial aggregates per key, then, with
//     the salt dropped, the partials merged per user and finished. A user
//     past Options.HotRows rows and Options.HotShare of its file is fanned
//     out over Options.Fanout salts, so a bank with 13% of the rows is
//     combined on several keys (the mce/fanout_users counter and the
//     mce/fanout_parts_per_user distribution show it).
//   - any other Spec is grouped (GroupByKey) and its Reduce reads the
//     user's rows through a feature.Rows over Beam's iterator, one row at a
//     time, in file order (checked: see ErrOutOfOrder).
//   - write: per input file (or one across files), the users' lines sorted
//     by key, with `mce run`'s header, line format and file names, so the
//     files are byte-identical to `mce run`'s.
//
// # Outputs
//
// The workers write into a hidden temporary folder inside the output
// folder; when the whole job has succeeded, [Run] moves the features files
// into the output folder and writes summary.json last (rows, bad rows and
// their samples per file, users, the Beam counters). A failed job leaves
// neither. A feature function that fails or panics fails the job, and the
// error names the file, the user and, for Map and Add, the line.
//
// # Workers
//
// Beam rebuilds DoFns on its workers from their exported fields, so the
// Spec, made of functions, is found by name in a table that [Register]
// fills; [Main] registers the Spec before beam.Init, which is what makes
// the same binary usable as a Dataflow, Flink or Spark worker.
package pipeline
