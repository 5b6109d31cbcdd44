// Package filejob is `mce run`'s mode of the engine: one task per raw
// input file, run inside one cluster.
//
// Plan lists the inputs and makes one task per file, largest first, each
// named for its features file (package fileid). In the cluster, the
// handler reads the file once (internal/csvread), parsed on all the
// cluster's CPUs, and either groups each user's rows in RAM and reduces
// them user by user, or, for a big file and a mergeable feature set,
// streams every row into its user's aggregate (package inram; Job.Mode
// and chooseMode decide). The features table is written by package output
// under a temporary name and renamed when complete.
//
// Run is that whole per-file job, callable outside a cluster: `mce debug`
// runs it on one worker into its stdout.
package filejob
