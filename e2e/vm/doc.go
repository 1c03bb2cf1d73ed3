// Package vm holds the end-to-end test of Weft on a VM: weft register and
// weft deregister against a real Consul agent, weft-proxy sidecars run as
// processes (standing in for systemd's weft-proxy@.service), and traffic
// through them. It is skipped with -short.
package vm
