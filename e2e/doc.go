// Package e2e holds Weft's end-to-end tests: a real Consul agent, the weft
// control plane and weft-proxy sidecars as separate processes, and test
// applications, all on loopback. They are skipped with -short.
package e2e
