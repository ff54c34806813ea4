//go:build !(linux || darwin || freebsd)

package storagenode

import "errors"

// diskSpace is not implemented on this platform; Health reports zeros.
func diskSpace(string) (free, total uint64, err error) {
	return 0, 0, errors.New("disk space not available on this platform")
}
