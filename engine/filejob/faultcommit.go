package filejob

// FaultCommitEnv, in a build with the tag faultinject (the fault suite's
// mce), is "MARKER INPUT": the cluster that has computed the features of
// the file INPUT kills itself (SIGKILL) 300 ms later, before it commits
// them, unless the file MARKER exists, which it makes first; the retry
// then goes through. The 300 ms give the parent time to hand the cluster
// its next file, so that the cluster dies while it commits one file and
// runs another. Other builds ignore it.
const FaultCommitEnv = "MCE_FAULT_COMMIT"
