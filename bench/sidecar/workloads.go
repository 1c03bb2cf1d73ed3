package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/weft-mesh/weft/bench/internal/results"
)

// workload is one kind of traffic.
type workload struct {
	id, name, unit string
	// baseline is the peer every figure is also given as a ratio to.
	baseline string
	backend  backend
	// fortioArgs select the traffic in `fortio load`; target turns the
	// address the load goes to into fortio's target.
	fortioArgs []string
	target     func(addr string) string
	// okCode is fortio's return code of a success.
	okCode string
	// streams says that saturation is measured by stream, not fortio.
	streams bool
}

func httpTarget(addr string) string { return "http://" + addr + "/" }

var allWorkloads = []workload{
	{id: results.HTTPKeepAlive, name: "HTTP/1.1 keep-alive, 1 KiB response", unit: "request", baseline: results.PeerHAProxy,
		backend: httpBackend, target: httpTarget, okCode: "200"},
	{id: results.HTTPNewConn, name: "HTTP/1.1, a new connection per request, 1 KiB response", unit: "request", baseline: results.PeerHAProxy,
		backend: httpBackend, fortioArgs: []string{"-keepalive=false"}, target: httpTarget, okCode: "200"},
	{id: results.GRPCUnary, name: "gRPC unary (fortio's ping service)", unit: "request", baseline: results.PeerHAProxy,
		backend: grpcBackend, fortioArgs: []string{"-grpc", "-ping"}, target: func(addr string) string { return addr }, okCode: "SERVING"},
	{id: results.TCPStream, name: "TCP in 64 KiB chunks, echoed", unit: "64 KiB chunk", baseline: results.PeerConsul,
		backend: tcpBackend, fortioArgs: []string{"-payload-size", fmt.Sprint(chunkSize)},
		target: func(addr string) string { return "tcp://" + addr }, okCode: "OK", streams: true},
}

// selectWorkloads returns the workloads whose IDs are listed in the
// comma-separated ids, every one when ids is empty.
func selectWorkloads(ids string) ([]workload, error) {
	if ids == "" {
		return allWorkloads, nil
	}
	var out []workload
	for _, id := range strings.Split(ids, ",") {
		i := slices.IndexFunc(allWorkloads, func(w workload) bool { return w.id == id })
		if i < 0 {
			return nil, fmt.Errorf("-workloads: no workload %q (%s)", id, strings.Join(workloadIDs(), ", "))
		}
		out = append(out, allWorkloads[i])
	}
	return out, nil
}

func workloadIDs() []string {
	var ids []string
	for _, w := range allWorkloads {
		ids = append(ids, w.id)
	}
	return ids
}
