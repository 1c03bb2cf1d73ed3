package memtrim

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ExecutablePages are the read-only mappings of the running executable
// (code and read-only data), found once by FindExecutablePages.
//
// Release does nothing but the madvise calls: whatever code a release
// runs after them (opening and parsing /proc/self/maps, closing the file,
// measuring RSS) faults its pages straight back in, 64 KiB around each,
// which measured about 2.5 MB of an idle sidecar's RSS.
type ExecutablePages struct {
	regions []region
}

// FindExecutablePages reads the executable's read-only, private mappings
// from /proc/self/maps.
func FindExecutablePages() (*ExecutablePages, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("memtrim: find the executable: %w", err)
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, fmt.Errorf("memtrim: %w", err)
	}
	regions, err := readOnlyRegions(f, exe)
	f.Close()
	if err != nil {
		return nil, err
	}
	if len(regions) == 0 {
		return nil, fmt.Errorf("memtrim: no read-only mapping of %s in /proc/self/maps", exe)
	}
	return &ExecutablePages{regions: regions}, nil
}

// Release advises the kernel that the pages are not needed
// (MADV_DONTNEED) and returns how many bytes of mappings it advised.
// Nothing is lost: the pages stay in the page cache, and the next access
// maps them again with a minor fault. Safe to call at any time from any
// goroutine.
func (p *ExecutablePages) Release() (int64, error) {
	var released int64
	for _, r := range p.regions {
		// The region is not Go memory, so it is passed as plain addresses.
		// A raw system call: the runtime's bookkeeping around a blocking
		// one would fault back in at once.
		if _, _, errno := syscall.RawSyscall(syscall.SYS_MADVISE, r.start, r.end-r.start, syscall.MADV_DONTNEED); errno != 0 {
			return released, fmt.Errorf("memtrim: madvise %#x-%#x: %w", r.start, r.end, errno)
		}
		released += int64(r.end - r.start)
	}
	return released, nil
}

type region struct{ start, end uintptr }

// readOnlyRegions parses /proc/self/maps lines ("start-end perms offset
// dev inode path") and returns the private, non-writable mappings of the
// file at path.
func readOnlyRegions(maps io.Reader, path string) ([]region, error) {
	var out []region
	s := bufio.NewScanner(maps)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 6 || strings.Join(fields[5:], " ") != path {
			continue
		}
		perms := fields[1]
		if len(perms) != 4 || perms[1] == 'w' || perms[3] != 'p' {
			continue
		}
		start, end, ok := strings.Cut(fields[0], "-")
		if !ok {
			return nil, fmt.Errorf("memtrim: bad maps line %q", s.Text())
		}
		a, err1 := strconv.ParseUint(start, 16, 64)
		b, err2 := strconv.ParseUint(end, 16, 64)
		if err1 != nil || err2 != nil || b <= a {
			return nil, fmt.Errorf("memtrim: bad maps line %q", s.Text())
		}
		out = append(out, region{uintptr(a), uintptr(b)})
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("memtrim: read maps: %w", err)
	}
	return out, nil
}

// Resident returns the process's resident anonymous memory (heap, stacks)
// and resident file-backed memory (mostly its executable), in bytes, from
// /proc/self/status.
func Resident() (anon, file int64, err error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0, fmt.Errorf("memtrim: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "RssAnon" && k != "RssFile") {
			continue
		}
		kb, perr := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if perr != nil {
			return 0, 0, fmt.Errorf("memtrim: bad /proc/self/status line %q", line)
		}
		if k == "RssAnon" {
			anon = kb * 1024
		} else {
			file = kb * 1024
		}
	}
	return anon, file, nil
}
