//go:build !unix

package partition

// fileSizeLimited: no file size limit outside unix.
func fileSizeLimited() bool { return false }
