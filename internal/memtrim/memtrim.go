// Package memtrim keeps a long-running process's memory small: it gives
// back the pages of its own executable it touched while starting up, and
// finds the memory limit of its cgroup (CgroupMemoryLimit) for a soft
// limit on the Go runtime.
//
// A Go binary that links the Envoy API, gRPC and TLS runs a lot of
// package initialization once (protobuf descriptor registration, mostly),
// and the kernel maps file pages around every page it faults in (fault-
// around, 64 KiB by default). After start-up, weft-proxy has most of its
// 10 MB of code and 13 MB of read-only data mapped while its idle working
// set is about 2 MB of it (measured with /proc/PID/clear_refs and the
// Referenced field of smaps). Those pages are clean and shared with every
// other process running the same binary, but they count in each
// sidecar's RSS.
//
// ExecutablePages.Release tells the kernel the process no longer needs
// its executable's read-only mappings (madvise MADV_DONTNEED). Nothing is
// lost: the pages stay in the page cache and the next access maps them
// again with a minor fault, so only what is used after start-up comes
// back. Writable mappings are never touched.
package memtrim
