// Package testproc builds Weft's commands for tests and runs child
// processes for tests and benchmark harnesses: each with its output in a
// log file, killed by the kernel should its parent die first, stopped
// with SIGTERM and then SIGKILL after a grace period. Run ties a process
// to a test: stopped when the test ends, its log's tail logged when the
// test failed.
package testproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Build builds the main packages pkgs (import paths, or directories
// relative to the working directory) into dir, each executable named as
// go build names it (the last element of its path), with the race
// detector when this binary has it, so that a test run with -race runs
// binaries built with -race. go build's output goes to os.Stderr. Call it
// once per test binary, from TestMain, or once per test that needs it.
func Build(dir string, pkgs ...string) error {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if Race {
		args = append(args, "-race")
	}
	args = append(args, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
