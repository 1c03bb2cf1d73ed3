//go:build !linux

package consultest

import "os/exec"

// dieWithParent does nothing where the kernel cannot tie the agent's life
// to the test process's.
func dieWithParent(*exec.Cmd) {}
