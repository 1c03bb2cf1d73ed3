package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/weft-mesh/weft/bench/internal/procs"
	"github.com/weft-mesh/weft/bench/internal/results"
)

// haproxyPair is two HAProxy processes, one per side, as two sidecars
// would be: the client side takes plaintext and speaks TLS with a client
// certificate to the server side, which verifies it and speaks plaintext
// to the backend. HTTP/1.1 in mode http, gRPC with proto h2 on both
// sides, TCP in mode tcp.
type haproxyPair struct {
	e *env
	// readyConf is the configuration of the fresh client side readiness
	// measures, and readyURL the URL through it.
	readyConf, readyURL string
}

// haproxySettings are the settings the configurations below give that
// differ from HAProxy's defaults.
var haproxySettings = []string{
	"maxconn 4096",
	"timeout connect 5s, client 30s, server 30s (HAProxy has none)",
	"http-reuse always (default safe): the client side reuses its TLS connections to the server side across client connections, as a sidecar's pool does",
}

func (h *haproxyPair) describe() results.Peer {
	return results.Peer{ID: results.PeerHAProxy, Name: results.PeerNames[results.PeerHAProxy], NonDefault: haproxySettings}
}
func (*haproxyPair) serves(backend) bool       { return true }
func (*haproxyPair) controlPlane() *procs.Proc { return nil }

func (h *haproxyPair) start(b backend) (string, []*procs.Proc, error) {
	front, mesh := loopback(port()), loopback(port())
	server, err := h.proxy("haproxy-"+b.String()+"-server", haproxyServerSide(b, mesh, h.e.backends[b], h.e.certs))
	if err != nil {
		return "", nil, err
	}
	clientConf := haproxyClientSide(b, front, mesh, h.e.certs)
	client, err := h.proxy("haproxy-"+b.String()+"-client", clientConf)
	if err != nil {
		return "", nil, err
	}
	if b == httpBackend {
		readyFront := loopback(port())
		h.readyConf = haproxyClientSide(b, readyFront, mesh, h.e.certs)
		h.readyURL = "http://" + readyFront + "/"
	}
	return front, []*procs.Proc{client, server}, nil
}

func (h *haproxyPair) startClient() (*procs.Proc, string, string, error) {
	p, err := h.proxy("haproxy-ready-client", h.readyConf)
	return p, h.readyURL, "", err
}

// proxy writes conf and starts HAProxy in the foreground with it.
func (h *haproxyPair) proxy(name, conf string) (*procs.Proc, error) {
	path := filepath.Join(h.e.dir, name+".cfg")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return h.e.start(name, nil, h.e.bin.haproxy, "-f", path)
}

const haproxyGlobal = `global
  maxconn 4096
defaults
  timeout connect 5s
  timeout client 30s
  timeout server 30s
`

// haproxyClientSide: plaintext in on front, TLS out to the server side at
// mesh, presenting web's certificate and verifying the server's.
func haproxyClientSide(b backend, front, mesh string, c haproxyCerts) string {
	tls := fmt.Sprintf("ssl verify required ca-file %s crt %s", c.ca, c.web)
	switch b {
	case grpcBackend:
		return haproxyGlobal + fmt.Sprintf(`frontend app_in
  mode http
  bind %s proto h2
  default_backend mesh_out
backend mesh_out
  mode http
  http-reuse always
  server server_side %s %s alpn h2
`, front, mesh, tls)
	case tcpBackend:
		return haproxyGlobal + fmt.Sprintf(`frontend app_in
  mode tcp
  bind %s
  default_backend mesh_out
backend mesh_out
  mode tcp
  server server_side %s %s
`, front, mesh, tls)
	}
	return haproxyGlobal + fmt.Sprintf(`frontend app_in
  mode http
  bind %s
  default_backend mesh_out
backend mesh_out
  mode http
  http-reuse always
  server server_side %s %s alpn http/1.1
`, front, mesh, tls)
}

// haproxyServerSide: TLS in on mesh, requiring and verifying a client
// certificate, plaintext out to the backend.
func haproxyServerSide(b backend, mesh, backendAddr string, c haproxyCerts) string {
	tls := fmt.Sprintf("ssl crt %s ca-file %s verify required", c.api, c.ca)
	switch b {
	case grpcBackend:
		return haproxyGlobal + fmt.Sprintf(`frontend mesh_in
  mode http
  bind %s %s alpn h2
  default_backend app_out
backend app_out
  mode http
  http-reuse always
  server app %s proto h2
`, mesh, tls, backendAddr)
	case tcpBackend:
		return haproxyGlobal + fmt.Sprintf(`frontend mesh_in
  mode tcp
  bind %s %s
  default_backend app_out
backend app_out
  mode tcp
  server app %s
`, mesh, tls, backendAddr)
	}
	return haproxyGlobal + fmt.Sprintf(`frontend mesh_in
  mode http
  bind %s %s alpn http/1.1
  default_backend app_out
backend app_out
  mode http
  http-reuse always
  server app %s
`, mesh, tls, backendAddr)
}
