package testproc

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel stop the child should this process
// die without running its cleanups (a test timeout panics, for example),
// so no child outlives its test or harness.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
