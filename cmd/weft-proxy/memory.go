package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/weft-mesh/weft/internal/memtrim"
	"github.com/weft-mesh/weft/proxy"
)

// idleTrimInterval is how long the sidecar must see no new connection,
// request, applied configuration or issued certificate (Proxy.Activity)
// before the executable's pages are released again.
const idleTrimInterval = 15 * time.Second

// startupQuiet is the quiet the start-up release waits for after
// readiness: a poll at this interval that sees no activity since the
// one before.
const startupQuiet = time.Second

// busyTrimTicks is how many idleTrimIntervals of traffic pass between two
// releases under load: one a minute.
const busyTrimTicks = 4

// releaseStartupMemory waits until the proxy first becomes ready and then
// for its first quiet second (startupQuiet: no new connection, request,
// applied configuration or issued certificate), or for a minute of
// traffic without one, and then gives back what only start-up needed:
// the heap that decoding and compiling the first configuration left
// behind (a forced GC that returns free pages to the OS), and the pages
// of the executable that package initialization touched
// (memtrim.ExecutablePages). Pages the request path needs fault back in
// from the page cache on first use. A release costs the requests in
// flight a stall (in the bench at 1,000 requests/s: 10-40 ms, with both
// sidecars releasing together, when it ran 2 s after readiness under
// traffic), which is why it waits for quiet; done at readiness itself,
// it slowed the first request 7-10 ms.
//
// Afterwards, each time traffic stops for idleTrimInterval, it does the
// same again (once per idle period), so that an idle sidecar's RSS is its
// heap and what it touches while idle, not every page the last burst of
// traffic, a certificate renewal or a configuration change mapped in
// (the kernel maps 64 KiB around every page it faults in). While traffic
// flows, it does the same once a minute: otherwise what a one-off event
// touched — every connection handshaken again after an intention change,
// a full configuration resent after a reconnect — stays resident for
// good (docs/reliability.md, the soak). Releasing only when the resident
// pages had grown since they settled was tried, to spare steady traffic
// the stall: the 5-minute soak then failed its RSS bound (most likely a
// one-off event in the settling minute became part of the baseline).
func releaseStartupMemory(ctx context.Context, p *proxy.Proxy, logger *slog.Logger) {
	select {
	case <-p.BecameReady():
	case <-ctx.Done():
		return
	}
	if !waitQuiet(ctx, p.Activity, startupQuiet, busyTrimTicks*idleTrimInterval) {
		return
	}
	log := logger.With("component", "memory")
	anon0, file0, _ := memtrim.Resident()
	debug.FreeOSMemory()
	pages, err := memtrim.FindExecutablePages()
	if err == nil {
		_, err = pages.Release()
	}
	if err != nil {
		log.Warn("could not release the executable's pages", "error", err)
		return
	}
	anon1, file1, _ := memtrim.Resident()
	log.Info("released start-up memory", "rss_anon_before", anon0, "rss_anon_after", anon1, "rss_file_before", file0, "rss_file_after", file1)

	t := time.NewTicker(idleTrimInterval)
	defer t.Stop()
	idle := idleTrimmer{activity: p.Activity, busyEvery: busyTrimTicks, release: func(busy bool) {
		releaseAgain(ctx, log, pages, busy)
	}}
	idle.last = p.Activity()
	idle.trimmed = true
	for {
		select {
		case <-t.C:
			idle.tick()
		case <-ctx.Done():
			return
		}
	}
}

// waitQuiet waits until two polls of activity, every interval, see the
// same count, or until most has passed; false if ctx ended first.
func waitQuiet(ctx context.Context, activity func() uint64, interval, most time.Duration) bool {
	t := time.NewTicker(interval)
	defer t.Stop()
	deadline := time.Now().Add(most)
	last := activity()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		}
		now := activity()
		if now == last || !time.Now().Before(deadline) {
			return true
		}
		last = now
	}
}

// releaseAgain returns the free heap and releases the executable's pages;
// busy only labels the debug log. Resident memory is measured only for
// that log: reading and parsing /proc after the release would fault that
// code back in.
func releaseAgain(ctx context.Context, log *slog.Logger, pages *memtrim.ExecutablePages, busy bool) {
	measure := log.Enabled(ctx, slog.LevelDebug)
	var anon0, file0 int64
	if measure {
		anon0, file0, _ = memtrim.Resident()
	}
	debug.FreeOSMemory()
	if _, err := pages.Release(); err != nil {
		log.Warn("could not release the executable's pages", "error", err)
		return
	}
	if measure {
		anon1, file1, _ := memtrim.Resident()
		log.Debug("released memory again", "busy", busy, "rss_anon_before", anon0, "rss_anon_after", anon1, "rss_file_before", file0, "rss_file_after", file1)
	}
}

// idleTrimmer releases memory once per idle period, at the first tick
// that sees no activity since the previous one (release(false)), and
// every busyEvery ticks of activity in a row (release(true)).
type idleTrimmer struct {
	activity  func() uint64
	release   func(busy bool)
	busyEvery int
	last      uint64
	trimmed   bool // released since the last activity
	busy      int  // ticks of activity since the last release
}

func (t *idleTrimmer) tick() {
	now := t.activity()
	switch {
	case now != t.last:
		t.trimmed = false
		if t.busy++; t.busy >= t.busyEvery {
			t.release(true)
			t.busy = 0
		}
	case !t.trimmed:
		t.release(false)
		t.trimmed, t.busy = true, 0
	}
	t.last = now
}
