//go:build !faultinject

package filejob

// faultBeforeCommit does nothing here; the fault suite's build (tag
// faultinject, see faultcommit_on.go) may kill the cluster at this point.
func faultBeforeCommit(string) {}
