package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/proxy/balancer"
	"github.com/weft-mesh/weft/proxy/balancer/balancertest"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/outlier"
)

// hosts lists endpoints of one priority: "+" healthy, "-" unhealthy, in
// order, named <prefix><i>:1.
func hosts(prefix string, priority uint32, health string) []config.Endpoint {
	var out []config.Endpoint
	for i, h := range health {
		out = append(out, config.Endpoint{Address: prefix + string(rune('1'+i)) + ":1", Healthy: h == '+', Weight: 1, Priority: priority})
	}
	return out
}

func panicCluster(threshold float64, eps []config.Endpoint, od *outlier.Settings, opts Options) *Cluster {
	opts.Credentials, opts.Clock = mtls.Credentials{}, outlier.SystemClock{}
	return newCluster(&config.Cluster{Name: "c", Endpoints: eps, Outlier: od, LB: config.LB{PanicThreshold: threshold}}, opts)
}

func TestPanicThreshold(t *testing.T) {
	tests := []struct {
		name      string
		threshold float64
		endpoints []config.Endpoint
		wantPanic bool
		want      map[string]int // picks out of 120; nil: ErrNoHealthyUpstream
	}{
		{"1 of 4 healthy: balanced over all 4", 50, hosts("a", 0, "+---"), true,
			map[string]int{"a1:1": 30, "a2:1": 30, "a3:1": 30, "a4:1": 30}},
		{"2 of 4 healthy is not below 50 %", 50, hosts("a", 0, "++--"), false,
			map[string]int{"a1:1": 60, "a2:1": 60}},
		{"threshold 0 turns panic mode off", 0, hosts("a", 0, "+---"), false,
			map[string]int{"a1:1": 120}},
		{"2 of 4 healthy below 60 %", 60, hosts("a", 0, "++--"), true,
			map[string]int{"a1:1": 30, "a2:1": 30, "a3:1": 30, "a4:1": 30}},
		{"3 of 4 below 80 %, but whole with Envoy's overprovisioning (1.4)", 80, hosts("a", 0, "+++-"), false,
			map[string]int{"a1:1": 40, "a2:1": 40, "a3:1": 40}},
		{"a whole failover priority: no panic", 50, append(hosts("p", 0, "--"), hosts("f", 1, "++")...), false,
			map[string]int{"f1:1": 60, "f2:1": 60}},
		{"priorities not whole together: the best one panics", 50, append(hosts("p", 0, "+---"), hosts("f", 1, "+---")...), true,
			map[string]int{"p1:1": 30, "p2:1": 30, "p3:1": 30, "p4:1": 30}},
		{"priorities whole together: no panic", 50, append(hosts("p", 0, "+---"), hosts("f", 1, "+++-")...), false,
			map[string]int{"p1:1": 120}},
		{"none healthy: total panic over every priority", 50, append(hosts("p", 0, "-"), hosts("f", 1, "-")...), true,
			map[string]int{"p1:1": 60, "f1:1": 60}},
		{"none healthy with panic mode off", 0, hosts("a", 0, "--"), false, nil},
		{"no endpoints", 50, nil, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := panicCluster(tt.threshold, tt.endpoints, nil, Options{})
			if got := c.info().Panic; got != tt.wantPanic {
				t.Errorf("panic = %v, want %v", got, tt.wantPanic)
			}
			if tt.want == nil {
				if _, err := c.Pick(balancer.PickInfo{}, nil, 0); !errors.Is(err, ErrNoHealthyUpstream) {
					t.Fatalf("Pick err = %v, want ErrNoHealthyUpstream", err)
				}
				return
			}
			if diff := cmp.Diff(tt.want, picks(t, c, 120)); diff != "" {
				t.Errorf("picks (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPanicPickerStaysLockFree: the panic decision is made when the
// picker is built; picking in panic mode neither locks nor allocates.
func TestPanicPickerStaysLockFree(t *testing.T) {
	st := panicCluster(50, hosts("a", 0, "+---"), nil, Options{}).state.Load()
	if !st.panic {
		t.Fatal("cluster not in panic mode")
	}
	balancertest.NoLocks(t, st.picker)
	balancertest.NoAllocs(t, st.picker, balancer.PickInfo{})
}

// TestEjectionsCountForPanic: hosts that outlier detection ejected count
// as unavailable when panic mode is decided, as in Envoy, but stay out
// of the panic picker; OnPanic hears of entering and leaving it.
func TestEjectionsCountForPanic(t *testing.T) {
	var changes []bool
	od := outlier.Settings{Consecutive5xx: 1, Enforcing5xx: 100, BaseEjectionTime: time.Hour, MaxEjectionPercent: 100}
	eps := hosts("a", 0, "++--")
	c := panicCluster(50, eps, &od, Options{OnPanic: func(cluster string, panic bool) { changes = append(changes, panic) }})
	if diff := cmp.Diff(map[string]int{"a1:1": 60, "a2:1": 60}, picks(t, c, 120)); diff != "" {
		t.Fatalf("picks before the ejection (-want +got):\n%s", diff)
	}
	eject(t, c, "a1:1")
	if !c.info().Panic {
		t.Fatal("1 of 4 hosts available after the ejection, and no panic mode")
	}
	if diff := cmp.Diff(map[string]int{"a2:1": 40, "a3:1": 40, "a4:1": 40}, picks(t, c, 120)); diff != "" {
		t.Errorf("picks in panic mode (-want +got):\n%s", diff)
	}
	c.update(&config.Cluster{Name: "c", Endpoints: hosts("a", 0, "++++"), Outlier: &od, LB: config.LB{PanicThreshold: 50}})
	if c.info().Panic {
		t.Error("3 of 4 hosts available, and still in panic mode")
	}
	if diff := cmp.Diff([]bool{true, false}, changes); diff != "" {
		t.Errorf("OnPanic calls (-want +got):\n%s", diff)
	}
}

// eject makes outlier detection eject the host at addr with one failure.
func eject(t *testing.T, c *Cluster, addr string) {
	t.Helper()
	for _, e := range c.state.Load().hosts {
		if e.host.addr != addr {
			continue
		}
		a, ok := c.admit(e.host)
		if !ok {
			t.Fatalf("host %s not admitted", addr)
		}
		a.Report(outlier.Failure)
		a.Release()
		if !e.host.outlier.Ejected() {
			t.Fatalf("host %s not ejected after a failure", addr)
		}
		return
	}
	t.Fatalf("no host %s", addr)
}
