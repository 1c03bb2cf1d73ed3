package listener

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/freeport"
	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/mtls"
)

// outsideTLS presents the named certificates over SDS to clients outside
// the mesh.
func outsideTLS(names ...string) *mtls.Server {
	return &mtls.Server{MinVersion: tls.VersionTLS12, Certificates: names}
}

// TestListenerWarmsUntilItsCertificatesArrive: a listener presenting
// certificates over SDS is not bound before they arrive — its port
// refuses connections and /listeners says what it waits for — then serves
// them; a running listener whose update names a certificate not received
// yet keeps serving its previous configuration until it arrives.
func TestListenerWarmsUntilItsCertificatesArrive(t *testing.T) {
	ca := pkitest.NewCA(t, "gateway CA")
	certs := &mtls.Certificates{}
	e := newEnv(t, time.Second, func(o *Options) { o.Credentials = mtls.Credentials{Certificates: certs} })
	clusters := map[string]*config.Cluster{"app": staticCluster("app", echoServer(t))}
	addr := fmt.Sprintf("127.0.0.1:%d", freeport.Get(t))
	issue := func(host string) *tls.Certificate {
		pair := ca.IssuePEM(t, pkitest.LeafSpec{DNSNames: []string{host}})
		c, err := mtls.ParseCertificate(pair.CertPEM, pair.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	apply := func(l *config.Listener, received map[string]*tls.Certificate) {
		rt := runtime(clusters, l)
		rt.Certificates = received
		certs.Set(received) // as the proxy's apply does, before committing
		e.mustApply(rt)
	}
	echoAs := func(serverName string) (string, error) {
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		return echoOverTLS(t, addr, &tls.Config{RootCAs: pool, ServerName: serverName}, "hello")
	}
	info := func() Info {
		i := slices.IndexFunc(e.m.Listeners(), func(i Info) bool { return i.Name == "gw" })
		if i < 0 {
			t.Fatalf("listener gw not listed: %+v", e.m.Listeners())
		}
		return e.m.Listeners()[i]
	}

	first := withTLS(tcpListener("gw", addr, "app"), outsideTLS("api"))
	apply(first, nil)
	if got := info(); got.BoundAddress != "" || !slices.Equal(got.Warming, []string{"api"}) {
		t.Errorf("warming listener listed as %+v, want unbound, warming for api", got)
	}
	if c, err := net.DialTimeout("tcp", addr, wait); err == nil {
		c.Close()
		t.Fatal("a warming listener accepted a connection")
	}

	apply(first, map[string]*tls.Certificate{"api": issue("api.example.com")})
	if got, err := echoAs("api.example.com"); err != nil || got != "hello" {
		t.Fatalf("once its certificate arrived: %q, %v", got, err)
	}
	if got := info(); got.BoundAddress == "" || len(got.Warming) != 0 {
		t.Errorf("listener listed as %+v, want bound, not warming", got)
	}

	second := withTLS(tcpListener("gw", addr, "app"), outsideTLS("shop", "api"))
	apply(second, map[string]*tls.Certificate{"api": issue("api.example.com")})
	if a := e.activeOf("gw"); a.Listener != first {
		t.Error("the update was applied before its certificate arrived")
	}
	if got := info(); !slices.Equal(got.Warming, []string{"shop"}) {
		t.Errorf("listener listed as %+v, want warming for shop", got)
	}
	if got, err := echoAs("api.example.com"); err != nil || got != "hello" {
		t.Errorf("while the update warms, the previous configuration: %q, %v", got, err)
	}

	apply(second, map[string]*tls.Certificate{"api": issue("api.example.com"), "shop": issue("shop.example.com")})
	if a := e.activeOf("gw"); a.Listener != second {
		t.Error("the update was not applied once its certificates arrived")
	}
	if got, err := echoAs("shop.example.com"); err != nil || got != "hello" {
		t.Errorf("the update's certificate, by SNI: %q, %v", got, err)
	}
}
