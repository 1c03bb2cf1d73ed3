package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// memory is a process's memory as the kernel counts it, in bytes.
//
// RSS is every resident page mapped by the process, including clean
// pages of its executable that the page cache shares with every other
// process running the same binary; Anon is its private heap and stacks
// (RssAnon), the memory only it can account for; PSS divides each shared
// page among the processes mapping it, so the sidecars of a node sum to
// what they really cost it.
type memory struct {
	RSS, Anon, PSS int64
}

func (m memory) add(o memory) memory {
	return memory{RSS: m.RSS + o.RSS, Anon: m.Anon + o.Anon, PSS: m.PSS + o.PSS}
}

// memoryOf reads /proc/PID/status (VmRSS, RssAnon) and
// /proc/PID/smaps_rollup (Pss). A field it cannot read stays 0.
func memoryOf(pid int) memory {
	var m memory
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		m.RSS = procKB(b, "VmRSS:")
		m.Anon = procKB(b, "RssAnon:")
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		m.PSS = procKB(b, "Pss:")
	}
	return m
}

// procKB returns the "<field> <n> kB" value of a /proc file, in bytes.
func procKB(b []byte, field string) int64 {
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		line := s.Bytes()
		if !bytes.HasPrefix(line, []byte(field)) {
			continue
		}
		f := bytes.Fields(line[len(field):])
		if len(f) == 0 {
			return 0
		}
		kb, _ := strconv.ParseInt(string(f[0]), 10, 64)
		return kb * 1024
	}
	return 0
}

func memoryOfAll(ps []*proc) memory {
	var m memory
	for _, p := range ps {
		m = m.add(memoryOf(p.cmd.Process.Pid))
	}
	return m
}
