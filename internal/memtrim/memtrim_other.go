//go:build !linux

package memtrim

// ReleaseStartupPages does nothing outside Linux.
func ReleaseStartupPages() (int64, error) { return 0, nil }

// Resident is not measured outside Linux: it returns zeros.
func Resident() (anon, file int64, err error) { return 0, 0, nil }
