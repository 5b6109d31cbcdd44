package csvread

// FaultReadEnv names input files that a test build (build tag
// faultinject) reads as if a sector of the disk were bad: one line per
// file, "OFFSET PATH". Reads of PATH return its bytes up to OFFSET, then
// fail with EIO, however often they are tried, as Linux reads a file over
// a sector the disk cannot read. mce's fault suite builds mce with the tag
// and sets the variable; a build without the tag ignores it.
const FaultReadEnv = "MCE_FAULT_READ"
