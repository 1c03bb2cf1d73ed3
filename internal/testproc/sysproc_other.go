//go:build !linux

package testproc

import "os/exec"

// dieWithParent does nothing where the kernel cannot tie the child's life
// to this process's.
func dieWithParent(*exec.Cmd) {}
