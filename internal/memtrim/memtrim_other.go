//go:build !linux

package memtrim

// ExecutablePages are not released outside Linux.
type ExecutablePages struct{}

// FindExecutablePages finds nothing to release outside Linux.
func FindExecutablePages() (*ExecutablePages, error) { return &ExecutablePages{}, nil }

// Release does nothing outside Linux.
func (*ExecutablePages) Release() (int64, error) { return 0, nil }

// Resident is not measured outside Linux: it returns zeros.
func Resident() (anon, file int64, err error) { return 0, 0, nil }
