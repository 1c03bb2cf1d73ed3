package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/testproc"
)

// TestMixedMeshWithConsulProxies runs Weft sidecars beside proxies Consul
// configures (`consul connect proxy`), with the control plane sharing
// Consul's Connect CA (--ca-provider consul):
//
//	web  (Weft sidecar)          → api  (consul connect proxy)
//	web2 (consul connect proxy)  → api2 (Weft sidecar)
//
// Both directions are mutual TLS with the identities verified, and each
// side enforces intentions: denying web → api makes Consul's proxy refuse
// web; denying web2 → api2 makes Weft's sidecar refuse web2. A root
// rotation driven through Consul's CA (weft ca rotate) while requests
// flow both ways fails none of them.
func TestMixedMeshWithConsulProxies(t *testing.T) {
	m := newMesh(t, meshOptions{caProvider: "consul"})
	client := m.consul.Client()
	consulBin, err := consultest.FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	consulProxy := func(name, serviceID string) {
		testproc.Run(t, testproc.Spec{Name: name, Args: []string{consulBin, "connect", "proxy", "-sidecar-for", serviceID, "-http-addr", m.consul.HTTPAddr, "-log-level", "debug"}})
	}

	m.hits["api-1"], m.hits["api2-1"] = &atomic.Int64{}, &atomic.Int64{}
	m.register(t, "api-1", "api", startNameServer(t, "api-1", m.hits["api-1"]), nil)
	m.register(t, "api2-1", "api2", startNameServer(t, "api2-1", m.hits["api2-1"]), nil)
	web2Port := freePort(t)
	m.register(t, "web-1", "web", freePort(t), []api.Upstream{{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: m.apiPort}})
	m.register(t, "web2-1", "web2", freePort(t), []api.Upstream{{DestinationName: "api2", LocalBindAddress: "127.0.0.1", LocalBindPort: web2Port}})

	consulProxy("api-1-consul-proxy", "api-1")
	consulProxy("web2-1-consul-proxy", "web2-1")
	m.startProxy(t, "api2-1-sidecar-proxy")
	m.startProxy(t, "web-1-sidecar-proxy")
	consultest.WaitForPassing(t, client, "api", 1)
	consultest.WaitForPassing(t, client, "api2", 1)

	webToAPI := newCaller(t, m.apiPort)
	web2ToAPI2 := newCaller(t, web2Port)
	for _, c := range []*caller{webToAPI, web2ToAPI2} {
		c.client.Transport = &http.Transport{DisableKeepAlives: true} // a handshake per request
	}
	webToAPI.waitServedBy(60*time.Second, 3, true, "api-1")
	web2ToAPI2.waitServedBy(60*time.Second, 3, true, "api2-1")
	roots, _, err := client.Connect().CARoots(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"web-1-sidecar-proxy", "api2-1-sidecar-proxy"} {
		leaf := sidecarLeafID(t, m.proxyAdmin[id])
		if want := "spiffe://" + roots.TrustDomain + "/ns/default/dc/"; !strings.HasPrefix(leaf, want) {
			t.Errorf("%s holds a leaf for %q; want one in Consul's trust domain (%s…)", id, leaf, want)
		}
	}

	t.Run("intentions on each side", func(t *testing.T) {
		cases := []struct {
			name   string
			dest   string
			source string
			caller *caller
			serves string
		}{
			{"Consul's proxy refuses web", "api", "web", webToAPI, "api-1"},
			{"Weft's sidecar refuses web2", "api2", "web2", web2ToAPI2, "api2-1"},
		}
		for _, tc := range cases {
			setIntentions(t, m, tc.dest, &api.SourceIntention{Name: tc.source, Action: api.IntentionActionDeny})
			// Five refusals in a row: one failed call may be a blip before
			// the deny has reached the enforcing proxy.
			poll.Until(t, 20*time.Second, tc.name, func() error {
				for range 5 {
					if who, err := tc.caller.call(); err == nil {
						return fmt.Errorf("%s → %s still served by %s", tc.source, tc.dest, who)
					}
				}
				return nil
			})
			before := m.hits[tc.serves].Load()
			for range 3 {
				if who, err := tc.caller.call(); err == nil {
					t.Errorf("%s: a denied request was served by %s", tc.name, who)
				}
			}
			if n := m.hits[tc.serves].Load() - before; n != 0 {
				t.Errorf("%s: %d denied requests reached %s", tc.name, n, tc.serves)
			}
			if _, err := client.ConfigEntries().Delete(api.ServiceIntentions, tc.dest, nil); err != nil {
				t.Fatal(err)
			}
			tc.caller.waitServedBy(20*time.Second, 3, true, tc.serves)
		}
	})

	t.Run("root rotation through Consul's CA under load", func(t *testing.T) {
		before := activeConsulRoot(t, client)
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var sent, failed atomic.Int64
		var firstErr atomic.Value
		for _, c := range []*caller{webToAPI, web2ToAPI2} {
			wg.Go(func() {
				for ctx.Err() == nil {
					sent.Add(1)
					if _, err := c.call(); err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
				}
			})
		}
		resp, err := http.Post("http://"+m.cpAdmin+"/ca/rotate?timeout=2m", "", nil)
		if err != nil {
			stop()
			wg.Wait()
			t.Fatal(err)
		}
		progress, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// Keep the load on until Consul's agent hands its proxies leaves
		// under the new root, and for 100 requests each way after that.
		after := activeConsulRoot(t, client)
		poll.Until(t, 30*time.Second, "Consul's proxies get leaves under the new root", func() error {
			for _, svc := range []string{"api", "web2"} {
				if err := leafUnder(client, svc, after); err != nil {
					return err
				}
			}
			return nil
		})
		for range 100 {
			for _, c := range []*caller{webToAPI, web2ToAPI2} {
				sent.Add(1)
				if _, err := c.call(); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}
		stop()
		wg.Wait()
		if !strings.Contains(string(progress), "done:") {
			t.Fatalf("rotation did not finish:\n%s", progress)
		}
		if after == before {
			t.Fatalf("Consul's active root is still %s after the rotation", before)
		}
		t.Logf("rotation: %d requests, %d failed\n%s", sent.Load(), failed.Load(), progress)
		if failed.Load() != 0 {
			t.Fatalf("%d of %d requests failed during the rotation; first: %v", failed.Load(), sent.Load(), firstErr.Load())
		}
	})
}

// leafUnder checks that the leaf Consul's agent serves for service was
// signed by the root whose ID is rootID.
func leafUnder(client *api.Client, service, rootID string) error {
	leaf, _, err := client.Agent().ConnectCALeaf(service, nil)
	if err != nil {
		return err
	}
	roots, _, err := client.Connect().CARoots(nil)
	if err != nil {
		return err
	}
	for _, r := range roots.Roots {
		if r.ID != rootID {
			continue
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(r.RootCertPEM))
		block, _ := pem.Decode([]byte(leaf.CertPEM))
		if block == nil {
			return fmt.Errorf("%s: no leaf PEM", service)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return err
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return fmt.Errorf("%s's leaf from Consul is not under root %s yet: %v", service, rootID, err)
		}
		return nil
	}
	return fmt.Errorf("Consul lists no root %s", rootID)
}

// sidecarLeafID is the SPIFFE ID of the leaf a Weft sidecar holds.
func sidecarLeafID(t *testing.T, admin string) string { return readLeaf(t, admin).SpiffeID }

// activeConsulRoot is the ID of Consul's active Connect CA root.
func activeConsulRoot(t *testing.T, client *api.Client) string {
	t.Helper()
	roots, _, err := client.Connect().CARoots(nil)
	if err != nil {
		t.Fatal(err)
	}
	return roots.ActiveRootID
}
