package e2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/poll"
)

// TestMeshEntryTLSMinimum: the mesh config entry's TLS.Incoming, written to
// a real Consul, reaches a running sidecar's public listener. Before it, a
// client capped at TLS 1.2 gets past version negotiation (and is refused
// for want of a mesh certificate); once the entry asks for TLS 1.3 at
// least, the sidecar refuses the 1.2 client's version itself; removing
// the entry's TLS restores TLS 1.2.
func TestMeshEntryTLSMinimum(t *testing.T) {
	m := newMesh(t)
	m.register(t, "api-1", "api", freePort(t), nil)
	m.startProxy(t, "api-1-sidecar-proxy")
	public := addr(m.publicPort["api-1"])

	refusedVersion := func() (bool, error) {
		conn, err := net.DialTimeout("tcp", public, 5*time.Second)
		if err != nil {
			return false, err
		}
		defer conn.Close()
		c := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
		c.SetDeadline(time.Now().Add(5 * time.Second))
		err = c.Handshake()
		if err == nil {
			// TLS 1.2 completes before the server checks for a client
			// certificate it requires; a read shows the refusal.
			_, err = c.Read(make([]byte, 1))
		}
		if err == nil {
			return false, fmt.Errorf("a client without a certificate was served")
		}
		return strings.Contains(err.Error(), "protocol version"), nil
	}
	waitRefusal := func(want bool, what string) {
		poll.Until(t, 30*time.Second, what, func() error {
			refused, err := refusedVersion()
			if err != nil {
				return err
			}
			if refused != want {
				return fmt.Errorf("a TLS 1.2 client refused for its version: %v, want %v", refused, want)
			}
			return nil
		})
	}
	waitRefusal(false, "the sidecar serving TLS 1.2 by default")
	m.setEntry(t, &api.MeshConfigEntry{TLS: &api.MeshTLSConfig{Incoming: &api.MeshDirectionalTLSConfig{TLSMinVersion: "TLSv1_3"}}})
	waitRefusal(true, "the sidecar refusing TLS 1.2 once the mesh entry asks for 1.3")
	m.setEntry(t, &api.MeshConfigEntry{})
	waitRefusal(false, "TLS 1.2 again once the mesh entry sets no TLS")
}
