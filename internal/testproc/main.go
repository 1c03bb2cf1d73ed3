package testproc

import (
	"fmt"
	"os"
	"testing"
)

// Main is the TestMain of a package whose tests run Weft's commands: it
// builds pkgs (see Build) once into a new temporary directory, sets
// *binDir to it, runs the tests and exits with their code, after removing
// the directory. When the build fails it exits with status 1 and runs no
// test.
func Main(m *testing.M, binDir *string, pkgs ...string) {
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
