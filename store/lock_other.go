//go:build !linux

package store

import "github.com/cockroachdb/pebble/v2/vfs"

// readLockFS returns the filesystem a read-only Open takes its lock
// through: on this system, pebble's own exclusive lock (shared locks are
// taken on Linux only; see lock_linux.go).
func readLockFS(fs vfs.FS) vfs.FS { return fs }
