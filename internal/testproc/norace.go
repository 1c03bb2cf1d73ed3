//go:build !race

package testproc

// Race reports whether this binary was built with the race detector;
// Build builds with it then.
const Race = false
