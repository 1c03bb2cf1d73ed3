package main

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseScenarios(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "all", want: allScenarios},
		{in: "fan-out", want: []string{scenarioFanOut}},
		{in: "churn, fan-out", want: []string{scenarioFanOut, scenarioChurn}}, // run order, not the flag's
		{in: "mesh-wide,mesh-wide", want: []string{scenarioMeshWide}},
		{in: "fanout", wantErr: true},
		{in: "", wantErr: true},
		{in: "services,", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseScenarios(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseScenarios(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseScenarios(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

// TestDownstreams: the sidecars affected by a change of a service are the
// instances of the services that call it, and each calls its upstreams.
func TestDownstreams(t *testing.T) {
	topo := topology{services: 100, instances: 2, upstreams: 3, nodes: 5}
	for s := range topo.services {
		for _, id := range topo.downstreams(s) {
			var caller int
			if _, err := fmt.Sscanf(id, "svc-%d-", &caller); err != nil {
				t.Fatal(err)
			}
			calls := false
			for k := range topo.upstreams {
				calls = calls || topo.upstreamOf(caller, k) == s
			}
			if !calls {
				t.Fatalf("downstreams(%d) has %s, whose service does not call it", s, id)
			}
		}
		if n := len(topo.downstreams(s)); n != topo.upstreams*topo.instances {
			t.Fatalf("downstreams(%d) has %d sidecars, want %d", s, n, topo.upstreams*topo.instances)
		}
	}
}

func TestChurnAffected(t *testing.T) {
	topo := topology{services: 100, instances: 2, upstreams: 3, nodes: 5}
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for _, tc := range []struct {
		name   string
		writes []churnWrite
		want   map[string]time.Time
	}{
		{name: "nothing re-registered", want: map[string]time.Time{}},
		{name: "one instance: its service's callers, both instances each",
			writes: []churnWrite{{svc: 50, j: 1, at: at(1)}},
			want: map[string]time.Time{ // svc-0050 is called by 49 (+1), 43 (+7) and 19 (+31)
				sidecarID(49, 0): at(1), sidecarID(49, 1): at(1), sidecarID(43, 0): at(1), sidecarID(43, 1): at(1),
				sidecarID(19, 0): at(1), sidecarID(19, 1): at(1)}},
		{name: "a caller of two re-registered services waits for the later",
			writes: []churnWrite{{svc: 50, at: at(3)}, {svc: 56, at: at(1)}}, // 49 calls 50 (+1) and 56 (+7)
			want: map[string]time.Time{
				sidecarID(49, 0): at(3), sidecarID(49, 1): at(3), sidecarID(43, 0): at(3), sidecarID(43, 1): at(3),
				sidecarID(19, 0): at(3), sidecarID(19, 1): at(3),
				sidecarID(55, 0): at(1), sidecarID(55, 1): at(1), sidecarID(25, 0): at(1), sidecarID(25, 1): at(1)}},
		{name: "wraps around the ring",
			writes: []churnWrite{{svc: 0, at: at(2)}},
			want: map[string]time.Time{
				sidecarID(99, 0): at(2), sidecarID(99, 1): at(2), sidecarID(93, 0): at(2), sidecarID(93, 1): at(2),
				sidecarID(69, 0): at(2), sidecarID(69, 1): at(2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, churnAffected(topo, tc.writes)); diff != "" {
				t.Errorf("churnAffected (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPickChurn(t *testing.T) {
	for _, tc := range []struct {
		topo topology
		want int
	}{
		{topology{services: 1000, instances: 2}, 100},
		{topology{services: 5000, instances: 2}, 500},
		{topology{services: 70, instances: 1}, 4}, // 3.5 rounds up
		{topology{services: 10, instances: 1}, 1}, // at least one
	} {
		got := pickChurn(tc.topo, 1)
		if len(got) != tc.want {
			t.Errorf("%d×%d: picked %d, want %d", tc.topo.services, tc.topo.instances, len(got), tc.want)
		}
		seen := map[[2]int]bool{}
		for _, p := range got {
			if seen[p] || p[0] < 0 || p[0] >= tc.topo.services || p[1] < 0 || p[1] >= tc.topo.instances {
				t.Errorf("%d×%d: %v repeated or out of range", tc.topo.services, tc.topo.instances, p)
			}
			seen[p] = true
		}
		if !slices.Equal(got, pickChurn(tc.topo, 1)) {
			t.Errorf("%d×%d: the same seed picked other instances", tc.topo.services, tc.topo.instances)
		}
	}
}

// TestPlanFanOut: every flip is of the hot service, reaches every sidecar
// and alternates critical and passing, instance after instance.
func TestPlanFanOut(t *testing.T) {
	topo := topology{services: 100, instances: 2, upstreams: 3, nodes: 5}
	clients := topo.proxyIDs()
	var whats []string
	for _, ch := range planFanOut(topo, clients) {
		whats = append(whats, ch.what)
		if len(ch.affected) != len(clients) || len(ch.types) != 1 {
			t.Errorf("%s: %d affected, types %v; want every sidecar, EDS", ch.what, len(ch.affected), ch.types)
		}
	}
	want := []string{"svc-hot-0 critical", "svc-hot-0 passing", "svc-hot-1 critical", "svc-hot-1 passing",
		"svc-hot-0 critical", "svc-hot-0 passing", "svc-hot-1 critical", "svc-hot-1 passing"}
	if diff := cmp.Diff(want, whats); diff != "" {
		t.Errorf("fan-out changes (-want +got):\n%s", diff)
	}
}

// TestEverySidecarCallsTheHotService: the fan-out scenario's premise.
func TestEverySidecarCallsTheHotService(t *testing.T) {
	topo := topology{services: 100, instances: 2, upstreams: 3, nodes: 5}
	for _, gen := range []int{0, 1} {
		regs := topo.instanceRegs(42, 1, "passing", gen)
		ups := regs[1].Service.Proxy.Upstreams
		if len(ups) != topo.upstreams+1 || ups[0].DestinationName != hotService {
			t.Errorf("gen %d: upstreams %v, want the hot service and %d others", gen, ups, topo.upstreams)
		}
	}
	if a, b := topo.instanceRegs(42, 1, "passing", 0)[1].Service.Port, topo.instanceRegs(42, 1, "passing", 1)[1].Service.Port; a == b {
		t.Errorf("a re-registration keeps port %d; want another, so the endpoints change", a)
	}
}

func TestResultsFileName(t *testing.T) {
	date := time.Date(2026, 12, 6, 23, 59, 0, 0, time.UTC)
	for _, tc := range []struct {
		scenarios []string
		streaming bool
		xdsServer string
		want      string
	}{
		{allScenarios, false, "lean", "2026-12-06-abc1234-5000x2-delta.json"},
		{[]string{scenarioFanOut, scenarioChurn}, false, "lean", "2026-12-06-abc1234-5000x2-delta-fan-out+churn.json"},
		{[]string{scenarioChurn}, true, "lean", "2026-12-06-abc1234-5000x2-delta-churn-consul-streaming.json"},
		{allScenarios, false, "grpc", "2026-12-06-abc1234-5000x2-delta-xds-grpc.json"},
	} {
		f := resultsFile{Date: date, Commit: "abc1234", Settings: settings{Services: 5000, Instances: 2, Mode: "delta", Scenarios: tc.scenarios,
			ConsulStreaming: tc.streaming, XDSServer: tc.xdsServer}}
		if got := f.fileName(); got != tc.want {
			t.Errorf("fileName = %q, want %q", got, tc.want)
		}
	}
}
