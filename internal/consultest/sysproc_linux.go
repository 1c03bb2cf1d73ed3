package consultest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel stop the agent should the test process
// die without running its cleanups (a test timeout panics, for example),
// so no agent outlives its test.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
