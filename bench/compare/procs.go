package main

import "github.com/weft-mesh/weft/bench/internal/procs"

// cpuOf is the CPU time, in seconds, that ps have used together; a
// process that cannot be read counts 0.
func cpuOf(ps []*procs.Proc) float64 {
	var s float64
	for _, p := range ps {
		c, _ := p.CPUSeconds()
		s += c
	}
	return s
}

// memoryOfAll is the memory of ps together; a process that cannot be read
// counts 0.
func memoryOfAll(ps []*procs.Proc) procs.Memory {
	var m procs.Memory
	for _, p := range ps {
		pm, _ := p.Memory()
		m = m.Add(pm)
	}
	return m
}
