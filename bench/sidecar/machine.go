package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// toolVersions are the first line each tool prints about its version.
func toolVersions(b binaries) map[string]string {
	v := map[string]string{"go": runtime.Version()}
	for name, args := range map[string][]string{
		"consul": {b.consul, "version"}, "haproxy": {b.haproxy, "-v"}, "nginx": {b.nginx, "-v"}, "fortio": {b.fortio, "version"},
	} {
		out, _ := exec.Command(args[0], args[1:]...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		v[name] = line
	}
	return v
}

// moduleRoot is the directory of go.mod at or above the working directory.
func moduleRoot() (string, error) {
	root, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil || root == "/" {
			return root, nil
		}
		root = filepath.Dir(root)
	}
}
