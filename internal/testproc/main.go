package testproc

import (
	"fmt"
	"os"
	"testing"
)

// BinDirEnv names the environment variable that points Main at binaries
// built beforehand, for example from another commit in a git worktree to
// compare the two builds with the same tests or benchmarks. Main then
// builds nothing and uses the directory as it is: it must hold every
// binary the package runs, and whether they were built with the race
// detector is up to whoever built them.
const BinDirEnv = "WEFT_TEST_BIN_DIR"

// Main is the TestMain of a package whose tests run Weft's commands: it
// builds pkgs (see Build) once into a new temporary directory, sets
// *binDir to it, runs the tests and exits with their code, after removing
// the directory. When the build fails it exits with status 1 and runs no
// test. With $WEFT_TEST_BIN_DIR set (BinDirEnv), it sets *binDir to that
// directory instead, builds nothing and removes nothing.
func Main(m *testing.M, binDir *string, pkgs ...string) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		*binDir = dir
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "weft-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*binDir = dir
	code := 1
	if err := Build(dir, pkgs...); err != nil {
		fmt.Fprintln(os.Stderr, "testproc: build:", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}
