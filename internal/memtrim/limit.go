package memtrim

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CgroupMemoryLimit returns the memory limit (cgroup v2 memory.max) of
// the cgroup the process runs in, and false when there is none: no
// cgroup v2, or "max". root is where the cgroup file system is mounted
// ("/sys/fs/cgroup"); cgroupFile is the process's cgroup membership
// ("/proc/self/cgroup").
func CgroupMemoryLimit(root, cgroupFile string) (int64, bool, error) {
	path, err := cgroupPath(cgroupFile)
	if err != nil {
		return 0, false, err
	}
	// Inside a cgroup namespace (a container) the process's cgroup is the
	// mount's root; outside, its path is below it.
	for _, dir := range []string{filepath.Join(root, path), root} {
		b, err := os.ReadFile(filepath.Join(dir, "memory.max"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, false, fmt.Errorf("memtrim: %w", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return 0, false, fmt.Errorf("memtrim: %s: bad memory.max %q", dir, v)
		}
		return n, true, nil
	}
	return 0, false, nil
}

// cgroupPath returns the cgroup v2 path ("0::/path") of /proc/self/cgroup,
// "" when the process is in no v2 hierarchy.
func cgroupPath(cgroupFile string) (string, error) {
	f, err := os.Open(cgroupFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("memtrim: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if p, ok := strings.CutPrefix(s.Text(), "0::"); ok {
			return p, nil
		}
	}
	return "", s.Err()
}
