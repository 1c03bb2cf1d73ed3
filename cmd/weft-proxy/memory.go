package main

import (
	"context"
	"log/slog"
	"runtime/debug"

	"github.com/weft-mesh/weft/internal/memtrim"
	"github.com/weft-mesh/weft/proxy"
)

// releaseStartupMemory waits until the proxy first becomes ready, then
// gives back what only start-up needed: the heap that decoding and
// compiling the first configuration left behind (a forced GC that
// returns free pages to the OS), and the pages of the executable that
// package initialization touched (memtrim.ReleaseStartupPages). Pages the
// request path needs fault back in from the page cache on first use.
func releaseStartupMemory(ctx context.Context, p *proxy.Proxy, logger *slog.Logger) {
	select {
	case <-p.BecameReady():
	case <-ctx.Done():
		return
	}
	log := logger.With("component", "memory")
	anon0, file0, _ := memtrim.Resident()
	debug.FreeOSMemory()
	released, err := memtrim.ReleaseStartupPages()
	if err != nil {
		log.Warn("could not release the executable's start-up pages", "error", err)
		return
	}
	anon1, file1, _ := memtrim.Resident()
	log.Info("released start-up memory", "executable_mappings_bytes", released,
		"rss_anon_before", anon0, "rss_anon_after", anon1, "rss_file_before", file0, "rss_file_after", file1)
}
