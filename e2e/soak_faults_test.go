package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/poll"
)

// A fault runs on the test's goroutine while the load flows, and returns
// once the mesh has absorbed it (so that the next one starts from a mesh
// at rest). It fails the test when the mesh does not recover.
type fault func(t *testing.T, s *soakMesh)

// rollingRestart takes each api instance out of Consul, restarts its
// sidecar, and registers it again, one after the other, as a deploy does:
// an instance stops only once web's sidecar no longer routes to it.
func rollingRestart(ids ...string) fault {
	return func(t *testing.T, s *soakMesh) {
		for _, id := range ids {
			if err := s.consul.Client().Agent().ServiceDeregister(id); err != nil {
				t.Fatalf("deregister %s: %v", id, err)
			}
			s.waitEndpoints(t, soakWeb, soakEndpoints-1)
			s.restartSidecar(t, id+"-sidecar-proxy")
			s.registerInstance(t, s.instance(id))
			s.waitRegistered(t)
		}
	}
}

// restartSidecar stops a sidecar (SIGTERM: it drains) and starts it again
// on the same state directory, waiting until it is ready; it logs how
// long the drain and the start took.
func (s *soakMesh) restartSidecar(t *testing.T, id string) {
	t.Helper()
	stopping := time.Now()
	if err := s.proxies[id].Stop(); err != nil {
		t.Fatalf("stop %s: %v", id, err)
	}
	starting := time.Now()
	if err := s.proxies[id].Restart(); err != nil {
		t.Fatalf("restart %s: %v", id, err)
	}
	ready := poll.Until(t, 30*time.Second, id+" ready", func() error { return getOK(s.proxyAdmin[id] + "/ready") })
	t.Logf("soak: %s stopped in %v, ready %v after its start", id, starting.Sub(stopping), ready.Sub(starting))
}

// intentionFlip denies web every destination, then, after `hold`,
// allows it again; requests refused meanwhile count as denied.
func intentionFlip(hold time.Duration) fault {
	return func(t *testing.T, s *soakMesh) {
		s.load.tcpIntent.Store(tcpDenied)
		s.setIntentions(t, api.IntentionActionDeny)
		<-time.After(hold) // load shape: how long the deny stands
		s.setIntentions(t, api.IntentionActionAllow)
		s.load.tcpIntent.Store(tcpLifting)
		poll.UntilTrue(t, 30*time.Second, "TCP allowed again", func() bool { return s.load.tcpIntent.Load() == tcpAllowed })
	}
}

// controlPlaneOutage kills the control plane, restarts `sidecar` while it
// is down (the sidecar comes back on its last-known-good state), and
// starts the control plane again after `down`.
func controlPlaneOutage(down time.Duration, sidecar string) fault {
	return func(t *testing.T, s *soakMesh) {
		s.waitStateSaved(t, sidecar)
		killed := time.Now()
		s.controlPlane.Kill()
		s.restartSidecar(t, sidecar)               // on its last-known-good state
		<-time.After(time.Until(killed.Add(down))) // load shape: the outage's length
		if err := s.controlPlane.Restart(); err != nil {
			t.Fatal(err)
		}
		waitHTTP200(t, "http://"+s.cpAdmin+"/ready", 30*time.Second)
		for id := range s.proxies {
			poll.Until(t, 60*time.Second, id+" reconnected", func() error { return s.gauge(id, "weft_proxy_xds_connected", 1) })
		}
	}
}

// consulRestart restarts the Consul dev agent, which comes back without
// its state, and replays the entries and registrations into it.
func consulRestart(t *testing.T, s *soakMesh) {
	s.consul.Restart()
	s.replayConsul(t)
	s.waitRegistered(t)
}

// rootRotation rotates the CA root with `weft ca rotate`, which returns
// once every sidecar trusts and uses the new root and the old is retired.
func rootRotation(t *testing.T, s *soakMesh) {
	out, err := exec.Command(filepath.Join(binDir, "weft"), "ca", "rotate", "--admin-addr", s.cpAdmin, "--timeout", "2m").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "done") {
		t.Fatalf("weft ca rotate: %v\n%s", err, out)
	}
}
