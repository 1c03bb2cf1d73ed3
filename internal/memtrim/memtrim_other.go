//go:build !linux

package memtrim

// ReleaseStartupPages does nothing outside Linux.
func ReleaseStartupPages() (int64, error) { return 0, nil }
