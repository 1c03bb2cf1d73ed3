package main

import (
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/weft-mesh/weft/internal/memtrim"
)

// softLimitPercent is the share of the cgroup's memory limit given to the
// Go runtime as its soft limit (GOMEMLIMIT).
const softLimitPercent = 90

// applySoftMemoryLimit sets the Go runtime's soft memory limit to 90 % of
// the memory limit of the sidecar's cgroup (a container's, a systemd
// unit's MemoryMax), unless GOMEMLIMIT is set. GOGC stays on: below the
// limit nothing changes, and the heap of an idle sidecar is a few MB;
// near it, under a burst, the collector runs more often instead of the
// kernel killing the process, the failure a sidecar must avoid above all
// since it takes its application's traffic with it. The 10 % left are
// for what the runtime does not count: the executable's pages and
// kernel memory charged to the cgroup.
func applySoftMemoryLimit(logger *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return // the operator's, applied by the runtime
	}
	log := logger.With("component", "memory")
	limit, ok, err := memtrim.CgroupMemoryLimit("/sys/fs/cgroup", "/proc/self/cgroup")
	if err != nil {
		log.Warn("cgroup memory limit unreadable; no soft memory limit", "error", err)
		return
	}
	if !ok {
		return
	}
	soft := limit / 100 * softLimitPercent
	debug.SetMemoryLimit(soft)
	log.Info("soft memory limit set from the cgroup's", "cgroup_memory_max", limit, "gomemlimit", soft)
}
